# METADATA
# title: Governance switch
# description: |
#   Whether a project's governance owner may be switched between CASD and INFRACALC.
#   Only CASD staff who signed in with a second factor may switch, with a written reason; a
#   switch to INFRACALC is refused while the project holds data classed sensitive, a switch to
#   CASD (which tightens the rules) is always allowed to them.
#   Input:
#     caller   kind ("person" | "bubble" | "hub"), username, roles (realm roles), acr
#     project  slug of the project
#     to       "CASD" | "INFRACALC"
#     reason   why; at least 10 characters once surrounding whitespace is trimmed
#   Data (owned by the INFRACALC service, under data.store.infracalc):
#     projects[slug]   {"title", "governance": "CASD" | "INFRACALC", "sensitive_data": bool}
#                      (sensitive_data: the project holds data classed sensitive; absent = false)
package infracalc.governance

# METADATA
# description: |
#   The switch decision, an object with allow (boolean) and reason (string); an allowed switch
#   also carries from (the current owner) and to, for the service to record. An unknown project
#   gives exactly the reason "unknown project". Undefined means deny.
# entrypoint: true
default decision := {"allow": false, "reason": "no rule allows this governance switch"}

decision := {"allow": false, "reason": refusal} if refusal

decision := {
	"allow": true,
	"reason": sprintf("CASD staff may move project %s to %s governance", [input.project, input.to]),
	"from": project.governance,
	"to": input.to,
} if {
	not refusal
}

project := data.store.infracalc.projects[input.project]

# Checked in order; the first that holds is the reason given.
refusal := "only people may switch a project's governance" if {
	not input.caller.kind == "person"
} else := "people must sign in with a second factor (acr is not mfa)" if {
	not input.caller.acr == "mfa"
} else := "only CASD staff may switch a project's governance" if {
	not staff_role
} else := "the request names no project" if {
	not input.project
} else := "unknown project" if {
	not project
} else := "the request names no target governance (to)" if {
	not input.to
} else := sprintf("governance must be CASD or INFRACALC, not %v", [input.to]) if {
	not known_owner
} else := sprintf("project is already under %s governance", [input.to]) if {
	input.to == project.governance
} else := "a reason of at least 10 characters is required" if {
	not reason_given
} else := "project holds data classed sensitive; it must stay under CASD governance" if {
	input.to == "INFRACALC"
	project.sensitive_data == true
}

# Negations go through helper rules: `not input.x in s` is undefined, not true, when
# input.x is missing, so it would let a missing field slip past a refusal.
staff_role if "casd-staff" in input.caller.roles

known_owner if input.to in {"CASD", "INFRACALC"}

# is_string first: trim_space would raise an error on other types under strict builtin errors.
reason_given if {
	is_string(input.reason)
	count(trim_space(input.reason)) >= 10
}
