package infracalc.login_test

import data.infracalc.login

fixture := {
	"users": {
		"alice": {"networks": ["203.0.113.0/24", "2001:db8:1::/56"]},
		"bruno": {"networks": []},
	},
	"projects": {
		"cohort": {"governance": "CASD"},
		"weather": {"governance": "INFRACALC"},
	},
	"members": {
		"cohort": {"claire": {"role": "member"}},
		"weather": {"bruno": {"role": "lead"}, "alice": {"role": "member"}},
	},
}

test_password_only_is_refused if {
	decision := login.decision with input as {"username": "bruno", "acr": "1", "source_ip": "198.51.100.7"}
		with data.store.infracalc.users as fixture.users
		with data.store.infracalc.projects as fixture.projects
		with data.store.infracalc.members as fixture.members
	not decision.allow
	contains(decision.reason, "second factor")
	decision.code == "second_factor_missing"
}

test_registered_network_allows if {
	decision := login.decision with input as {"username": "alice", "acr": "mfa", "source_ip": "203.0.113.9"}
		with data.store.infracalc.users as fixture.users
		with data.store.infracalc.projects as fixture.projects
		with data.store.infracalc.members as fixture.members
	decision.allow
	decision.code == "registered_network"
}

test_registered_ipv6_network_allows if {
	decision := login.decision with input as {"username": "alice", "acr": "mfa", "source_ip": "2001:db8:1:ff::1"}
		with data.store.infracalc.users as fixture.users
		with data.store.infracalc.projects as fixture.projects
		with data.store.infracalc.members as fixture.members
	decision.allow
}

test_unregistered_address_is_refused_when_user_has_networks if {
	decision := login.decision with input as {"username": "alice", "acr": "mfa", "source_ip": "198.51.100.7"}
		with data.store.infracalc.users as fixture.users
		with data.store.infracalc.projects as fixture.projects
		with data.store.infracalc.members as fixture.members
	not decision.allow
	decision.reason == "source address 198.51.100.7 is not a registered network"
	decision.code == "source_not_registered"
	decision.source_ip == "198.51.100.7"
}

test_no_networks_and_no_casd_project_allows if {
	decision := login.decision with input as {"username": "bruno", "acr": "mfa", "source_ip": "198.51.100.7"}
		with data.store.infracalc.users as fixture.users
		with data.store.infracalc.projects as fixture.projects
		with data.store.infracalc.members as fixture.members
	decision.allow
	decision.code == "no_network_required"
}

test_casd_member_without_networks_is_refused if {
	decision := login.decision with input as {"username": "claire", "acr": "mfa", "source_ip": "198.51.100.7"}
		with data.store.infracalc.users as fixture.users
		with data.store.infracalc.projects as fixture.projects
		with data.store.infracalc.members as fixture.members
	not decision.allow
	contains(decision.reason, "CASD-governed")
	decision.code == "network_required"
}

test_unknown_user_without_data_allows_with_mfa if {
	decision := login.decision with input as {"username": "nobody", "acr": "mfa", "source_ip": "198.51.100.7"}
		with data.store.infracalc.users as {}
	decision.allow
}

test_missing_input_is_refused if {
	decision := login.decision with input as {} with data.store.infracalc.users as fixture.users
		with data.store.infracalc.projects as fixture.projects
		with data.store.infracalc.members as fixture.members
	not decision.allow
	decision.code == "no_rule"
}
