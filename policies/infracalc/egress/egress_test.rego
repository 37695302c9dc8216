package infracalc.egress_test

import data.infracalc.egress

# The clock every test runs at: 2026-01-01T00:00:00Z.
now := 1767225600000000000

day := 86400000000000

projects := {
	"weather": {"title": "Weather", "governance": "INFRACALC", "sensitive_data": false},
	"other": {"title": "Another team", "governance": "INFRACALC"},
	"cohort": {"title": "Birth cohort", "governance": "CASD", "sensitive_data": true},
	"unowned": {"title": "No owner recorded"},
	"quiet": {"title": "No rules yet", "governance": "INFRACALC"},
}

# An approved rule without restrictions, valid for a day.
approved(host, ports) := {
	"host": host, "wildcard": false, "ports": ports, "methods": [], "path_prefixes": [],
	"expires_at_ns": now + day,
}

wildcard(domain, ports) := object.union(approved(domain, ports), {"wildcard": true})

# An inspect rule on port 443, with more fields.
inspected(host, more) := object.union(object.union(approved(host, [443]), {"mode": "inspect"}), more)

rules := {
	"weather": {
		"r-api": approved("api.example.org", [443]),
		"r-wild": wildcard("example.org", [443, 8443]),
		"r-http": object.union(approved("data.example.net", [80]), {
			"methods": ["get", "HEAD"],
			"path_prefixes": ["/v1/", "/public/"],
		}),
		"r-tls": object.union(approved("tls.example.com", [443]), {"methods": ["GET"]}),
		"r-paths": object.union(approved("files.example.com", [443]), {"path_prefixes": ["/pub/"]}),
		"r-old": object.union(approved("old.example.com", [443]), {"expires_at_ns": now - day}),
		"r-odd": object.union(approved("odd.example.com", [443]), {"expires_at_ns": "soon"}),
		"r-dup-b": approved("dup.example.com", [443]),
		"r-dup-a": approved("dup.example.com", [443]),
		"r-ip": approved("192.0.2.10", [443]),
		"r-ip6": approved("2001:db8::1", [443]),
		"r-numeric": wildcard("0.2.10", [443]),
		"r-bare": {"host": "bare.example.com", "ports": [443], "expires_at_ns": now + day},
		"r-yes": object.union(approved("yes.example.com", [443]), {"wildcard": "yes"}),
		"r-noports": object.remove(approved("noports.example.com", []), ["ports"]),
		"r-strmethods": object.union(approved("str.example.com", [80]), {"methods": "GET"}),
		"r-inspect": inspected("api.inspect.test", {
			"methods": ["GET", "HEAD"], "path_prefixes": ["/v1/"],
			"max_request_bytes": 1000, "daily_upload_bytes": 5000, "max_response_bytes": 1000000,
		}),
		"r-post": inspected("api.inspect.test", {
			"methods": ["POST"], "path_prefixes": ["/v1/upload"],
			"max_request_bytes": 4000, "daily_upload_bytes": 5000,
		}),
		"r-both-t": object.union(approved("both.inspect.test", [443]), {"mode": "tunnel"}),
		"r-both-i": inspected("both.inspect.test", {}),
		"r-badcap": inspected("badcap.inspect.test", {"max_request_bytes": "lots", "daily_upload_bytes": 10}),
		"r-badbudget": inspected("budget.inspect.test", {"daily_upload_bytes": "lots"}),
		"r-tunnel-only": object.union(approved("opaque.inspect.test", [443]), {"mode": "tunnel"}),
		"r-strange": inspected("strange.inspect.test", {"mode": "sideways"}),
	},
	"other": {"o-secret": approved("secret.example.com", [443])},
	"cohort": {"c-api": approved("api.example.org", [443])},
}

# The host index the service pushes beside the rules, built from them here so that the two cannot
# drift: each rule under its host (a wildcard rule under its base domain).
hosts_of(rules_by_project) := {slug: host_index(project_rules) | some slug, project_rules in rules_by_project}

host_index(project_rules) := {name: rules_named(project_rules, name) |
	some name in {rule.host | some rule in project_rules}
}

rules_named(project_rules, name) := {rule_id: true | some rule_id, rule in project_rules; rule.host == name}

bubble := {"id": "b-42", "project": "weather"}

tunnel(host, port) := {"bubble": bubble, "host": host, "port": port, "scheme": "connect"}

plain(host, port, method, path) := {
	"bubble": bubble, "host": host, "port": port, "scheme": "http",
	"method": method, "path": path, "body_bytes": 0, "request_bytes": 100, "sent_today": {},
}

# object.union merges nested objects: the bubble is replaced, not merged.
with_bubble(request, who) := object.union(object.remove(request, ["bubble"]), {"bubble": who})

as_project(request, project) := object.union(request, {"bubble": {"id": "b-7", "project": project}})

allowed_by(decision, rule_id) if {
	decision.allow == true
	decision.rule_id == rule_id
}

refused(decision, reason) if {
	decision == {
		"allow": false, "reason": reason, "rule_id": null,
		"mode": null, "status": 403, "max_response_bytes": null, "daily_upload_bytes": null,
	}
}

traversal := "the path holds a dot segment or an encoded dot, which could escape a path prefix"

# Exact hosts

