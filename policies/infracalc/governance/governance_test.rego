package infracalc.governance_test

import data.infracalc.governance

projects := {
	"cohort": {"title": "Birth cohort", "governance": "CASD", "sensitive_data": true},
	"survey": {"title": "Survey", "governance": "CASD", "sensitive_data": false},
	"legacy": {"title": "Before imports", "governance": "CASD"},
	"weather": {"title": "Weather", "governance": "INFRACALC", "sensitive_data": false},
	"unowned": {"title": "No owner recorded"},
}

staff := {"kind": "person", "username": "sam", "roles": ["casd-staff"], "acr": "mfa"}

lead := {"kind": "person", "username": "lina", "roles": [], "acr": "mfa"}

because := "the data sharing agreement changed"

switch(caller, project, to) := {"caller": caller, "project": project, "to": to, "reason": because}

refused(decision, reason) if {
	decision.allow == false
	decision.reason == reason
}

# Allowed switches

test_staff_move_a_project_to_casd if {
	decision := governance.decision with input as switch(staff, "weather", "CASD")
		with data.store.infracalc.projects as projects
	decision == {
		"allow": true,
		"reason": "CASD staff may move project weather to CASD governance",
		"from": "INFRACALC",
		"to": "CASD",
	}
}

test_staff_move_a_project_without_sensitive_data_to_infracalc if {
	decision := governance.decision with input as switch(staff, "survey", "INFRACALC")
		with data.store.infracalc.projects as projects
	decision == {
		"allow": true,
		"reason": "CASD staff may move project survey to INFRACALC governance",
		"from": "CASD",
		"to": "INFRACALC",
	}
}

test_absent_sensitive_data_flag_means_none if {
	decision := governance.decision with input as switch(staff, "legacy", "INFRACALC")
		with data.store.infracalc.projects as projects
	decision.allow
	decision.from == "CASD"
}

test_reason_of_exactly_ten_characters_is_enough if {
	request := object.union(switch(staff, "weather", "CASD"), {"reason": "  0123456789 \n"})
	decision := governance.decision with input as request
		with data.store.infracalc.projects as projects
	decision.allow
}

# Sensitive data

test_sensitive_project_may_not_move_to_infracalc if {
	decision := governance.decision with input as switch(staff, "cohort", "INFRACALC")
		with data.store.infracalc.projects as projects
	refused(decision, "project holds data classed sensitive; it must stay under CASD governance")
	not decision.from
}

test_sensitive_project_may_move_back_to_casd if {
	sensitive := object.union(projects, {"weather": {"governance": "INFRACALC", "sensitive_data": true}})
	decision := governance.decision with input as switch(staff, "weather", "CASD")
		with data.store.infracalc.projects as sensitive
	decision.allow
	decision.to == "CASD"
}

# Who may switch

test_lead_is_refused if {
	decision := governance.decision with input as switch(lead, "weather", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "only CASD staff may switch a project's governance")
}

test_unknown_role_is_refused if {
	caller := object.union(lead, {"roles": ["admin", "CASD-STAFF"]})
	decision := governance.decision with input as switch(caller, "weather", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "only CASD staff may switch a project's governance")
}

test_missing_roles_are_refused if {
	decision := governance.decision with input as switch(object.remove(staff, ["roles"]), "weather", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "only CASD staff may switch a project's governance")
}

test_staff_without_mfa_are_refused if {
	decision := governance.decision with input as switch(object.union(staff, {"acr": "1"}), "weather", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "people must sign in with a second factor (acr is not mfa)")
}

test_staff_without_acr_are_refused if {
	decision := governance.decision with input as switch(object.remove(staff, ["acr"]), "weather", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "people must sign in with a second factor (acr is not mfa)")
}

test_bubble_is_refused_even_with_staff_role if {
	caller := {"kind": "bubble", "project": "weather", "roles": ["casd-staff"], "acr": "mfa"}
	decision := governance.decision with input as switch(caller, "weather", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "only people may switch a project's governance")
}

test_hub_is_refused if {
	decision := governance.decision with input as switch({"kind": "hub"}, "weather", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "only people may switch a project's governance")
}

test_missing_caller_is_refused if {
	decision := governance.decision with input as {"project": "weather", "to": "CASD", "reason": because}
		with data.store.infracalc.projects as projects
	refused(decision, "only people may switch a project's governance")
}

test_empty_input_is_refused if {
	decision := governance.decision with input as {}
		with data.store.infracalc.projects as projects
	not decision.allow
}

# The project

test_unknown_project_is_refused if {
	decision := governance.decision with input as switch(staff, "nope", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "unknown project")
}

test_missing_project_is_refused if {
	decision := governance.decision with input as object.remove(switch(staff, "weather", "CASD"), ["project"])
		with data.store.infracalc.projects as projects
	refused(decision, "the request names no project")
}

test_without_service_data_projects_are_unknown if {
	decision := governance.decision with input as switch(staff, "weather", "CASD")
		with data.store.infracalc.projects as {}
	refused(decision, "unknown project")
}

test_project_without_recorded_owner_is_refused if {
	decision := governance.decision with input as switch(staff, "unowned", "CASD")
		with data.store.infracalc.projects as projects
	not decision.allow
}

# The target owner

test_same_owner_is_refused if {
	decision := governance.decision with input as switch(staff, "weather", "INFRACALC")
		with data.store.infracalc.projects as projects
	refused(decision, "project is already under INFRACALC governance")
}

test_same_owner_casd_is_refused if {
	decision := governance.decision with input as switch(staff, "survey", "CASD")
		with data.store.infracalc.projects as projects
	refused(decision, "project is already under CASD governance")
}

test_unknown_owner_is_refused if {
	decision := governance.decision with input as switch(staff, "weather", "casd")
		with data.store.infracalc.projects as projects
	refused(decision, "governance must be CASD or INFRACALC, not casd")
}

test_missing_owner_is_refused if {
	decision := governance.decision with input as object.remove(switch(staff, "weather", "CASD"), ["to"])
		with data.store.infracalc.projects as projects
	refused(decision, "the request names no target governance (to)")
}

# The written reason

test_short_reason_is_refused if {
	request := object.union(switch(staff, "weather", "CASD"), {"reason": "because"})
	decision := governance.decision with input as request
		with data.store.infracalc.projects as projects
	refused(decision, "a reason of at least 10 characters is required")
}

test_padded_short_reason_is_refused if {
	request := object.union(switch(staff, "weather", "CASD"), {"reason": "     why      "})
	decision := governance.decision with input as request
		with data.store.infracalc.projects as projects
	refused(decision, "a reason of at least 10 characters is required")
}

test_missing_reason_is_refused if {
	decision := governance.decision with input as object.remove(switch(staff, "weather", "CASD"), ["reason"])
		with data.store.infracalc.projects as projects
	refused(decision, "a reason of at least 10 characters is required")
}

test_non_text_reason_is_refused if {
	request := object.union(switch(staff, "weather", "CASD"), {"reason": 12345678901})
	decision := governance.decision with input as request
		with data.store.infracalc.projects as projects
	refused(decision, "a reason of at least 10 characters is required")
}

test_short_reason_is_refused_before_sensitive_data if {
	request := object.union(switch(staff, "cohort", "INFRACALC"), {"reason": "no"})
	decision := governance.decision with input as request
		with data.store.infracalc.projects as projects
	refused(decision, "a reason of at least 10 characters is required")
}
