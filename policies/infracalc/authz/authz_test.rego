package infracalc.authz_test

import data.infracalc.authz

projects := {
	"cohort": {"title": "Birth cohort", "governance": "CASD", "sensitive_data": true},
	"weather": {"title": "Weather", "governance": "INFRACALC", "sensitive_data": false},
	"duo": {"title": "Two leads", "governance": "INFRACALC"},
}

members := {
	"cohort": {"lina": {"role": "lead"}, "mo": {"role": "member"}},
	"weather": {"wes": {"role": "lead"}, "lina": {"role": "member"}, "odd": {"role": "owner"}},
	"duo": {"dan": {"role": "lead"}, "dora": {"role": "lead"}},
	# Memberships of a project the service no longer has must not make it visible.
	"ghost": {"mo": {"role": "member"}},
}

staff := {"kind": "person", "username": "sam", "roles": ["casd-staff"], "acr": "mfa"}

lead := {"kind": "person", "username": "lina", "roles": [], "acr": "mfa"}

researcher := {"kind": "person", "username": "mo", "roles": [], "acr": "mfa"}

outsider := {"kind": "person", "username": "olga", "roles": ["offline_access"], "acr": "mfa"}

bubble := {"kind": "bubble", "project": "cohort", "bubble": "b1"}

hub := {"kind": "hub", "username": "jupyterhub", "roles": []}

odd_role := {"kind": "person", "username": "odd", "acr": "mfa"}

co_lead := {"kind": "person", "username": "dan", "acr": "mfa"}

lost_bubble := {"kind": "bubble", "project": "nope"}

proxy := {"kind": "proxy", "username": "egress"}

hub_refusal := "the hub may only read projects and users' projects, start or stop bubbles and record session events"

request(action, caller, resource) := {"action": action, "caller": caller, "resource": resource}

allowed(decision, reason) if {
	decision.allow == true
	decision.reason == reason
}

refused(decision, reason) if {
	decision.allow == false
	decision.reason == reason
}

# Second factor and malformed callers

test_person_without_mfa_is_refused if {
	decision := authz.decision with input as request("me.read", object.union(staff, {"acr": "1"}), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "people must sign in with a second factor (acr is not mfa)")
}

test_person_without_acr_is_refused if {
	decision := authz.decision with input as request("project.list", object.remove(staff, ["acr"]), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "people must sign in with a second factor (acr is not mfa)")
}

