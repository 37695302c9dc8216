# METADATA
# title: Egress
# description: |
#   Whether a bubble may open a connection to an external host through the egress proxy, or send
#   one request through it. The proxy asks once per new connection (CONNECT), per plain-HTTP
#   request, and per request inside a CONNECT it inspects. Only a project under INFRACALC
#   governance may call out, and only through an approved, unexpired rule of its own project that
#   matches host and port, and, for every request the proxy sees (plain HTTP, and HTTPS through an
#   inspect rule), method, path prefix, the body's cap and the day's budget.
#   Input:
#     bubble   {"id": str, "project": str}: the authenticated bubble and its project
#     host     normalised host name (lowercase punycode) or IP literal as text; the policy
#              still lowercases it, drops one trailing dot and the brackets of an IPv6 literal
#     port     integer, 1 to 65535
#     scheme   "connect" (CONNECT: may the connection open, as a tunnel or inspected) |
#              "http" (a plain-HTTP absolute URI) |
#              "https" (a request inside a CONNECT the proxy inspects)
#     method   "http" and "https": the request method (compared case-insensitively)
#     path     "http" and "https": the request target's path (and query), starting with /
#     body_bytes     "http" and "https": the request body's length (Content-Length, 0 without)
#     request_bytes  "http" and "https": what the request sends upstream, head and body
#     sent_today     "http" and "https": {rule_id: bytes} sent today (UTC) under each rule by the
#                    bubble's user (a rule absent: nothing yet)
#   Data (owned by the INFRACALC service, under data.store.infracalc):
#     projects[slug]          {"title", "governance": "CASD" | "INFRACALC", "sensitive_data": bool}
#     rules[slug][rule_id]    {"host": str, "wildcard": bool, "ports": [int],
#                              "mode": "inspect" | "tunnel" (absent: tunnel),
#                              "methods": [str] (empty: any), "path_prefixes": [str] (empty: any),
#                              "max_request_bytes": int, "daily_upload_bytes": int,
#                              "max_response_bytes": int (each absent: no cap),
#                              "expires_at_ns": int (nanoseconds since the epoch)}
#                             approved, unrevoked rules only; hosts lowercase punycode. A wildcard
#                             rule {"host": "example.org", "wildcard": true} stands for
#                             *.example.org: a.example.org, a.b.example.org, not example.org.
#     rule_hosts[slug][host][rule_id] = true
#                             the same rules keyed by their host (a wildcard rule under its base
#                             domain): the only way the policy finds a project's rules. An entry
#                             only points at a rule, so a stale or stray one cannot widen access.
#     bubbles[bubble_id]      {"project": str, "username": str, "token_sha256": str,
#                              "address": str | null}
#                             the bubbles whose tokens are valid (registered, not revoked),
#                             read by `connection` only; address: where the bubble's connections
#                             come from (null until the hub knows it: the bubble goes nowhere)
#     members[slug][username] {"role": "lead" | "member"}: a bubble lets its user out only while
#                             they are a member of its project, whatever the bubbles document says
#   Expiry is compared with time.now_ns() here, so an expired rule stops matching without a job.
#   A CONNECT opens through a tunnel rule without restrictions (an opaque tunnel: nothing inside
#   is decided) or through an inspect rule (every request inside is then asked about as "https");
#   a tunnel rule restricting methods or paths cannot be enforced and opens nothing.
package infracalc.egress

# METADATA
# description: |
#   The egress decision, an object with allow (boolean), reason (string), rule_id (the id of
#   the rule that allows the connection, null when refused; the smallest id when several
#   match, a tunnel rule first for a CONNECT), mode (that rule's, "tunnel" or "inspect"; null when
#   refused), status (the HTTP status the proxy answers a refusal with: 403, 413 for a body over
#   the cap, 429 for a spent budget; null when allowed), max_response_bytes (the allowing
#   rule's cap on an answer's body, null without) and daily_upload_bytes (its daily budget, null
#   without: the proxy may reuse an allowed request's decision for a second while what was sent
#   today under the rule still fits it). An unknown project gives exactly the reason
#   "unknown project". Undefined means deny.
# entrypoint: true
default decision := {
	"allow": false,
	"reason": "no rule allows this connection",
	"rule_id": null,
	"mode": null,
	"status": 403,
	"max_response_bytes": null,
	"daily_upload_bytes": null,
}

