# METADATA
# title: Egress
# description: |
#   Whether a bubble may open a connection to an external host through the egress proxy. The
#   proxy asks once per new connection (CONNECT tunnel) or plain-HTTP request. Only a project
#   under INFRACALC governance may call out, and only through an approved, unexpired rule of
#   its own project that matches host and port, and method and path prefix for plain HTTP.
#   Input:
#     bubble   {"id": str, "project": str}: the authenticated bubble and its project
#     host     normalised host name (lowercase punycode) or IP literal as text; the policy
#              still lowercases it, drops one trailing dot and the brackets of an IPv6 literal
#     port     integer, 1 to 65535
#     scheme   "connect" (CONNECT tunnel, TLS inside: no method or path visible) |
#              "http" (plain-HTTP absolute URI)
#     method   "http" only: the request method (compared case-insensitively)
#     path     "http" only: the request target's path (and query), starting with /
#   Data (owned by the INFRACALC service, under data.store.infracalc):
#     projects[slug]          {"title", "governance": "CASD" | "INFRACALC", "sensitive_data": bool}
#     rules[slug][rule_id]    {"host": str, "wildcard": bool, "ports": [int],
#                              "methods": [str] (empty: any), "path_prefixes": [str] (empty: any),
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
#   A rule restricting methods or paths cannot be enforced inside a TLS tunnel: CONNECT through
#   such a rule is refused, with a reason saying so.
package infracalc.egress

# METADATA
# description: |
#   The egress decision, an object with allow (boolean), reason (string) and rule_id (the id of
#   the rule that allows the connection, null when refused; the smallest id when several
#   match). An unknown project gives exactly the reason "unknown project". Undefined means deny.
# entrypoint: true
default decision := {"allow": false, "reason": "no rule allows this connection", "rule_id": null}

decision := {"allow": false, "reason": refusal, "rule_id": null} if refusal

decision := {
	"allow": true,
	"reason": sprintf("rule %s of project %s allows %s:%v", [rule_id, project_id, host, input.port]),
	"rule_id": rule_id,
} if {
	not refusal
	rule_id := min(allowed)
}

decision := {"allow": false, "reason": denial, "rule_id": null} if {
	not refusal
	count(allowed) == 0
}

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
#   unauthenticated) and expires_at_ns (the allowing rule's expiry, so that the proxy can close
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
} else := "the scheme must be connect or http" if {
	not known_scheme
} else := "a plain-HTTP request must name its method" if {
	input.scheme == "http"
	not valid_method
} else := "a plain-HTTP request must name a path starting with /" if {
	input.scheme == "http"
	not rooted_path
} else := "the path holds a dot segment or an encoded dot, which could escape a path prefix" if {
	input.scheme == "http"
	escaping_path
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

known_scheme if input.scheme in {"connect", "http"}

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

# Rules whose method and path restrictions this request meets. Inside a CONNECT tunnel neither
# is visible, so only a rule without restrictions can be met.
permitted contains rule_id if {
	input.scheme == "connect"
	some rule_id in reaching
	unrestricted(project_rules[rule_id], "methods")
	unrestricted(project_rules[rule_id], "path_prefixes")
}

permitted contains rule_id if {
	input.scheme == "http"
	some rule_id in reaching
	method_allowed(project_rules[rule_id], input.method)
	path_allowed(project_rules[rule_id], input.path)
}

allowed := live & permitted

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

# Why no rule allows the request, when none does; the first that holds is the reason given.
denial := message if {
	rule_id := min(permitted - live)
	lapse := expiry_text(project_rules[rule_id].expires_at_ns)
	message := sprintf("rule %s of project %s would allow %s:%v but %s", [rule_id, project_id, host, input.port, lapse])
} else := message if {
	input.scheme == "connect"
	rule_id := min(reaching - permitted)
	message := sprintf(
		"rule %s restricts methods/paths, which cannot be enforced through a TLS tunnel (CONNECT)",
		[rule_id],
	)
} else := message if {
	input.scheme == "http"
	count(reaching) > 0
	request := sprintf("%s %s", [upper(input.method), input.path])
	message := sprintf("no approved rule of project %s allows %s on %s:%v", [project_id, request, host, input.port])
} else := sprintf("no approved rule of project %s allows %s:%v", [project_id, host, input.port])

# time.format only takes integers that fit in 64 bits.
expiry_text(ns) := sprintf("expired at %s", [time.format(ns)]) if {
	is_number(ns)
	ns == floor(ns)
	ns >= -9223372036854775808
	ns <= 9223372036854775807
} else := "has no valid expiry"