test_person_without_username_is_refused if {
	decision := authz.decision with input as request("me.read", object.remove(researcher, ["username"]), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the caller has no username")
}

test_missing_caller_is_refused if {
	decision := authz.decision with input as {"action": "me.read"}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown caller kind")
}

test_unknown_caller_kind_is_refused if {
	decision := authz.decision with input as request("project.list", object.union(staff, {"kind": "robot"}), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown caller kind")
}

test_empty_input_is_refused if {
	decision := authz.decision with input as {}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown caller kind")
}

test_unknown_action_is_refused if {
	decision := authz.decision with input as request("project.delete", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "no rule allows project.delete")
}

test_missing_action_is_refused if {
	decision := authz.decision with input as {"caller": staff}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "no rule allows this request")
}

test_unknown_realm_role_grants_nothing if {
	caller := object.union(outsider, {"roles": ["admin", "casd-staf"]})
	decision := authz.decision with input as request("project.create", caller, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may create projects")
}

test_roles_as_a_string_grant_nothing if {
	decision := authz.decision with input as request("audit.read", object.union(outsider, {"roles": "casd-staff"}), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may read the audit log")
}

test_boolean_acr_is_refused if {
	decision := authz.decision with input as request("me.read", object.union(staff, {"acr": false}), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "people must sign in with a second factor (acr is not mfa)")
}

test_missing_roles_grant_nothing if {
	decision := authz.decision with input as request("audit.verify", object.remove(staff, ["roles"]), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may verify the audit log")
}

test_without_service_data_projects_are_unknown if {
	decision := authz.decision with input as request("project.read", staff, {"project": "cohort"})
		with data.store.infracalc.projects as {}
		with data.store.infracalc.members as {}
	refused(decision, "unknown project")
}

test_staff_role_without_mfa_is_refused if {
	decision := authz.decision with input as request("audit.read", object.union(staff, {"acr": "pwd"}), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	not decision.allow
}

# me.read, project.list, project.create

test_me_read_allows_any_person if {
	decision := authz.decision with input as request("me.read", outsider, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "any signed-in person may read their own profile")
}

test_project_list_allows_any_person if {
	decision := authz.decision with input as request("project.list", outsider, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "any signed-in person may list the projects they can see")
}

test_project_create_allows_staff if {
	decision := authz.decision with input as request("project.create", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may create projects")
}

test_project_create_refuses_a_lead if {
	decision := authz.decision with input as request("project.create", lead, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may create projects")
}

# project.read and governance.history

test_project_read_allows_staff if {
	decision := authz.decision with input as request("project.read", staff, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may read every project")
}

test_project_read_allows_a_member if {
	decision := authz.decision with input as request("project.read", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "mo is a member of project cohort")
}

test_project_read_allows_a_member_with_an_unknown_role if {
	decision := authz.decision with input as request("project.read", odd_role, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	decision.allow
}

test_project_read_refuses_a_non_member if {
	decision := authz.decision with input as request("project.read", researcher, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "mo is not a member of project weather")
}

test_project_read_of_unknown_project_is_refused if {
	decision := authz.decision with input as request("project.read", staff, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_project_read_without_project_is_refused if {
	decision := authz.decision with input as request("project.read", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no project")
}

test_project_read_without_resource_is_refused if {
	decision := authz.decision with input as {"action": "project.read", "caller": staff}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no project")
}

test_governance_history_allows_staff if {
	decision := authz.decision with input as request("governance.history", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	decision.allow
}

test_governance_history_allows_a_member if {
	decision := authz.decision with input as request("governance.history", lead, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "lina is a member of project weather")
}

test_governance_history_refuses_a_non_member if {
	decision := authz.decision with input as request("governance.history", outsider, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "olga is not a member of project cohort")
}

test_governance_history_of_unknown_project_is_refused if {
	decision := authz.decision with input as request("governance.history", lead, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

# member.put and member.delete

test_member_put_allows_staff if {
	decision := authz.decision with input as request("member.put", staff, {"project": "cohort", "username": "new"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may manage the members of every project")
}

test_member_put_allows_a_lead if {
	resource := {"project": "cohort", "username": "new", "role": "member"}
	decision := authz.decision with input as request("member.put", lead, resource)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "leads of project cohort may manage its members")
}

test_member_put_refuses_a_plain_member if {
	decision := authz.decision with input as request("member.put", researcher, {"project": "cohort", "username": "new"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or a lead of project cohort may manage its members")
}

test_member_put_refuses_a_lead_of_another_project if {
	decision := authz.decision with input as request("member.put", lead, {"project": "weather", "username": "new"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or a lead of project weather may manage its members")
}

test_member_put_refuses_an_unknown_project_role if {
	decision := authz.decision with input as request("member.put", odd_role, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	not decision.allow
}

test_member_put_refuses_unknown_project if {
	decision := authz.decision with input as request("member.put", staff, {"project": "nope", "username": "new"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_member_delete_allows_staff if {
	decision := authz.decision with input as request("member.delete", staff, {"project": "cohort", "username": "lina"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	decision.allow
}

test_member_delete_allows_a_lead if {
	decision := authz.decision with input as request("member.delete", lead, {"project": "cohort", "username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "leads of project cohort may manage its members")
}

test_member_delete_refuses_a_plain_member if {
	resource := {"project": "cohort", "username": "lina"}
	decision := authz.decision with input as request("member.delete", researcher, resource)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	not decision.allow
}

test_member_delete_refuses_without_project if {
	decision := authz.decision with input as request("member.delete", lead, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no project")
}

last_lead_reason := "a lead may not give up the lead role as the project's last lead; make another member lead first"

test_last_lead_may_not_remove_themself if {
	decision := authz.decision with input as request("member.delete", lead, {"project": "cohort", "username": "lina"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, last_lead_reason)
}

test_last_lead_may_not_demote_themself if {
	resource := {"project": "cohort", "username": "lina", "role": "member"}
	decision := authz.decision with input as request("member.put", lead, resource)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, last_lead_reason)
}

test_last_lead_may_stay_lead if {
	resource := {"project": "cohort", "username": "lina", "role": "lead"}
	decision := authz.decision with input as request("member.put", lead, resource)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	decision.allow
}

test_last_lead_put_without_role_is_allowed if {
	decision := authz.decision with input as request("member.put", lead, {"project": "cohort", "username": "lina"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	decision.allow
}

test_one_of_two_leads_may_remove_themself if {
	decision := authz.decision with input as request("member.delete", co_lead, {"project": "duo", "username": "dan"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	decision.allow
}

test_staff_who_is_last_lead_may_remove_themself if {
	caller := object.union(staff, {"username": "lina"})
	decision := authz.decision with input as request("member.delete", caller, {"project": "cohort", "username": "lina"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	decision.allow
}

# governance.switch

test_governance_switch_allows_staff if {
	decision := authz.decision with input as request("governance.switch", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may switch a project's governance")
}

test_governance_switch_refuses_a_lead if {
	decision := authz.decision with input as request("governance.switch", lead, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may switch a project's governance, not its leads")
}

test_governance_switch_refuses_a_member if {
	decision := authz.decision with input as request("governance.switch", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may switch a project's governance")
}

test_governance_switch_of_unknown_project_is_refused if {
	decision := authz.decision with input as request("governance.switch", staff, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

# audit.read and audit.verify

test_audit_read_allows_staff if {
	decision := authz.decision with input as request("audit.read", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may read the audit log")
}

test_audit_read_refuses_a_lead if {
	decision := authz.decision with input as request("audit.read", lead, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may read the audit log")
}

test_audit_verify_allows_staff if {
	decision := authz.decision with input as request("audit.verify", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may verify the audit log")
}

test_audit_verify_refuses_a_researcher if {
	decision := authz.decision with input as request("audit.verify", researcher, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may verify the audit log")
}

# Egress rules

test_egress_request_allows_staff if {
	decision := authz.decision with input as request("egress.request", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may manage the egress rules of every project")
}

test_egress_request_allows_a_lead if {
	decision := authz.decision with input as request("egress.request", lead, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "leads of project cohort may request and revoke its egress rules")
}

test_egress_request_refuses_a_plain_member if {
	decision := authz.decision with input as request("egress.request", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or a lead of project cohort may request or revoke its egress rules")
}

test_egress_request_refuses_a_lead_who_is_only_a_member_here if {
	decision := authz.decision with input as request("egress.request", lead, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or a lead of project weather may request or revoke its egress rules")
}

test_egress_request_refuses_an_outsider if {
	decision := authz.decision with input as request("egress.request", outsider, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or a lead of project cohort may request or revoke its egress rules")
}

test_egress_request_of_unknown_project_is_refused if {
	decision := authz.decision with input as request("egress.request", lead, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_egress_request_without_project_is_refused if {
	decision := authz.decision with input as request("egress.request", lead, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no project")
}

test_egress_revoke_allows_staff if {
	decision := authz.decision with input as request("egress.revoke", staff, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may manage the egress rules of every project")
}

test_egress_revoke_allows_a_lead if {
	decision := authz.decision with input as request("egress.revoke", lead, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "leads of project cohort may request and revoke its egress rules")
}

test_egress_revoke_refuses_a_plain_member if {
	decision := authz.decision with input as request("egress.revoke", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or a lead of project cohort may request or revoke its egress rules")
}

test_egress_list_allows_staff if {
	decision := authz.decision with input as request("egress.list", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may read every project")
}

test_egress_list_allows_a_member if {
	decision := authz.decision with input as request("egress.list", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "mo is a member of project cohort")
}

test_egress_list_refuses_a_non_member if {
	decision := authz.decision with input as request("egress.list", outsider, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "olga is not a member of project cohort")
}

test_egress_list_of_unknown_project_is_refused if {
	decision := authz.decision with input as request("egress.list", staff, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_egress_check_allows_staff if {
	decision := authz.decision with input as request("egress.check", staff, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may read every project")
}

test_egress_check_allows_a_member if {
	decision := authz.decision with input as request("egress.check", lead, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "lina is a member of project weather")
}

test_egress_check_refuses_a_non_member if {
	decision := authz.decision with input as request("egress.check", researcher, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "mo is not a member of project weather")
}

test_egress_decide_allows_staff if {
	decision := authz.decision with input as request("egress.decide", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may approve or deny egress requests")
}

test_egress_decide_refuses_a_lead if {
	decision := authz.decision with input as request("egress.decide", lead, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may approve or deny egress requests")
}

test_egress_decide_refuses_staff_without_mfa if {
	decision := authz.decision with input as request("egress.decide", object.union(staff, {"acr": "1"}), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "people must sign in with a second factor (acr is not mfa)")
}

test_bubble_may_not_request_egress if {
	decision := authz.decision with input as request("egress.request", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_bubble_may_not_check_egress if {
	decision := authz.decision with input as request("egress.check", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_hub_may_not_decide_egress if {
	decision := authz.decision with input as request("egress.decide", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, hub_refusal)
}

# Bubbles

test_bubble_reads_its_own_project if {
	decision := authz.decision with input as request("project.read", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "a bubble may read its own project")
}

test_bubble_may_not_read_another_project if {
	decision := authz.decision with input as request("project.read", bubble, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_bubble_may_not_list_projects if {
	decision := authz.decision with input as request("project.list", bubble, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_bubble_may_not_manage_members if {
	decision := authz.decision with input as request("member.put", bubble, {"project": "cohort", "username": "x"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_bubble_with_staff_role_gets_nothing_more if {
	caller := object.union(bubble, {"roles": ["casd-staff"], "acr": "mfa"})
	decision := authz.decision with input as request("audit.read", caller, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_bubble_without_project_is_refused if {
	decision := authz.decision with input as request("project.read", {"kind": "bubble"}, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_bubble_of_unknown_project_is_refused if {
	decision := authz.decision with input as request("project.read", lost_bubble, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_bubble_unknown_action_is_refused if {
	decision := authz.decision with input as request("shell.open", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

# The hub

test_hub_lists_projects if {
	decision := authz.decision with input as request("project.list", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "the hub may list projects")
}

test_hub_reads_any_project if {
	decision := authz.decision with input as request("project.read", hub, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "the hub may read every project")
}

test_hub_read_of_unknown_project_is_refused if {
	decision := authz.decision with input as request("project.read", hub, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_hub_read_without_project_is_refused if {
	decision := authz.decision with input as request("project.read", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no project")
}

test_hub_may_not_create_projects if {
	decision := authz.decision with input as request("project.create", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, hub_refusal)
}

test_hub_may_not_read_the_audit_log if {
	decision := authz.decision with input as request("audit.read", object.union(hub, {"roles": ["casd-staff"]}), {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, hub_refusal)
}

# visible_projects

test_staff_see_every_project if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": staff}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == {"cohort", "weather", "duo"}
}

test_member_sees_their_projects if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": lead}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == {"cohort", "weather"}
}

test_member_does_not_see_a_project_missing_from_data if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": researcher}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == {"cohort"}
}

test_outsider_sees_nothing if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": outsider}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == set()
}

test_person_without_mfa_sees_nothing if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": object.union(staff, {"acr": "1"})}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == set()
}

test_bubble_sees_its_own_project if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": bubble}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == {"cohort"}
}

test_bubble_of_unknown_project_sees_nothing if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": lost_bubble}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == set()
}

test_hub_sees_every_project if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": hub}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == {"cohort", "weather", "duo"}
}

test_unknown_kind_sees_nothing if {
	caller := {"kind": "robot", "roles": ["casd-staff"], "acr": "mfa"}
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": caller}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == set()
}

test_visible_projects_without_data_is_empty if {
	vis := authz.visible_projects with input as {"caller": staff}
		with data.store.infracalc.projects as {}
		with data.store.infracalc.members as {}
	vis == set()
}

# bubbles: started by the hub for members, stopped by the hub or CASD staff

test_hub_starts_a_bubble_for_a_member if {
	decision := authz.decision with input as request("bubble.create", hub, {"project": "cohort", "username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "mo is a member of project cohort")
}

test_hub_starts_no_bubble_for_an_outsider if {
	decision := authz.decision with input as request("bubble.create", hub, {"project": "cohort", "username": "wes"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "wes is not a member of project cohort")
}

test_hub_starts_no_bubble_for_an_unknown_project if {
	decision := authz.decision with input as request("bubble.create", hub, {"project": "ghost", "username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_hub_bubble_without_project_is_refused if {
	decision := authz.decision with input as request("bubble.create", hub, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no project")
}

test_hub_stops_bubbles if {
	decision := authz.decision with input as request("bubble.delete", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "the hub may stop the bubbles it started")
}

test_staff_revoke_bubbles if {
	decision := authz.decision with input as request("bubble.delete", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may revoke bubbles")
}

test_people_do_not_start_bubbles if {
	decision := authz.decision with input as request("bubble.create", staff, {"project": "cohort", "username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	not decision.allow
}

test_researchers_do_not_revoke_bubbles if {
	decision := authz.decision with input as request("bubble.delete", researcher, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may revoke bubbles")
}

test_bubbles_do_not_start_bubbles if {
	decision := authz.decision with input as request("bubble.create", bubble, {"project": "cohort", "username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

# The egress proxy records egress events, and nothing else; nobody else records them.

test_proxy_records_egress_events if {
	decision := authz.decision with input as request("egress.events.record", proxy, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "the egress proxy may record egress events")
}

test_proxy_may_not_read_projects if {
	decision := authz.decision with input as request("project.read", proxy, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the egress proxy may only record egress events")
}

test_proxy_with_staff_role_gets_nothing_more if {
	caller := object.union(proxy, {"roles": ["casd-staff"], "acr": "mfa"})
	decision := authz.decision with input as request("audit.read", caller, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the egress proxy may only record egress events")
}

test_proxy_without_action_is_refused if {
	decision := authz.decision with input as {"caller": proxy}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the egress proxy may only record egress events")
}

test_proxy_sees_no_project if {
	slugs := authz.visible_projects with input as {"action": "project.list", "caller": proxy}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	slugs == set()
}

test_staff_may_not_record_egress_events if {
	decision := authz.decision with input as request("egress.events.record", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only the egress proxy may record egress events")
}

test_bubbles_may_not_record_egress_events if {
	decision := authz.decision with input as request("egress.events.record", bubble, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_hub_may_not_record_egress_events if {
	decision := authz.decision with input as request("egress.events.record", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, hub_refusal)
}

# Sessions: CASD staff read them.

test_staff_read_sessions if {
	decision := authz.decision with input as request("session.read", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may read sessions")
}

test_researchers_do_not_read_sessions if {
	decision := authz.decision with input as request("session.read", researcher, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may read sessions")
}

test_proxy_may_not_read_sessions if {
	decision := authz.decision with input as request("session.read", proxy, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the egress proxy may only record egress events")
}

test_hub_may_not_read_sessions if {
	decision := authz.decision with input as request("session.read", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, hub_refusal)
}

test_staff_may_not_record_session_events if {
	decision := authz.decision with input as request("session.record", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only the hub may record session events")
}

# The hub records its events in sessions; nobody else does.

test_hub_records_session_events if {
	decision := authz.decision with input as request("session.record", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "the hub may record its events in sessions")
}

test_researchers_do_not_record_session_events if {
	decision := authz.decision with input as request("session.record", researcher, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only the hub may record session events")
}

test_bubbles_do_not_record_session_events if {
	decision := authz.decision with input as request("session.record", bubble, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_proxy_does_not_record_session_events if {
	decision := authz.decision with input as request("session.record", proxy, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the egress proxy may only record egress events")
}

# user.projects: the hub (its spawn page), CASD staff, or the person themself

test_hub_lists_the_projects_of_any_user if {
	decision := authz.decision with input as request("user.projects", hub, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "the hub may list the projects of any user")
}

test_hub_user_projects_without_username_is_refused if {
	decision := authz.decision with input as request("user.projects", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no user")
}

test_staff_list_the_projects_of_anyone if {
	decision := authz.decision with input as request("user.projects", staff, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may list the projects of anyone")
}

test_people_list_their_own_projects if {
	decision := authz.decision with input as request("user.projects", researcher, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "people may list their own projects")
}

test_a_lead_may_not_list_the_projects_of_their_member if {
	decision := authz.decision with input as request("user.projects", lead, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or mo themself may list the projects of mo")
}

test_user_projects_without_username_is_refused if {
	decision := authz.decision with input as request("user.projects", researcher, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no user")
}

test_own_projects_need_a_second_factor if {
	caller := object.union(researcher, {"acr": "pwd"})
	decision := authz.decision with input as request("user.projects", caller, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "people must sign in with a second factor (acr is not mfa)")
}

test_bubbles_do_not_list_user_projects if {
	decision := authz.decision with input as request("user.projects", bubble, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_proxy_does_not_list_user_projects if {
	decision := authz.decision with input as request("user.projects", proxy, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the egress proxy may only record egress events")
}

# user.networks.read and user.networks.set: CASD staff, or the person themself (soon after signing in, to change)

fresh_researcher := object.union(researcher, {"auth_age_seconds": 12.5})

test_staff_read_anyones_networks if {
	decision := authz.decision with input as request("user.networks.read", staff, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may read the registered networks of anyone")
}

test_people_read_their_own_networks_whenever_they_signed_in if {
	caller := object.union(researcher, {"auth_age_seconds": 7200})
	decision := authz.decision with input as request("user.networks.read", caller, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "people may read their own registered networks")
}

test_people_do_not_read_others_networks if {
	decision := authz.decision with input as request("user.networks.read", fresh_researcher, {"username": "lina"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or lina themself may read the registered networks of lina")
}

test_staff_change_anyones_networks_without_a_recent_login if {
	decision := authz.decision with input as request("user.networks.set", staff, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may change the registered networks of anyone")
}

test_people_change_their_own_networks_soon_after_signing_in if {
	decision := authz.decision with input as request("user.networks.set", fresh_researcher, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "people may change their own registered networks soon after signing in")
}

test_five_minutes_after_signing_in_is_still_recent if {
	caller := object.union(researcher, {"auth_age_seconds": 300})
	decision := authz.decision with input as request("user.networks.set", caller, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	decision.allow == true
}

test_a_stale_login_may_not_change_networks if {
	caller := object.union(researcher, {"auth_age_seconds": 300.5})
	decision := authz.decision with input as request("user.networks.set", caller, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "change your registered networks within 5 minutes of signing in")
}

test_an_unknown_login_time_may_not_change_networks if {
	decision := authz.decision with input as request("user.networks.set", researcher, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "change your registered networks within 5 minutes of signing in")
}

test_a_login_age_as_text_may_not_change_networks if {
	caller := object.union(researcher, {"auth_age_seconds": "1"})
	decision := authz.decision with input as request("user.networks.set", caller, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "change your registered networks within 5 minutes of signing in")
}

test_a_fresh_login_does_not_change_others_networks if {
	decision := authz.decision with input as request("user.networks.set", fresh_researcher, {"username": "lina"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff or lina themself may change the registered networks of lina")
}

test_networks_without_username_are_refused if {
	decision := authz.decision with input as request("user.networks.set", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no user")
}

test_the_hub_does_not_touch_networks if {
	decision := authz.decision with input as request("user.networks.set", hub, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, hub_refusal)
}

test_bubbles_do_not_touch_networks if {
	decision := authz.decision with input as request("user.networks.read", bubble, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

# Imports

test_members_and_leads_may_import if {
	decision := authz.decision with input as request("import.create", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "members of project cohort may import files into it")
	lead_decision := authz.decision with input as request("import.create", lead, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(lead_decision, "members of project cohort may import files into it")
}

test_staff_may_import_anywhere if {
	decision := authz.decision with input as request("import.create", staff, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may import files into every project")
}

test_outsider_may_not_import if {
	decision := authz.decision with input as request("import.create", outsider, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only members of project cohort and CASD staff may import files into it")
}

test_import_into_unknown_project_is_refused if {
	decision := authz.decision with input as request("import.create", researcher, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_members_read_imports_outsiders_do_not if {
	decision := authz.decision with input as request("import.read", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "mo is a member of project cohort")
	listing := authz.decision with input as request("import.list", outsider, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(listing, "olga is not a member of project cohort")
}

test_only_staff_review_imports if {
	decision := authz.decision with input as request("import.review", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may approve or reject imports")
	lead_decision := authz.decision with input as request("import.review", lead, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(lead_decision, "only CASD staff may approve or reject imports")
	queue := authz.decision with input as request("import.queue", researcher, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(queue, "only CASD staff may see the imports waiting for review")
}

test_only_staff_retag if {
	decision := authz.decision with input as request("governance.retag", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may re-tag a project's stored objects")
	lead_decision := authz.decision with input as request("governance.retag", lead, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(lead_decision, "only CASD staff may re-tag a project's stored objects")
}

test_bubble_reads_the_imports_of_its_own_project if {
	decision := authz.decision with input as request("import.read", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "a bubble may read the imports of its own project")
	listing := authz.decision with input as request("import.list", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(listing, "a bubble may read the imports of its own project")
}

test_bubble_may_not_read_the_imports_of_another_project if {
	decision := authz.decision with input as request("import.read", bubble, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
}

test_bubble_of_unknown_project_reads_no_imports if {
	decision := authz.decision with input as request("import.read", lost_bubble, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_bubble_may_not_import_or_review if {
	decision := authz.decision with input as request("import.create", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "bubbles may only read their own project")
	review := authz.decision with input as request("import.review", bubble, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(review, "bubbles may only read their own project")
}

test_hub_and_proxy_may_not_import if {
	decision := authz.decision with input as request("import.create", hub, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, hub_refusal)
	proxy_decision := authz.decision with input as request("import.read", proxy, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(proxy_decision, "the egress proxy may only record egress events")
}

# Session search (CASD staff) and the code a bubble runs, recorded into its own session

test_staff_search_sessions if {
	decision := authz.decision with input as request("session.search", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may search sessions")
}

test_leads_do_not_search_sessions if {
	decision := authz.decision with input as request("session.search", lead, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may search sessions")
}

test_bubbles_hub_and_proxy_do_not_search_sessions if {
	by_bubble := authz.decision with input as request("session.search", bubble, {})
		with data.store.infracalc.projects as projects
	refused(by_bubble, "bubbles may only read their own project")
	by_hub := authz.decision with input as request("session.search", hub, {})
		with data.store.infracalc.projects as projects
	refused(by_hub, hub_refusal)
	by_proxy := authz.decision with input as request("session.search", proxy, {})
	refused(by_proxy, "the egress proxy may only record egress events")
}

test_bubble_records_code_into_its_own_session if {
	decision := authz.decision with input as request("session.code.record", bubble, {"session": "b1"})
		with data.store.infracalc.projects as projects
	allowed(decision, "a bubble may record the code run in it into its own session")
}

test_bubble_may_not_record_code_into_another_session if {
	decision := authz.decision with input as request("session.code.record", bubble, {"session": "b2"})
		with data.store.infracalc.projects as projects
	refused(decision, "a bubble may record code into its own session only")
}

test_bubble_without_id_records_no_code if {
	anonymous := {"kind": "bubble", "project": "cohort"}
	decision := authz.decision with input as request("session.code.record", anonymous, {"session": "b1"})
		with data.store.infracalc.projects as projects
	refused(decision, "a bubble may record code into its own session only")
}

test_code_record_must_name_a_session if {
	decision := authz.decision with input as request("session.code.record", bubble, {})
		with data.store.infracalc.projects as projects
	refused(decision, "the request names no session")
}

test_people_do_not_record_code if {
	by_staff := authz.decision with input as request("session.code.record", staff, {"session": "b1"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(by_staff, "only a bubble may record the code run in it")
	by_researcher := authz.decision with input as request("session.code.record", researcher, {"session": "b1"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(by_researcher, "only a bubble may record the code run in it")
}

test_hub_and_proxy_do_not_record_code if {
	by_hub := authz.decision with input as request("session.code.record", hub, {"session": "b1"})
	refused(by_hub, hub_refusal)
	by_proxy := authz.decision with input as request("session.code.record", proxy, {"session": "b1"})
	refused(by_proxy, "the egress proxy may only record egress events")
}

# Enrollment: CASD staff, signed in with two factors, invite people and manage the invitations.

enrollment_actions := {
	"enrollment.create": "invite people",
	"enrollment.list": "list invitations",
	"enrollment.resend": "resend invitations",
	"enrollment.revoke": "revoke invitations",
}

test_staff_manage_invitations if {
	every action, what in enrollment_actions {
		decision := authz.decision with input as request(action, staff, {"project": "cohort"})
			with data.store.infracalc.projects as projects
			with data.store.infracalc.members as members
		allowed(decision, sprintf("CASD staff may %s", [what]))
	}
}

test_staff_without_mfa_may_not_invite if {
	staff_pwd := object.union(staff, {"acr": "pwd"})
	decision := authz.decision with input as request("enrollment.create", staff_pwd, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "people must sign in with a second factor (acr is not mfa)")
}

test_leads_do_not_invite if {
	every action, what in enrollment_actions {
		decision := authz.decision with input as request(action, lead, {"project": "cohort"})
			with data.store.infracalc.projects as projects
			with data.store.infracalc.members as members
		refused(decision, sprintf("only CASD staff may %s", [what]))
	}
}

test_hub_and_proxy_do_not_invite if {
	hub_decision := authz.decision with input as request("enrollment.create", hub, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(hub_decision, hub_refusal)
	proxy_decision := authz.decision with input as request("enrollment.list", proxy, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(proxy_decision, "the egress proxy may only record egress events")
}

# Exports

test_bubble_submits_exports_of_its_own_project if {
	decision := authz.decision with input as request("export.submit", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "a bubble may submit exports of its own project")
}

test_bubble_reads_exports_of_its_own_project if {
	decision := authz.decision with input as request("export.read", bubble, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "a bubble may read exports of its own project")
}

test_bubble_may_not_submit_exports_of_another_project if {
	decision := authz.decision with input as request("export.submit", bubble, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "a bubble may only submit and read exports of its own project")
}

test_bubble_of_a_deleted_project_submits_nothing if {
	decision := authz.decision with input as request("export.submit", lost_bubble, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_bubble_without_project_submits_nothing if {
	decision := authz.decision with input as request("export.submit", bubble, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "a bubble may only submit and read exports of its own project")
}

test_bubble_may_not_review_or_download_exports if {
	every action in ["export.review", "export.download", "export.list", "export.queue"] {
		decision := authz.decision with input as request(action, bubble, {"project": "cohort", "requested_by": "x"})
			with data.store.infracalc.projects as projects
			with data.store.infracalc.members as members
		refused(decision, "bubbles may only read their own project")
	}
}

test_people_do_not_submit_exports if {
	decision := authz.decision with input as request("export.submit", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "exports are submitted from a bubble of the project")
}

test_members_and_staff_list_and_read_exports if {
	every caller in [researcher, lead, staff] {
		every action in ["export.list", "export.read"] {
			decision := authz.decision with input as request(action, caller, {"project": "cohort"})
				with data.store.infracalc.projects as projects
				with data.store.infracalc.members as members
			decision.allow == true
		}
	}
}

test_outsiders_do_not_read_exports if {
	decision := authz.decision with input as request("export.read", outsider, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "olga is not a member of project cohort")
}

test_staff_list_the_review_queue if {
	decision := authz.decision with input as request("export.queue", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may list the exports awaiting review")
}

test_a_lead_does_not_list_the_review_queue if {
	decision := authz.decision with input as request("export.queue", lead, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may list the exports awaiting review")
}

test_staff_read_exports_under_review if {
	decision := authz.decision with input as request("export.inspect", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may read exports under review")
}

test_members_do_not_read_exports_before_release if {
	decision := authz.decision with input as request("export.inspect", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may read exports under review")
}

test_staff_review_exports_of_others if {
	decision := authz.decision with input as request("export.review", staff, {"project": "cohort", "requested_by": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may review the exports of others")
}

test_staff_never_review_their_own_export if {
	decision := authz.decision with input as request("export.review", staff, {"project": "cohort", "requested_by": "sam"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the requester of an export may not review it")
}

test_a_review_names_the_requester if {
	decision := authz.decision with input as request("export.review", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no requester of the export")
}

test_leads_do_not_review_exports if {
	decision := authz.decision with input as request("export.review", lead, {"project": "cohort", "requested_by": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may review exports")
}

test_members_download_exports if {
	decision := authz.decision with input as request("export.download", researcher, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "mo is a member of project cohort")
}

test_staff_who_are_not_members_do_not_download if {
	decision := authz.decision with input as request("export.download", staff, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only members of project cohort may download its exports")
}

test_outsiders_do_not_download if {
	decision := authz.decision with input as request("export.download", outsider, {"project": "weather"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only members of project weather may download its exports")
}

test_download_of_an_unknown_project_is_unknown if {
	decision := authz.decision with input as request("export.download", researcher, {"project": "nope"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "unknown project")
}

test_hub_and_proxy_do_nothing_with_exports if {
	hub_decision := authz.decision with input as request("export.submit", hub, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(hub_decision, hub_refusal)
	proxy_decision := authz.decision with input as request("export.download", proxy, {"project": "cohort"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(proxy_decision, "the egress proxy may only record egress events")
}

test_staff_read_promote_and_bar_the_risk_models if {
	every action in ["risk.read", "risk.promote", "risk.bar"] {
		decision := authz.decision with input as request(action, staff, {})
			with data.store.infracalc.projects as projects
			with data.store.infracalc.members as members
		decision.allow
	}
}

test_no_one_else_reads_or_governs_the_risk_models if {
	every caller in [lead, researcher] {
		decision := authz.decision with input as request("risk.promote", caller, {})
			with data.store.infracalc.projects as projects
			with data.store.infracalc.members as members
		refused(decision, "only CASD staff may promote or retire export risk models")
	}
}

test_a_bubble_does_not_read_the_risk_models if {
	decision := authz.decision with input as request("risk.read", bubble, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	not decision.allow
}

# user.offboard: CASD staff, never themselves

test_staff_offboard_a_person if {
	decision := authz.decision with input as request("user.offboard", staff, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "CASD staff may offboard mo")
}

test_staff_may_not_offboard_themselves if {
	decision := authz.decision with input as request("user.offboard", staff, {"username": "sam"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "CASD staff may not offboard themselves")
}

test_offboarding_names_a_user if {
	decision := authz.decision with input as request("user.offboard", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "the request names no user")
}

test_only_staff_offboard_people if {
	every caller in [lead, researcher, outsider, object.union(staff, {"acr": "1"})] {
		decision := authz.decision with input as request("user.offboard", caller, {"username": "mo"})
			with data.store.infracalc.projects as projects
			with data.store.infracalc.members as members
		decision.allow == false
	}
	decision := authz.decision with input as request("user.offboard", lead, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(decision, "only CASD staff may offboard people")
	themself := authz.decision with input as request("user.offboard", researcher, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(themself, "only CASD staff may offboard people")
}

test_components_may_not_offboard_people if {
	by_hub := authz.decision with input as request("user.offboard", hub, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(by_hub, hub_refusal)
	by_bubble := authz.decision with input as request("user.offboard", bubble, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(by_bubble, "bubbles may only read their own project")
	by_proxy := authz.decision with input as request("user.offboard", proxy, {"username": "mo"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	by_proxy.allow == false
}

# bubble.address: the hub records where a bubble runs, nobody else

test_hub_records_where_a_bubble_runs if {
	decision := authz.decision with input as request("bubble.address", hub, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	allowed(decision, "the hub may record where the bubbles it starts run")
}

test_only_the_hub_records_where_a_bubble_runs if {
	by_staff := authz.decision with input as request("bubble.address", staff, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(by_staff, "only the hub may record where a bubble runs")
	by_bubble := authz.decision with input as request("bubble.address", bubble, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	refused(by_bubble, "bubbles may only read their own project")
	by_proxy := authz.decision with input as request("bubble.address", proxy, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.members as members
	by_proxy.allow == false
}