decision := refused_with(refusal, 403) if refusal

decision := {
	"allow": true,
	"reason": allowing_reason,
	"rule_id": chosen,
	"mode": mode_of(rule),
	"status": null,
	"max_response_bytes": cap_of(rule, "max_response_bytes"),
	"daily_upload_bytes": cap_of(rule, "daily_upload_bytes"),
} if {
	not refusal
	rule := project_rules[chosen]
}

decision := refused_with(denial, denial_status) if {
	not refusal
	count(allowed) == 0
}

refused_with(reason, status) := {
	"allow": false,
	"reason": reason,
	"rule_id": null,
	"mode": null,
	"status": status,
	"max_response_bytes": null,
	"daily_upload_bytes": null,
}

# A CONNECT that opens through an inspect rule is "inspected": what follows is decided request by
# request.
allowing_reason := sprintf("rule %s of project %s inspects %s:%v", [chosen, project_id, host, input.port]) if {
	input.scheme == "connect"
	mode_of(project_rules[chosen]) == "inspect"
} else := sprintf("rule %s of project %s allows %s:%v", [chosen, project_id, host, input.port])

# METADATA
# description: |
#   The egress proxy's question: authenticate the bubble, then decide. Input as for decision,
#   except that the bubble is {"id": str, "token_sha256": str} (the SHA-256 of its token's
#   secret, hex) and its project is read from data.store.infracalc.bubbles, never from the input; and
#   source_ip, the address the connection comes from as the proxy sees it (the form
#   infracalc.egress.sources writes: compressed, IPv4 unmapped).
#   Adds to the decision: authenticated (false: unknown or revoked bubble, wrong token, a bubble
#   whose user is no longer a member of its project, or one whose token comes from another
#   address than the bubble's; the proxy answers 407; a valid token refused also carries label:
#   not_member, no_address or wrong_source), project (the bubble's project, null when
#   unauthenticated), username (the bubble's user: the proxy counts each rule's daily budget per
#   user and project) and expires_at_ns (the allowing rule's expiry, so that the proxy can close
#   the tunnel then).
# entrypoint: true
default connection := {
	"allow": false,
	"authenticated": false,
	"reason": "unknown bubble, revoked bubble or wrong token",
	"rule_id": null,
	"project": null,
	"expires_at_ns": null,
}

connection := object.union(decision, {
	"authenticated": true,
	"project": authenticated_bubble.project,
	"username": object.get(authenticated_bubble, "username", null),
	"expires_at_ns": expiry,
}) if {
	authenticated_bubble
	expiry := expiry_of(decision, authenticated_bubble.project)
}

# A valid token that still lets nothing out says why: its holder proved who they are.
connection := {
	"allow": false,
	"authenticated": false,
	"reason": credential_refusal.reason,
	"label": credential_refusal.label,
	"rule_id": null,
	"project": null,
	"expires_at_ns": null,
} if {
	credential_refusal
}

# The bubble the token belongs to (known, not revoked, same digest), whatever else holds.
credited_bubble := known if {
	named(input.bubble.id)
	known := data.store.infracalc.bubbles[input.bubble.id]
	is_string(input.bubble.token_sha256)
	known.token_sha256 == input.bubble.token_sha256
	named(known.project)
}

# Why a bubble with a valid token may still not go out; the first that holds. Membership is
# checked here, on every decision, so that a bubble left in the data after its user was removed
# lets nobody out. A token works only from the address the bubble runs at: a copy of it used
# from anywhere else (the host, another bubble) opens nothing. The address is never named.
# Each says why in words, and with a label the proxy counts by (a token used from elsewhere may be
# a stolen one: an operator watches that count).
credential_refusal := {"label": "not_member", "reason": sprintf(
	"%s is no longer a member of project %s: the bubble's credentials are revoked",
	[credited_bubble.username, credited_bubble.project],
)} if {
	credited_bubble
	not member_of_project
} else := {
	"label": "no_address",
	"reason": sprintf("bubble %s has no registered address yet: it may not connect", [input.bubble.id]),
} if {
	credited_bubble
	not registered_address
} else := {
	"label": "wrong_source",
	"reason": sprintf("the credentials of bubble %s work only from the bubble's own address", [input.bubble.id]),
} if {
	credited_bubble
	not from_own_address
}

