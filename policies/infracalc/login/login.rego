# METADATA
# title: Login
# description: |
#   Whether a person may open a hub session: two factors always, and a registered source
#   network when the person has any, or belongs to a project under CASD governance.
#   Data (owned by the INFRACALC service, under data.store.infracalc):
#     users[username].networks   CIDRs the person registered (home or fixed IP)
#     projects[id].governance    "CASD" or "INFRACALC"
#     members[id][username]      membership of a project
#   Each decision carries a code (and its parameters) that the hub's refusal page translates.
package infracalc.login

# METADATA
# description: |
#   The login decision, an object with allow (boolean), reason (string) and code (string, for
#   translations; refusals about the address also carry source_ip). Undefined means deny.
# entrypoint: true
default decision := {"allow": false, "reason": "no rule allows this login", "code": "no_rule"}

decision := {
	"allow": false,
	"reason": "the second factor was not used (acr is not mfa)",
	"code": "second_factor_missing",
} if {
	input.acr != "mfa"
}

decision := {
	"allow": false,
	"reason": sprintf("source address %s is not a registered network", [input.source_ip]),
	"code": "source_not_registered",
	"source_ip": input.source_ip,
} if {
	input.acr == "mfa"
	count(networks) > 0
	not from_registered_network
}

decision := {
	"allow": false,
	"reason": "a member of a CASD-governed project must register a network first",
	"code": "network_required",
	"source_ip": input.source_ip,
} if {
	input.acr == "mfa"
	count(networks) == 0
	member_of_casd_project
}

decision := {"allow": true, "reason": "second factor used from a registered network", "code": "registered_network"} if {
	input.acr == "mfa"
	from_registered_network
}

decision := {
	"allow": true,
	"reason": "second factor used; no registered network required",
	"code": "no_network_required",
} if {
	input.acr == "mfa"
	count(networks) == 0
	not member_of_casd_project
}

default networks := []

networks := data.store.infracalc.users[input.username].networks

from_registered_network if {
	some cidr in networks
	net.cidr_contains(cidr, input.source_ip)
}

member_of_casd_project if {
	some project_id
	data.store.infracalc.members[project_id][input.username]
	data.store.infracalc.projects[project_id].governance == "CASD"
}