test_exact_host_and_port_allow_a_tunnel if {
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	decision == {
		"allow": true,
		"reason": "rule r-api of project weather allows api.example.org:443",
		"rule_id": "r-api",
		"mode": "tunnel",
		"status": null,
		"max_response_bytes": null,
		"daily_upload_bytes": null,
	}
}

test_exact_host_allows_plain_http_on_a_listed_port_whatever_the_method_and_path if {
	decision := egress.decision with input as plain("api.example.org", 443, "DELETE", "/anything/at/all")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-api")
}

test_port_not_in_the_rule_is_refused if {
	decision := egress.decision with input as tunnel("api.example.org", 80)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows api.example.org:80")
}

test_unlisted_host_is_refused if {
	decision := egress.decision with input as tunnel("evil.example.net", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows evil.example.net:443")
}

test_host_is_compared_in_lowercase_without_a_trailing_dot if {
	decision := egress.decision with input as tunnel("API.Example.ORG.", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-api")
	decision.reason == "rule r-api of project weather allows api.example.org:443"
}

test_an_exact_rule_does_not_cover_subdomains if {
	decision := egress.decision with input as tunnel("x.bare.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows x.bare.example.com:443")
}

test_rule_without_wildcard_field_is_exact if {
	decision := egress.decision with input as tunnel("bare.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-bare")
	second := egress.decision with input as plain("bare.example.com", 443, "PUT", "/x")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(second, "r-bare")
}

# Wildcards

test_wildcard_matches_one_more_label if {
	decision := egress.decision with input as tunnel("a.example.org", 8443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-wild")
}

test_wildcard_matches_several_more_labels if {
	decision := egress.decision with input as tunnel("a.b.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-wild")
}

test_wildcard_does_not_match_its_own_domain if {
	decision := egress.decision with input as tunnel("example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows example.org:443")
}

test_wildcard_does_not_match_a_name_merely_ending_like_it if {
	decision := egress.decision with input as tunnel("badexample.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows badexample.org:443")
	second := egress.decision with input as tunnel("example.org.evil.net", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(second, "no approved rule of project weather allows example.org.evil.net:443")
}

test_wildcard_checks_the_port if {
	decision := egress.decision with input as tunnel("a.example.org", 80)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows a.example.org:80")
}

test_wildcard_field_must_be_true_to_widen_a_rule if {
	decision := egress.decision with input as tunnel("a.yes.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows a.yes.example.com:443")
	second := egress.decision with input as tunnel("yes.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(second, "no approved rule of project weather allows yes.example.com:443")
}

test_single_label_host_is_matched_exactly if {
	local := {"weather": {"r-local": approved("intranet", [443]), "r-top": wildcard("org", [443])}}
	decision := egress.decision with input as tunnel("intranet", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as local
		with data.store.infracalc.rule_hosts as hosts_of(local)
		with time.now_ns as now
	allowed_by(decision, "r-local")
}

# IP literals

test_ip_literal_named_by_a_rule_is_allowed if {
	decision := egress.decision with input as tunnel("192.0.2.10", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-ip")
}

test_ip_literal_is_never_matched_by_a_wildcard if {
	decision := egress.decision with input as tunnel("198.0.2.10", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows 198.0.2.10:443")
}

test_number_ending_name_is_read_as_an_address if {
	numeric := {"weather": {"r-hex": wildcard("0x7f000001", [443])}}
	decision := egress.decision with input as tunnel("a.example.0x7f000001", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as numeric
		with data.store.infracalc.rule_hosts as hosts_of(numeric)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows a.example.0x7f000001:443")
}

test_ipv6_literal_with_or_without_brackets if {
	decision := egress.decision with input as tunnel("2001:DB8::1", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-ip6")
	second := egress.decision with input as tunnel("[2001:db8::1]", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(second, "r-ip6")
	second.reason == "rule r-ip6 of project weather allows 2001:db8::1:443"
}

test_other_ipv6_literal_is_refused if {
	decision := egress.decision with input as tunnel("::ffff:127.0.0.1", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows ::ffff:127.0.0.1:443")
}

# Projects and governance

test_rules_of_another_project_never_match if {
	decision := egress.decision with input as tunnel("secret.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows secret.example.com:443")
	second := egress.decision with input as as_project(tunnel("secret.example.com", 443), "other")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(second, "o-secret")
}

test_casd_project_calls_nothing_even_with_a_rule if {
	decision := egress.decision with input as as_project(tunnel("api.example.org", 443), "cohort")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "project cohort is under CASD governance: no external API")
}

test_project_without_governance_calls_nothing if {
	decision := egress.decision with input as as_project(tunnel("api.example.org", 443), "unowned")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "project unowned has no known governance owner: no external API")
}

test_unknown_project_is_refused if {
	decision := egress.decision with input as as_project(tunnel("api.example.org", 443), "ghost")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "unknown project")
}

test_project_without_rules_is_refused if {
	decision := egress.decision with input as as_project(tunnel("api.example.org", 443), "quiet")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project quiet allows api.example.org:443")
}

test_without_any_rule_data_everything_is_refused if {
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows api.example.org:443")
}

test_without_project_data_the_project_is_unknown if {
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "unknown project")
}

# Expiry

test_expired_rule_says_so if {
	decision := egress.decision with input as tunnel("old.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "rule r-old of project weather would allow old.example.com:443 but expired at 2025-12-31T00:00:00Z")
}

test_rule_expires_at_its_expiry_time if {
	at_expiry := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now + day
	refused(at_expiry, "rule r-api of project weather would allow api.example.org:443 but expired at 2026-01-02T00:00:00Z")
	just_before := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as (now + day) - 1
	allowed_by(just_before, "r-api")
}

test_rule_without_a_numeric_expiry_never_allows if {
	decision := egress.decision with input as tunnel("odd.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "rule r-odd of project weather would allow odd.example.com:443 but has no valid expiry")
}

test_expiry_that_is_not_a_whole_number_of_nanoseconds_is_reported_as_invalid if {
	fractional := {"weather": {"r-frac": object.union(approved("api.example.org", [443]), {"expires_at_ns": 1.5})}}
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as fractional
		with data.store.infracalc.rule_hosts as hosts_of(fractional)
		with time.now_ns as now
	refused(decision, "rule r-frac of project weather would allow api.example.org:443 but has no valid expiry")
}

test_expired_rule_on_another_port_gives_the_default_reason if {
	decision := egress.decision with input as tunnel("old.example.com", 8443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows old.example.com:8443")
}

test_a_live_rule_wins_over_an_expired_one if {
	both := {"weather": {
		"a-old": object.union(approved("api.example.org", [443]), {"expires_at_ns": now - 1}),
		"b-new": approved("api.example.org", [443]),
	}}
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as both
		with data.store.infracalc.rule_hosts as hosts_of(both)
		with time.now_ns as now
	allowed_by(decision, "b-new")
}

# The host index

test_a_rule_missing_from_the_index_is_not_used if {
	# The index is the only way to a rule: without their entries, r-bare (exact) and r-wild
	# (wildcard) are never found, though they are still in the rules.
	trimmed := {"weather": object.remove(hosts_of(rules).weather, ["bare.example.com", "example.org"])}
	exact := egress.decision with input as tunnel("bare.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as trimmed
		with time.now_ns as now
	refused(exact, "no approved rule of project weather allows bare.example.com:443")
	wild := egress.decision with input as tunnel("a.example.org", 8443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as trimmed
		with time.now_ns as now
	refused(wild, "no approved rule of project weather allows a.example.org:8443")
	still := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as trimmed
		with time.now_ns as now
	allowed_by(still, "r-api")
}

test_a_project_without_an_index_allows_nothing if {
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as {"other": hosts_of(rules).weather}
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows api.example.org:443")
}

test_an_index_entry_for_an_unknown_rule_or_another_projects_rule_allows_nothing if {
	stray := object.union(hosts_of(rules), {"weather": {
		"secret.example.com": {"o-secret": true},
		"evil.example.net": {"r-ghost": true, "o-secret": true, "c-api": true},
	}})
	secret := egress.decision with input as tunnel("secret.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as stray
		with time.now_ns as now
	refused(secret, "no approved rule of project weather allows secret.example.com:443")
	evil := egress.decision with input as tunnel("evil.example.net", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as stray
		with time.now_ns as now
	refused(evil, "no approved rule of project weather allows evil.example.net:443")
}

test_another_projects_index_is_never_read if {
	# The index of weather, filed under quiet, gives quiet nothing: the rules are read from
	# quiet's own rules only.
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as {"quiet": hosts_of(rules).weather}
		with time.now_ns as now
		with input.bubble as {"id": "b-7", "project": "quiet"}
	refused(decision, "no approved rule of project quiet allows api.example.org:443")
}

test_an_index_entry_under_the_wrong_host_allows_nothing if {
	# A rule is used only under the name it carries: r-api (api.example.org) filed under
	# evil.example.net, r-bare (exact, bare.example.com) under its parent domain, and r-wild
	# (*.example.org) under the request host instead of its base domain do not match.
	misfiled := {"weather": object.union(object.remove(hosts_of(rules).weather, ["example.org"]), {
		"evil.example.net": {"r-api": true},
		"example.com": {"r-bare": true},
		"a.example.org": {"r-wild": true},
	})}
	evil := egress.decision with input as tunnel("evil.example.net", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as misfiled
		with time.now_ns as now
	refused(evil, "no approved rule of project weather allows evil.example.net:443")
	sub := egress.decision with input as tunnel("x.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as misfiled
		with time.now_ns as now
	refused(sub, "no approved rule of project weather allows x.example.com:443")
	wild := egress.decision with input as tunnel("a.example.org", 8443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as misfiled
		with time.now_ns as now
	refused(wild, "no approved rule of project weather allows a.example.org:8443")
}

test_an_index_entry_that_is_not_true_allows_nothing if {
	not_true := object.union(hosts_of(rules), {"weather": {"bare.example.com": {"r-bare": false}}})
	decision := egress.decision with input as tunnel("bare.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as not_true
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows bare.example.com:443")
}

# Several matching rules

test_several_matching_rules_give_the_smallest_id if {
	decision := egress.decision with input as tunnel("dup.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-dup-a")
	decision.reason == "rule r-dup-a of project weather allows dup.example.com:443"
}

test_exact_and_wildcard_rules_give_the_smallest_id if {
	both := {"weather": {"z-exact": approved("api.example.org", [443]), "a-wild": wildcard("example.org", [443])}}
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as both
		with data.store.infracalc.rule_hosts as hosts_of(both)
		with time.now_ns as now
	allowed_by(decision, "a-wild")
}

# Methods and paths (plain HTTP)

test_plain_http_method_and_path_prefix_allow if {
	decision := egress.decision with input as plain("data.example.net", 80, "GET", "/v1/stations?id=7")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-http")
	decision.reason == "rule r-http of project weather allows data.example.net:80"
}

test_methods_compare_case_insensitively if {
	decision := egress.decision with input as plain("data.example.net", 80, "head", "/public/readme")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-http")
}

test_method_not_in_the_rule_is_refused if {
	decision := egress.decision with input as plain("data.example.net", 80, "post", "/v1/stations")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows POST /v1/stations on data.example.net:80")
}

test_path_outside_the_prefixes_is_refused if {
	decision := egress.decision with input as plain("data.example.net", 80, "GET", "/v2/stations")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows GET /v2/stations on data.example.net:80")
	second := egress.decision with input as plain("data.example.net", 80, "GET", "/v1")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(second, "no approved rule of project weather allows GET /v1 on data.example.net:80")
}

test_path_prefix_without_method_restriction if {
	decision := egress.decision with input as plain("files.example.com", 443, "PUT", "/pub/a")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-paths")
	second := egress.decision with input as plain("files.example.com", 443, "PUT", "/private/a")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(second, "no approved rule of project weather allows PUT /private/a on files.example.com:443")
}

test_method_restriction_without_path_prefix if {
	decision := egress.decision with input as plain("tls.example.com", 443, "GET", "/anywhere")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-tls")
}

test_methods_that_are_not_a_list_allow_no_method if {
	decision := egress.decision with input as plain("str.example.com", 80, "GET", "/")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows GET / on str.example.com:80")
}

test_dots_inside_a_segment_are_not_a_traversal if {
	decision := egress.decision with input as plain("data.example.net", 80, "GET", "/v1/a..b/c.d")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-http")
	second := egress.decision with input as plain("data.example.net", 80, "GET", "/v1/x?q=..")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(second, "r-http")
}

test_dot_segments_and_encoded_dots_are_refused if {
	every path in [
		"/v1/../admin",
		"/v1/..",
		"/v1/..?x=1",
		"/v1/..;/admin",
		"/v1/..%2fadmin",
		"/v1/..%2Fadmin",
		"/v1/..%5cadmin",
		"/v1/..\\admin",
		"/v1/%2e%2e/admin",
		"/v1/%2E./admin",
		"/v1/.%2e/admin",
		"/v1/%252e%252e/admin",
		"/public/x/../../admin",
	] {
		decision := egress.decision with input as plain("data.example.net", 80, "GET", path)
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		refused(decision, traversal)
	}
}

test_traversal_is_refused_even_without_path_prefixes if {
	decision := egress.decision with input as plain("api.example.org", 443, "GET", "/../x")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, traversal)
}

# CONNECT through a rule restricting methods or paths

test_tunnel_through_a_method_restricted_rule_is_refused if {
	decision := egress.decision with input as tunnel("tls.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "rule r-tls restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)")
}

test_tunnel_through_a_path_restricted_rule_is_refused if {
	decision := egress.decision with input as tunnel("files.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "rule r-paths restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)")
}

test_tunnel_uses_an_unrestricted_rule_beside_a_restricted_one if {
	both := {"weather": {
		"a-get": object.union(approved("api.example.org", [443]), {"methods": ["GET"]}),
		"b-any": approved("api.example.org", [443]),
	}}
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as both
		with data.store.infracalc.rule_hosts as hosts_of(both)
		with time.now_ns as now
	allowed_by(decision, "b-any")
}

test_tunnel_through_a_rule_with_methods_that_are_not_a_list_is_refused if {
	decision := egress.decision with input as tunnel("str.example.com", 80)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "rule r-strmethods restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)")
}

# Malformed rules

test_rule_without_ports_allows_nothing if {
	decision := egress.decision with input as tunnel("noports.example.com", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows noports.example.com:443")
}

# Missing or malformed input

test_empty_input_is_refused if {
	decision := egress.decision with input as {}
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "the request names no bubble (bubble.id)")
}

test_input_that_is_not_an_object_is_refused if {
	decision := egress.decision with input as "api.example.org:443"
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "the request names no bubble (bubble.id)")
}

test_bubble_without_id_is_refused if {
	every who in [{"project": "weather"}, {"id": "", "project": "weather"}, {"id": 42, "project": "weather"}, "b-42"] {
		decision := egress.decision with input as with_bubble(tunnel("api.example.org", 443), who)
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		refused(decision, "the request names no bubble (bubble.id)")
	}
}

test_bubble_without_project_is_refused if {
	every who in [{"id": "b-42"}, {"id": "b-42", "project": ""}, {"id": "b-42", "project": ["weather"]}] {
		decision := egress.decision with input as with_bubble(tunnel("api.example.org", 443), who)
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		refused(decision, "the request names no project (bubble.project)")
	}
}

test_missing_host_is_refused if {
	decision := egress.decision with input as object.remove(tunnel("x", 443), ["host"])
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "the request names no host")
	second := egress.decision with input as tunnel("", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(second, "the request names no host")
	third := egress.decision with input as tunnel(42, 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(third, "the request names no host")
}

test_malformed_hosts_are_refused if {
	every name in [
		"evil.com/api.example.org",
		"api.example.org:443",
		"user@api.example.org",
		"a..example.org",
		".example.org",
		"-a.example.org",
		"a-.example.org",
		"*.example.org",
		"api.example.org..",
		"exa mple.org",
		"[::1",
		"fe80::1%eth0",
		concat("", ["abcdefghij" | some _ in numbers.range(1, 7)]),
	] {
		decision := egress.decision with input as tunnel(name, 443)
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		refused(decision, sprintf("malformed host %q", [name]))
	}
}

test_host_length_limits if {
	label := concat("", ["a" | some _ in numbers.range(1, 63)])
	long_label := concat("", [label, "a"])
	decision := egress.decision with input as tunnel(concat(".", [long_label, "org"]), 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, sprintf("malformed host %q", [concat(".", [long_label, "org"])]))
	longest := concat(".", [label, label, label, concat("", ["a" | some _ in numbers.range(1, 61)])])
	count(longest) == 253
	second := egress.decision with input as tunnel(longest, 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(second, sprintf("no approved rule of project weather allows %s:443", [longest]))
	too_long := concat("", ["a.", longest])
	third := egress.decision with input as tunnel(too_long, 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(third, sprintf("malformed host %q", [too_long]))
}

test_malformed_ports_are_refused if {
	every port in [0, -1, 65536, 443.5, "443", null, [443]] {
		decision := egress.decision with input as tunnel("api.example.org", port)
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		refused(decision, "the port must be an integer from 1 to 65535")
	}
	decision := egress.decision with input as object.remove(tunnel("api.example.org", 443), ["port"])
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "the port must be an integer from 1 to 65535")
}

test_port_bounds_are_accepted if {
	decision := egress.decision with input as tunnel("api.example.org", 1)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows api.example.org:1")
	second := egress.decision with input as tunnel("api.example.org", 65535)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(second, "no approved rule of project weather allows api.example.org:65535")
}

test_unknown_or_missing_scheme_is_refused if {
	decision := egress.decision with input as object.union(tunnel("api.example.org", 443), {"scheme": "ftp"})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "the scheme must be connect, http or https")
	second := egress.decision with input as object.remove(tunnel("api.example.org", 443), ["scheme"])
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(second, "the scheme must be connect, http or https")
}

test_plain_http_without_a_valid_method_is_refused if {
	every method in ["", "G ET", "GET\r\n", 5, null] {
		decision := egress.decision with input as plain("data.example.net", 80, method, "/v1/x")
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		refused(decision, "a request must name its method")
	}
	decision := egress.decision with input as object.remove(plain("data.example.net", 80, "GET", "/v1/x"), ["method"])
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "a request must name its method")
}

test_plain_http_method_with_a_hyphen_is_well_formed if {
	decision := egress.decision with input as plain("api.example.org", 443, "VERSION-CONTROL", "/")
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-api")
}

test_plain_http_without_a_rooted_path_is_refused if {
	every path in ["", "v1/x", "*", "http://data.example.net/v1/x", 7] {
		decision := egress.decision with input as plain("data.example.net", 80, "GET", path)
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		refused(decision, "a request must name a path starting with /")
	}
	decision := egress.decision with input as object.remove(plain("data.example.net", 80, "GET", "/v1/x"), ["path"])
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "a request must name a path starting with /")
}

test_tunnel_ignores_method_and_path_fields if {
	request := object.union(tunnel("api.example.org", 443), {"method": 5, "path": "/../x"})
	decision := egress.decision with input as request
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-api")
}

test_decision_is_always_a_complete_object if {
	every request in [
		null, [], {"bubble": null}, {"bubble": {"id": 1, "project": 2}},
		{"bubble": bubble, "host": {"a": 1}, "port": 443, "scheme": "connect"},
		{"bubble": bubble, "host": "api.example.org", "port": true, "scheme": "connect"},
		{"bubble": bubble, "host": "api.example.org", "port": 443, "scheme": ["connect"]},
		{"bubble": bubble, "host": "api.example.org", "port": 443, "scheme": "http", "method": ["GET"], "path": {}},
	] {
		decision := egress.decision with input as request
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		decision.allow == false
		is_string(decision.reason)
		decision.rule_id == null
	}
}

# The default decision

test_default_denies_when_matching_breaks if {
	# Should the rule matching ever fail (here: a broken set of allowed rules), the decision is
	# the default refusal, never undefined.
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
		with egress.allowed as "broken"
	refused(decision, "no rule allows this connection")
}

# The proxy's question: the bubble is authenticated from data.store.infracalc.bubbles

# Every bubble of these tests runs at 10.233.0.2 (where connecting() comes from), unless it says otherwise.
here := "10.233.0.2"

bubbles := {
	"b-42": {"project": "weather", "username": "alice", "token_sha256": "aa11", "address": here},
	"b-cohort": {"project": "cohort", "username": "alice", "token_sha256": "bb22", "address": here},
	"b-nameless": {"project": "", "username": "alice", "token_sha256": "cc33", "address": here},
	"b-removed": {"project": "weather", "username": "bruno", "token_sha256": "dd44", "address": here},
	"b-anonymous": {"project": "weather", "token_sha256": "ee55", "address": here},
	"b-starting": {"project": "weather", "username": "alice", "token_sha256": "1188", "address": null},
	"b-unaddressed": {"project": "weather", "username": "alice", "token_sha256": "2299"},
	"b-v6": {"project": "weather", "username": "alice", "token_sha256": "33aa", "address": "fd00:233::2"},
}

members := {
	"weather": {"alice": {"role": "member"}, "carla": {"role": "guest"}},
	"cohort": {"alice": {"role": "lead"}},
}

connecting(who, host, port) := {"bubble": who, "host": host, "port": port, "scheme": "connect", "source_ip": here}

from_address(who, source_ip) := object.union(connecting(who, "api.example.org", 443), {"source_ip": source_ip})

unauthenticated := {
	"allow": false,
	"authenticated": false,
	"reason": "unknown bubble, revoked bubble or wrong token",
	"rule_id": null,
	"project": null,
	"expires_at_ns": null,
}

test_connection_authenticates_the_bubble_and_gives_the_rule_expiry if {
	answer := egress.connection with input as connecting({"id": "b-42", "token_sha256": "aa11"}, "api.example.org", 443)
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer == {
		"allow": true,
		"authenticated": true,
		"reason": "rule r-api of project weather allows api.example.org:443",
		"rule_id": "r-api",
		"mode": "tunnel",
		"status": null,
		"max_response_bytes": null,
		"daily_upload_bytes": null,
		"project": "weather",
		"username": "alice",
		"expires_at_ns": now + day,
	}
}

test_connection_reads_the_project_from_the_data_never_from_the_input if {
	# The bubble claims another project: its own (cohort, CASD) decides.
	who := {"id": "b-cohort", "token_sha256": "bb22", "project": "weather"}
	answer := egress.connection with input as connecting(who, "api.example.org", 443)
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer == {
		"allow": false,
		"authenticated": true,
		"reason": "project cohort is under CASD governance: no external API",
		"rule_id": null,
		"mode": null,
		"status": 403,
		"max_response_bytes": null,
		"daily_upload_bytes": null,
		"project": "cohort",
		"username": "alice",
		"expires_at_ns": null,
	}
}

test_connection_refuses_a_wrong_token if {
	answer := egress.connection with input as connecting({"id": "b-42", "token_sha256": "bb22"}, "api.example.org", 443)
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer == unauthenticated
}

test_connection_refuses_an_unknown_or_revoked_bubble if {
	answer_input := connecting({"id": "b-gone", "token_sha256": "aa11"}, "api.example.org", 443)
	answer := egress.connection with input as answer_input
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer == unauthenticated
}

test_connection_refuses_a_missing_digest_or_a_bubble_without_project if {
	no_digest := egress.connection with input as connecting({"id": "b-42"}, "api.example.org", 443)
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
	no_digest == unauthenticated
	no_project := egress.connection with input as connecting({"id": "b-nameless", "token_sha256": "cc33"}, "a.org", 443)
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
	no_project == unauthenticated
	no_bubbles := egress.connection with input as connecting({"id": "b-42", "token_sha256": "aa11"}, "a.org", 443)
	no_bubbles == unauthenticated
}

test_connection_passes_on_a_refusal_for_an_authenticated_bubble if {
	answer := egress.connection with input as connecting({"id": "b-42", "token_sha256": "aa11"}, "api.example.org", 22)
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer.authenticated == true
	answer.allow == false
	answer.expires_at_ns == null
	answer.reason == "no approved rule of project weather allows api.example.org:22"
}

test_decision_with_a_wrong_digest_never_falls_back_to_the_project_named_in_the_input if {
	who := {"id": "b-42", "token_sha256": "wrong", "project": "weather"}
	decision := egress.decision with input as connecting(who, "api.example.org", 443)
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "the request names no project (bubble.project)")
}

# Membership: a bubble lets its user out only while they are a member of its project

test_connection_refuses_a_bubble_whose_user_is_no_longer_a_member if {
	# bruno was removed from weather; his bubble is still in the data (a push that failed, say).
	answer_input := connecting({"id": "b-removed", "token_sha256": "dd44"}, "api.example.org", 443)
	answer := egress.connection with input as answer_input
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	reason := "bruno is no longer a member of project weather: the bubble's credentials are revoked"
	answer == object.union(unauthenticated, {"reason": reason, "label": "not_member"})
}

test_connection_refuses_every_bubble_when_no_membership_is_known if {
	answer := egress.connection with input as connecting({"id": "b-42", "token_sha256": "aa11"}, "api.example.org", 443)
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer.authenticated == false
	answer.allow == false
	answer.reason == "alice is no longer a member of project weather: the bubble's credentials are revoked"
}

test_connection_refuses_a_membership_of_another_project_or_an_unknown_role if {
	# alice leads cohort, not other; carla is in weather with a role no one gives.
	others := object.union(bubbles, {
		"b-other": {"project": "other", "username": "alice", "token_sha256": "ff66"},
		"b-guest": {"project": "weather", "username": "carla", "token_sha256": "0077"},
	})
	other_input := connecting({"id": "b-other", "token_sha256": "ff66"}, "secret.example.com", 443)
	other := egress.connection with input as other_input
		with data.store.infracalc.bubbles as others
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	other.authenticated == false
	other.reason == "alice is no longer a member of project other: the bubble's credentials are revoked"
	guest_input := connecting({"id": "b-guest", "token_sha256": "0077"}, "api.example.org", 443)
	guest := egress.connection with input as guest_input
		with data.store.infracalc.bubbles as others
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	guest.authenticated == false
	guest.allow == false
}

test_connection_refuses_a_bubble_without_a_username_with_the_default_reason if {
	answer_input := connecting({"id": "b-anonymous", "token_sha256": "ee55"}, "api.example.org", 443)
	answer := egress.connection with input as answer_input
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer == unauthenticated
}

test_a_removed_members_wrong_token_says_nothing_about_membership if {
	answer_input := connecting({"id": "b-removed", "token_sha256": "aa11"}, "api.example.org", 443)
	answer := egress.connection with input as answer_input
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer == unauthenticated
}

# The address: a bubble's token works only from where the bubble runs

test_connection_from_the_bubbles_own_address_is_allowed if {
	v6 := egress.connection with input as from_address({"id": "b-v6", "token_sha256": "33aa"}, "fd00:233::2")
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	v6.allow == true
	v6.authenticated == true
}

test_a_valid_token_from_another_address_is_refused_without_naming_the_address if {
	every source in ["127.0.0.1", "10.233.0.6", "10.233.0.1", "::1", "", 167837954] {
		answer := egress.connection with input as from_address({"id": "b-42", "token_sha256": "aa11"}, source)
			with data.store.infracalc.bubbles as bubbles
			with data.store.infracalc.members as members
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		reason := "the credentials of bubble b-42 work only from the bubble's own address"
		answer == object.union(unauthenticated, {"reason": reason, "label": "wrong_source"})
	}
}

test_a_connection_that_says_nothing_of_its_source_is_refused if {
	silent := object.remove(from_address({"id": "b-42", "token_sha256": "aa11"}, here), ["source_ip"])
	answer := egress.connection with input as silent
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer.authenticated == false
	answer.reason == "the credentials of bubble b-42 work only from the bubble's own address"
}

test_a_bubble_whose_address_is_not_known_yet_goes_nowhere if {
	every bubble, token in {"b-starting": "1188", "b-unaddressed": "2299"} {
		answer := egress.connection with input as connecting({"id": bubble, "token_sha256": token}, "api.example.org", 443)
			with data.store.infracalc.bubbles as bubbles
			with data.store.infracalc.members as members
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		reason := sprintf("bubble %s has no registered address yet: it may not connect", [bubble])
		answer == object.union(unauthenticated, {"reason": reason, "label": "no_address"})
	}
}

test_membership_is_said_before_the_address if {
	answer := egress.connection with input as from_address({"id": "b-removed", "token_sha256": "dd44"}, "127.0.0.1")
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer.reason == "bruno is no longer a member of project weather: the bubble's credentials are revoked"
	answer.label == "not_member"
}

# Inspection: a CONNECT through an inspect rule, then each request inside

inside(host, method, path, body, sent) := {
	"bubble": bubble, "host": host, "port": 443, "scheme": "https",
	"method": method, "path": path, "body_bytes": body, "request_bytes": body + 100, "sent_today": sent,
}

refused_with_status(decision, reason, status) if {
	decision.allow == false
	decision.reason == reason
	decision.rule_id == null
	decision.mode == null
	decision.status == status
}

test_a_connect_through_an_inspect_rule_opens_inspected if {
	decision := egress.decision with input as tunnel("api.inspect.test", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	decision == {
		"allow": true,
		"reason": "rule r-inspect of project weather inspects api.inspect.test:443",
		"rule_id": "r-inspect",
		"mode": "inspect",
		"status": null,
		"max_response_bytes": 1000000,
		"daily_upload_bytes": 5000,
	}
}

test_a_tunnel_rule_beside_an_inspect_rule_opens_the_tunnel if {
	decision := egress.decision with input as tunnel("both.inspect.test", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-both-t")
	decision.mode == "tunnel"
}

test_a_rule_without_a_mode_is_a_tunnel if {
	decision := egress.decision with input as tunnel("api.example.org", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	decision.mode == "tunnel"
}

test_a_rule_of_an_unknown_mode_opens_nothing if {
	connect := egress.decision with input as tunnel("strange.inspect.test", 443)
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(connect, "no approved rule of project weather allows strange.inspect.test:443")
	request := inside("strange.inspect.test", "GET", "/", 0, {})
	inside_it := egress.decision with input as request
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(inside_it, "no approved rule of project weather allows GET / on strange.inspect.test:443")
}

test_a_get_under_the_prefix_is_allowed_with_the_answer_cap if {
	decision := egress.decision with input as inside("api.inspect.test", "GET", "/v1/items?id=7", 0, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	decision == {
		"allow": true,
		"reason": "rule r-inspect of project weather allows api.inspect.test:443",
		"rule_id": "r-inspect",
		"mode": "inspect",
		"status": null,
		"max_response_bytes": 1000000,
		"daily_upload_bytes": 5000,
	}
}

test_a_method_no_rule_lists_is_refused_403_without_the_query if {
	decision := egress.decision with input as inside("api.inspect.test", "DELETE", "/v1/items?secret=42", 0, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	reason := "no approved rule of project weather allows DELETE /v1/items on api.inspect.test:443"
	refused_with_status(decision, reason, 403)
}

test_a_path_outside_every_prefix_is_refused_403 if {
	decision := egress.decision with input as inside("api.inspect.test", "GET", "/admin", 0, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused_with_status(decision, "no approved rule of project weather allows GET /admin on api.inspect.test:443", 403)
}

test_a_post_allowed_by_a_second_rule_is_charged_to_it if {
	decision := egress.decision with input as inside("api.inspect.test", "POST", "/v1/upload", 3000, {"r-inspect": 5000})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(decision, "r-post")
	decision.max_response_bytes == null
}

test_a_body_over_the_cap_is_refused_413 if {
	decision := egress.decision with input as inside("api.inspect.test", "GET", "/v1/items", 1001, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	reason := "the request's body of 1001 bytes is over rule r-inspect's cap of 1000 bytes per request"
	refused_with_status(decision, reason, 413)
	at_cap := egress.decision with input as inside("api.inspect.test", "GET", "/v1/items", 1000, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(at_cap, "r-inspect")
}

test_a_spent_budget_is_refused_429_and_counts_per_rule if {
	decision := egress.decision with input as inside("api.inspect.test", "GET", "/v1/items", 0, {"r-inspect": 4901})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	reason := concat("", [
		"rule r-inspect's budget of 5000 bytes a day to api.inspect.test for this bubble is spent: ",
		"4901 sent today, this request needs 100",
	])
	refused_with_status(decision, reason, 429)
	exactly := egress.decision with input as inside("api.inspect.test", "GET", "/v1/items", 0, {"r-inspect": 4900})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(exactly, "r-inspect")
	other_rule := egress.decision with input as inside("api.inspect.test", "GET", "/v1/items", 0, {"r-post": 5000})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(other_rule, "r-inspect")
}

test_a_cap_that_is_not_a_number_never_fits if {
	body := egress.decision with input as inside("badcap.inspect.test", "GET", "/", 0, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	unreadable := "the request's body of 0 bytes is over rule r-badcap's cap of lots bytes per request"
	refused_with_status(body, unreadable, 413)
	budget := egress.decision with input as inside("budget.inspect.test", "GET", "/", 0, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	reason := concat("", [
		"rule r-badbudget's budget of lots bytes a day to budget.inspect.test for this bubble is spent: ",
		"0 sent today, this request needs 100",
	])
	refused_with_status(budget, reason, 429)
}

test_inside_a_connect_only_inspect_rules_count if {
	decision := egress.decision with input as inside("opaque.inspect.test", "GET", "/", 0, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(decision, "no approved rule of project weather allows GET / on opaque.inspect.test:443")
	wild := egress.decision with input as inside("www.example.org", "GET", "/", 0, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	refused(wild, "no approved rule of project weather allows GET / on www.example.org:443")
}

test_plain_http_goes_through_any_mode_with_its_caps if {
	plain_get := object.union(inside("api.inspect.test", "GET", "/v1/x", 2000, {}), {"scheme": "http"})
	decision := egress.decision with input as plain_get
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	capped := "the request's body of 2000 bytes is over rule r-inspect's cap of 1000 bytes per request"
	refused_with_status(decision, capped, 413)
	plain_put := object.union(inside("opaque.inspect.test", "PUT", "/", 10, {}), {"scheme": "http"})
	tunnel_rule := egress.decision with input as plain_put
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	allowed_by(tunnel_rule, "r-tunnel-only")
}

test_a_request_must_give_its_sizes if {
	message := "a request must give body_bytes, request_bytes and sent_today (byte counts)"
	every broken in [
		object.remove(inside("api.inspect.test", "GET", "/v1/x", 0, {}), ["sent_today"]),
		inside("api.inspect.test", "GET", "/v1/x", -1, {}),
		inside("api.inspect.test", "GET", "/v1/x", 0.5, {}),
		inside("api.inspect.test", "GET", "/v1/x", 0, {"r-inspect": "many"}),
		inside("api.inspect.test", "GET", "/v1/x", 0, []),
		object.union(inside("api.inspect.test", "GET", "/v1/x", 0, {}), {"request_bytes": null}),
	] {
		decision := egress.decision with input as broken
			with data.store.infracalc.projects as projects
			with data.store.infracalc.rules as rules
			with data.store.infracalc.rule_hosts as hosts_of(rules)
			with time.now_ns as now
		refused(decision, message)
	}
}

test_an_expired_rule_is_named_before_a_spent_budget_of_nothing if {
	expired := object.union(rules, {"weather": object.union(rules.weather, {
		"r-inspect": object.union(rules.weather["r-inspect"], {"expires_at_ns": now - day}),
		"r-post": object.union(rules.weather["r-post"], {"expires_at_ns": now - day}),
	})})
	decision := egress.decision with input as inside("api.inspect.test", "GET", "/v1/x", 0, {})
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as expired
		with data.store.infracalc.rule_hosts as hosts_of(expired)
		with time.now_ns as now
	lapsed := "rule r-inspect of project weather would allow api.inspect.test:443 but expired at 2025-12-31T00:00:00Z"
	refused_with_status(decision, lapsed, 403)
}

test_connection_passes_the_mode_and_the_user_inside_an_inspected_connect if {
	who := {"bubble": {"id": "b-42", "token_sha256": "aa11"}, "source_ip": here}
	request := object.union(inside("api.inspect.test", "GET", "/v1/x", 0, {}), who)
	answer := egress.connection with input as request
		with data.store.infracalc.bubbles as bubbles
		with data.store.infracalc.members as members
		with data.store.infracalc.projects as projects
		with data.store.infracalc.rules as rules
		with data.store.infracalc.rule_hosts as hosts_of(rules)
		with time.now_ns as now
	answer.allow == true
	answer.mode == "inspect"
	answer.username == "alice"
	answer.max_response_bytes == 1000000
	answer.expires_at_ns == now + day
}