registered_address if named(credited_bubble.address)

from_own_address if {
	registered_address
	credited_bubble.address == input.source_ip
}

member_of_project if {
	member := data.store.infracalc.members[credited_bubble.project][credited_bubble.username]
	member.role in {"lead", "member"}
}

# Only a positive check lets a bubble through: a refusal whose reason cannot be written (a bubble
# without a username, say) still refuses, with the default reason.
authenticated_bubble := credited_bubble if {
	member_of_project
	from_own_address
}

expiry_of(verdict, slug) := data.store.infracalc.rules[slug][verdict.rule_id].expires_at_ns if {
	verdict.allow == true
} else := null

# The proxy's input carries a token digest: the project is then the authenticated bubble's, and
# undefined (refused) when the bubble is not authenticated. The service's own questions (the
# egress check route) name the project.
project_id := input.bubble.project if not carries_digest

project_id := authenticated_bubble.project if carries_digest

carries_digest if "token_sha256" in object.keys(input.bubble)

project := data.store.infracalc.projects[project_id]

# Checked in order; the first that holds is the reason given. They vet the input, so that the
# matching below only ever sees well-formed values.
refusal := "the request names no bubble (bubble.id)" if {
	not named_bubble
} else := "the request names no project (bubble.project)" if {
	not named_project
} else := "unknown project" if {
	not project
} else := sprintf("project %s is under CASD governance: no external API", [project_id]) if {
	project.governance == "CASD"
} else := sprintf("project %s has no known governance owner: no external API", [project_id]) if {
	not project.governance == "INFRACALC"
} else := "the request names no host" if {
	not named_host
} else := sprintf("malformed host %q", [input.host]) if {
	not host
} else := "the port must be an integer from 1 to 65535" if {
	not valid_port
} else := "the scheme must be connect, http or https" if {
	not known_scheme
} else := request_refusal if {
	visible_request
	request_refusal
}

# What a request (plain HTTP, or HTTPS inside an inspected CONNECT) must carry besides.
request_refusal := "a request must name its method" if {
	not valid_method
} else := "a request must name a path starting with /" if {
	not rooted_path
} else := "the path holds a dot segment or an encoded dot, which could escape a path prefix" if {
	escaping_path
} else := "a request must give body_bytes, request_bytes and sent_today (byte counts)" if {
	not valid_sizes
}

# Negations go through helper rules: `not input.x in s` is undefined, not true, when
# input.x is missing, so it would let a missing field slip past a refusal; `not f(input.x)` is
# no better (the call is undefined, so the negation fails).
named_bubble if named(input.bubble.id)

named_project if named(project_id)

named_host if named(input.host)

named(value) if {
	is_string(value)
	value != ""
}

known_scheme if input.scheme in {"connect", "http", "https"}

# A request the proxy sees: plain HTTP, or HTTPS inside a CONNECT it inspects.
visible_request if input.scheme in {"http", "https"}

valid_sizes if {
	byte_count(input.body_bytes)
	byte_count(input.request_bytes)
	is_object(input.sent_today)
	every sent in input.sent_today {
		byte_count(sent)
	}
}

byte_count(value) if {
	is_number(value)
	value == floor(value)
	value >= 0
}

valid_port if {
	is_number(input.port)
	input.port == floor(input.port)
	input.port >= 1
	input.port <= 65535
}

valid_method if {
	is_string(input.method)
	regex.match(`^[A-Za-z]+(-[A-Za-z]+)*$`, input.method)
}

rooted_path if {
	is_string(input.path)
	startswith(input.path, "/")
}

# A `..` segment (with `\`, `%2f` and `%5c` taken as separators, and `..;` as Tomcat reads
# it) or a percent-encoded dot, once or twice encoded, could take a request out of a prefix.
escaping_path if {
	separated := strings.replace_n({"%2f": "/", "%5c": "/", "\\": "/"}, lower(input.path))
	regex.match(`(^|/)\.\.(/|;|\?|#|$)`, separated)
}

escaping_path if contains(lower(input.path), "%2e")

escaping_path if contains(lower(input.path), "%252e")

# Hosts

# A host name: labels of letters, digits, `-` and `_`, at most 63 characters each and 253 in all.
host := name if {
	name := trim_suffix(lower(input.host), ".")
	count(name) <= 253
	regex.match(`^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$`, name)

	# Bounded repetitions ({0,61}) in the pattern would make every match far slower.
	every label in split(name, ".") {
		count(label) <= 63
	}
}

# An IPv6 literal, with or without its brackets.
host := address if {
	address := lower(input.host)
	regex.match(`^[0-9a-f.]*:[0-9a-f:.]*$`, address)
}

host := address if {
	regex.match(`^\[[0-9a-fA-F.]*:[0-9a-fA-F:.]*\]$`, input.host)
	address := lower(substring(input.host, 1, count(input.host) - 2))
}

labels := split(host, ".")

# An IP literal matches only a rule naming exactly that literal, never a wildcard. A name whose
# last label is a number is read as an IPv4 address by URL parsers (`10.1`, `0x7f000001`).
ip_literal if contains(host, ":")

ip_literal if regex.match(`^([0-9]+|0x[0-9a-f]*)$`, labels[count(labels) - 1])

# The parent domains a wildcard rule may name for this host: for a.b.example.org,
# b.example.org, example.org and org, never the host itself.
wildcard_domains contains domain if {
	not ip_literal
	count(labels) > 1
	some i in numbers.range(1, count(labels) - 1)
	domain := concat(".", array.slice(labels, i, count(labels)))
}

# Rules

default project_rules := {}

# The bubble's own project only: rules of other projects are never looked at.
project_rules := data.store.infracalc.rules[project_id]

default project_hosts := {}

project_hosts := data.store.infracalc.rule_hosts[project_id]

# The names a rule may carry to match this host: the host itself (exact rules) and its parent
# domains (wildcard rules).
rule_names := {host} | wildcard_domains

# Candidates come from the host index, a key read per name (at most one per label of the host),
# never from a pass over the project's rules. Each must be a rule of the project that carries
# the very name it is indexed under: an index entry can only point at a rule, never widen it.
host_matches contains rule_id if {
	some name in rule_names
	some rule_id, indexed in project_hosts[name]
	indexed == true
	rule := project_rules[rule_id]
	rule.host == name
	names_host(rule, host)
}

names_host(rule, name) if {
	rule.host == name
	object.get(rule, "wildcard", false) == false
}

# A wildcard never names its own domain: rule_names holds parent domains besides the host.
names_host(rule, name) if {
	rule.host != name
	rule.wildcard == true
}

# Rules naming the host and the port.
reaching contains rule_id if {
	some rule_id in host_matches
	input.port in project_rules[rule_id].ports
}

# Rules that have not expired. A rule without a numeric expiry never is.
live contains rule_id if {
	some rule_id in reaching
	expiry := project_rules[rule_id].expires_at_ns
	is_number(expiry)
	expiry > time.now_ns()
}

# A rule's mode: rules pushed before modes existed are tunnels.
mode_of(rule) := object.get(rule, "mode", "tunnel")

# A rule's cap: its number, null when it has none; a cap that is not a number is checked where it
# is used (body_fits, budget_left), never read as no cap.
cap_of(rule, name) := rule[name] if {
	is_number(rule[name])
} else := null

# Rules this request may go through, before its sizes. A CONNECT opens through a tunnel rule that
# restricts nothing (nothing inside is visible) or through an inspect rule (whose restrictions
# then bind each request inside). A request binds methods and path prefixes; inside an inspected
# CONNECT only inspect rules count.
permitted contains rule_id if {
	input.scheme == "connect"
	some rule_id in reaching
	opens(project_rules[rule_id])
}

permitted contains rule_id if {
	visible_request
	some rule_id in reaching
	carries(project_rules[rule_id])
	method_allowed(project_rules[rule_id], input.method)
	path_allowed(project_rules[rule_id], input.path)
}

opens(rule) if {
	mode_of(rule) == "tunnel"
	unrestricted(rule, "methods")
	unrestricted(rule, "path_prefixes")
}

opens(rule) if mode_of(rule) == "inspect"

carries(_) if input.scheme == "http"

carries(rule) if {
	input.scheme == "https"
	mode_of(rule) == "inspect"
}

# Live rules this request may go through.
open_rules := live & permitted

# Open rules whose caps the request fits: its body under the rule's cap, and what it sends within
# what the rule's budget has left today for the bubble's user. A CONNECT sends nothing yet.
allowed contains rule_id if {
	input.scheme == "connect"
	some rule_id in open_rules
}

allowed contains rule_id if {
	visible_request
	some rule_id in body_fitting
	budget_left(project_rules[rule_id], rule_id)
}

body_fitting contains rule_id if {
	some rule_id in open_rules
	body_fits(project_rules[rule_id])
}

body_fits(rule) if not "max_request_bytes" in object.keys(rule)

body_fits(rule) if {
	is_number(rule.max_request_bytes)
	input.body_bytes <= rule.max_request_bytes
}

budget_left(rule, _) if not "daily_upload_bytes" in object.keys(rule)

budget_left(rule, rule_id) if {
	is_number(rule.daily_upload_bytes)
	object.get(input.sent_today, rule_id, 0) + input.request_bytes <= rule.daily_upload_bytes
}

# The allowing rule: the smallest id, a tunnel rule first for a CONNECT (a tunnel opens the host
# whole: inspecting beside it would decide nothing the bubble could not do through the tunnel).
chosen := min(tunnels) if {
	input.scheme == "connect"
	tunnels := {rule_id | some rule_id in allowed; mode_of(project_rules[rule_id]) == "tunnel"}
	count(tunnels) > 0
} else := min(allowed) if count(allowed) > 0

# An absent list or an empty one places no restriction.
unrestricted(rule, field) if not rule[field]

unrestricted(rule, field) if rule[field] == []

method_allowed(rule, _) if unrestricted(rule, "methods")

method_allowed(rule, method) if {
	some name in rule.methods
	is_string(name)
	upper(name) == upper(method)
}

path_allowed(rule, _) if unrestricted(rule, "path_prefixes")

path_allowed(rule, path) if {
	some prefix in rule.path_prefixes
	is_string(prefix)
	startswith(path, prefix)
}

# The path without its query, for reasons: the query may carry data, and reasons are recorded.
bare_path := split(input.path, "?")[0]

# Why no rule allows the request, when none does; the first that holds is the reason given. A
# request a live rule permits is refused for its size first.
denial := size_denial if {
	visible_request
	size_denial
} else := message if {
	rule_id := min(permitted - live)
	lapse := expiry_text(project_rules[rule_id].expires_at_ns)
	message := sprintf("rule %s of project %s would allow %s:%v but %s", [rule_id, project_id, host, input.port, lapse])
} else := message if {
	input.scheme == "connect"
	rule_id := min({rule_id | some rule_id in (reaching - permitted); mode_of(project_rules[rule_id]) == "tunnel"})
	message := sprintf(
		"rule %s restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)",
		[rule_id],
	)
} else := message if {
	visible_request
	count(reaching) > 0
	request := sprintf("%s %s", [upper(input.method), bare_path])
	message := sprintf("no approved rule of project %s allows %s on %s:%v", [project_id, request, host, input.port])
} else := sprintf("no approved rule of project %s allows %s:%v", [project_id, host, input.port])

# A request that open rules permit but whose size none of them takes: its body is over every
# cap, or what it sends is over what every budget the body fits has left.
size_denial := message if {
	count(body_fitting) == 0
	rule_id := min(open_rules)
	message := sprintf(
		"the request's body of %v bytes is over rule %s's cap of %v bytes per request",
		[input.body_bytes, rule_id, project_rules[rule_id].max_request_bytes],
	)
} else := message if {
	rule_id := min(body_fitting)
	budget := project_rules[rule_id].daily_upload_bytes
	sent := object.get(input.sent_today, rule_id, 0)
	message := sprintf(
		"rule %s's budget of %v bytes a day to %s for this bubble is spent: %v sent today, this request needs %v",
		[rule_id, budget, host, sent, input.request_bytes],
	)
}

# The status of a refusal by the policy: 413 when the body is over every open rule's cap, 429 when
# the budget of every rule the body fits is spent, 403 otherwise.
default denial_status := 403

denial_status := 413 if {
	visible_request
	count(open_rules) > 0
	count(body_fitting) == 0
}

denial_status := 429 if {
	visible_request
	count(body_fitting) > 0
}

# time.format only takes integers that fit in 64 bits.
expiry_text(ns) := sprintf("expired at %s", [time.format(ns)]) if {
	is_number(ns)
	ns == floor(ns)
	ns >= -9223372036854775808
	ns <= 9223372036854775807
} else := "has no valid expiry"
