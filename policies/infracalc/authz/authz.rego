# METADATA
# title: Authorization
# description: |
#   Who may do what through the INFRACALC API. The service asks for every route and acts on
#   the answer; it keeps no role logic of its own.
#   Input:
#     action     me.read | project.create | project.list | project.read | member.put |
#                member.delete | governance.switch | governance.history | audit.read | audit.verify |
#                egress.request | egress.list | egress.decide | egress.revoke | egress.check |
#                bubble.create | bubble.address | bubble.delete | egress.events.record | session.read |
#                session.search |
#                session.record | session.code.record | user.projects | user.networks.read | user.networks.set |
#                user.offboard |
#                enrollment.create | enrollment.list | enrollment.resend | enrollment.revoke |
#                import.create | import.list | import.read | import.queue | import.review | governance.retag |
#                export.submit | export.list | export.read | export.queue | export.review | export.download |
#                export.inspect | risk.read | risk.promote | risk.bar
#     caller     kind ("person" | "bubble" | "hub" | "proxy"), username, roles (realm roles), acr,
#                auth_age_seconds (kind "person", when known: seconds since the person signed in),
#                project, bubble (kind "bubble" only: the bubble's own project and id)
#     resource   project (slug, for project actions), username (member and user actions),
#                role (optional, member.put: the role being given),
#                session (session.code.record: the session's id, which is its bubble's id),
#                requested_by (export.review: who requested the export)
#   Data (owned by the INFRACALC service, under data.store.infracalc):
#     projects[slug]            {"title", "governance": "CASD" | "INFRACALC", "sensitive_data": bool}
#     members[slug][username]   {"role": "lead" | "member"}
#   CASD staff are people holding the realm role casd-staff.
package infracalc.authz

# METADATA
# description: |
#   The authorization decision, an object with allow (boolean) and reason (string).
#   An unknown project gives exactly the reason "unknown project". Undefined means deny.
# entrypoint: true
default decision := {"allow": false, "reason": "no rule allows this request"}

decision := person_decision if input.caller.kind == "person"

decision := bubble_decision if input.caller.kind == "bubble"

decision := hub_decision if input.caller.kind == "hub"

decision := proxy_decision if input.caller.kind == "proxy"

decision := {"allow": false, "reason": "unknown caller kind"} if not known_kind

# METADATA
# description: |
#   The set of project slugs the caller may see: every project for CASD staff and for the hub,
#   the projects a person is a member of, a bubble's own project. Empty for anyone else.
# entrypoint: true
visible_projects contains slug if {
	staff
	some slug, _ in data.store.infracalc.projects
}

# One lookup per project: only project.list pays for it (a reverse index, username to
# projects, pushed by the service would make it constant if the project count grows large).
visible_projects contains slug if {
	verified_person
	not staff
	some slug
	data.store.infracalc.members[slug][input.caller.username]
	data.store.infracalc.projects[slug]
}

visible_projects contains input.caller.project if {
	input.caller.kind == "bubble"
	data.store.infracalc.projects[input.caller.project]
}

visible_projects contains slug if {
	input.caller.kind == "hub"
	some slug, _ in data.store.infracalc.projects
}

# Negations go through helper rules: `not input.x in s` is undefined, not true, when
# input.x is missing, so it would let a missing field slip past a refusal.
known_kind if input.caller.kind in {"person", "bubble", "hub", "proxy"}

known_action if input.action in known_actions

known_actions := {
	"me.read", "project.create", "project.list", "project.read", "member.put", "member.delete",
	"governance.switch", "governance.history", "audit.read", "audit.verify", "bubble.create", "bubble.address",
	"bubble.delete",
	"egress.request", "egress.list", "egress.decide", "egress.revoke", "egress.check",
	"egress.events.record", "session.read", "session.search", "session.record", "session.code.record",
	"user.projects", "user.networks.read", "user.networks.set", "user.offboard", "enrollment.create", "enrollment.list",
	"enrollment.resend", "enrollment.revoke", "import.create", "import.list", "import.read",
	"import.queue", "import.review", "governance.retag",
	"export.submit", "export.list", "export.read", "export.queue", "export.review", "export.download",
	"export.inspect", "risk.read", "risk.promote", "risk.bar",
}

project_actions := {
	"project.read", "governance.history", "member.put", "member.delete", "governance.switch",
	"egress.request", "egress.list", "egress.revoke", "egress.check", "import.create", "import.list",
	"import.read", "export.list", "export.read", "export.download",
}

# Actions any member of the project (or CASD staff) may take: they read, and change nothing.
# Imported files are read by the project's members once released (the service checks the state;
# staff read files in review to review them).
read_actions := {
	"project.read", "governance.history", "egress.list", "egress.check", "import.list", "import.read",
	"export.list", "export.read",
}

# Actions only CASD staff may take, and how a reason names them.
staff_actions := {
	"bubble.delete": "revoke bubbles",
	"project.create": "create projects",
	"audit.read": "read the audit log",
	"audit.verify": "verify the audit log",
	"egress.decide": "approve or deny egress requests",
	"session.read": "read sessions",
	"import.queue": "see the imports waiting for review",
	"import.review": "approve or reject imports",
	"governance.retag": "re-tag a project's stored objects",
	"session.search": "search sessions",
	"enrollment.create": "invite people",
	"enrollment.list": "list invitations",
	"enrollment.resend": "resend invitations",
	"enrollment.revoke": "revoke invitations",
	"export.queue": "list the exports awaiting review",
	"export.inspect": "read exports under review",
	"risk.read": "read the export risk models",
	"risk.promote": "promote or retire export risk models",
	"risk.bar": "set the export risk models' recall bar",
}

default staff := false

staff if {
	verified_person
	"casd-staff" in input.caller.roles
}

verified_person if {
	input.caller.kind == "person"
	mfa
}

mfa if input.caller.acr == "mfa"

project := data.store.infracalc.projects[input.resource.project]

project_slug := input.resource.project

caller_name := input.caller.username

membership := data.store.infracalc.members[input.resource.project][input.caller.username]

# People

person_decision := {"allow": false, "reason": "people must sign in with a second factor (acr is not mfa)"} if not mfa

person_decision := {"allow": false, "reason": "the caller has no username"} if {
	mfa
	not input.caller.username
}

person_decision := person_action_decision if {
	mfa
	input.caller.username
}

person_action_decision := {"allow": true, "reason": "any signed-in person may read their own profile"} if {
	input.action == "me.read"
}

person_action_decision := {"allow": true, "reason": "any signed-in person may list the projects they can see"} if {
	input.action == "project.list"
}

person_action_decision := staff_only(staff, staff_actions[input.action])

person_action_decision := project_decision if input.action in project_actions

person_action_decision := {"allow": false, "reason": "only the egress proxy may record egress events"} if {
	input.action == "egress.events.record"
}

person_action_decision := {"allow": false, "reason": "only the hub may record session events"} if {
	input.action == "session.record"
}

person_action_decision := {"allow": false, "reason": "only the hub may record where a bubble runs"} if {
	input.action == "bubble.address"
}

person_action_decision := {"allow": false, "reason": "only a bubble may record the code run in it"} if {
	input.action == "session.code.record"
}

person_action_decision := user_decision if input.action in object.keys(user_actions)

person_action_decision := offboard_decision if input.action == "user.offboard"

person_action_decision := review_decision if input.action == "export.review"

person_action_decision := {"allow": false, "reason": "exports are submitted from a bubble of the project"} if {
	input.action == "export.submit"
}

person_action_decision := {"allow": false, "reason": sprintf("no rule allows %v", [input.action])} if {
	not known_action
}

staff_only(true, what) := {"allow": true, "reason": sprintf("CASD staff may %s", [what])}

staff_only(false, what) := {"allow": false, "reason": sprintf("only CASD staff may %s", [what])}

project_decision := {"allow": false, "reason": "the request names no project"} if {
	not input.resource.project
} else := {"allow": false, "reason": "unknown project"} if {
	not project
} else := read_decision if {
	input.action in read_actions
} else := manage_members_decision if {
	input.action in {"member.put", "member.delete"}
} else := manage_egress_decision if {
	input.action in {"egress.request", "egress.revoke"}
} else := switch_decision if {
	input.action == "governance.switch"
} else := download_decision if {
	input.action == "export.download"
} else := import_decision if {
	input.action == "import.create"
}

read_decision := {"allow": true, "reason": "CASD staff may read every project"} if {
	staff
} else := {"allow": true, "reason": sprintf("%s is a member of project %s", [caller_name, project_slug])} if {
	membership
} else := {"allow": false, "reason": sprintf("%s is not a member of project %s", [caller_name, project_slug])} if {
	not membership
}

manage_members_decision := {"allow": true, "reason": "CASD staff may manage the members of every project"} if {
	staff
} else := {
	"allow": false,
	"reason": "a lead may not give up the lead role as the project's last lead; make another member lead first",
} if {
	last_lead_leaving
} else := {"allow": true, "reason": sprintf("leads of project %s may manage its members", [project_slug])} if {
	membership.role == "lead"
} else := {
	"allow": false,
	"reason": sprintf("only CASD staff or a lead of project %s may manage its members", [project_slug]),
} if {
	not membership.role == "lead"
}

# Egress rules: a lead asks for one (and may revoke it); CASD staff decide (egress.decide, above).
manage_egress_decision := {"allow": true, "reason": "CASD staff may manage the egress rules of every project"} if {
	staff
} else := {
	"allow": true,
	"reason": sprintf("leads of project %s may request and revoke its egress rules", [project_slug]),
} if {
	membership.role == "lead"
} else := {
	"allow": false,
	"reason": sprintf("only CASD staff or a lead of project %s may request or revoke its egress rules", [project_slug]),
} if {
	not membership.role == "lead"
}

# The caller is a lead, acts on themself, is the only lead, and would stop being one:
# by leaving, or by being given another role (when the service says which).
last_lead_leaving if {
	input.resource.username == input.caller.username
	membership.role == "lead"
	gives_up_lead_role
	count(leads) == 1
}

gives_up_lead_role if input.action == "member.delete"

gives_up_lead_role if {
	input.action == "member.put"
	input.resource.role != "lead"
}

leads contains username if {
	some username, member in data.store.infracalc.members[input.resource.project]
	member.role == "lead"
}

# Actions about one person (resource.username), and how a reason names them.
user_actions := {
	"user.projects": "list the projects of",
	"user.networks.read": "read the registered networks of",
	"user.networks.set": "change the registered networks of",
}

user_name := input.resource.username

user_decision := {"allow": false, "reason": "the request names no user"} if {
	not input.resource.username
} else := {"allow": true, "reason": sprintf("CASD staff may %s anyone", [user_actions[input.action]])} if {
	staff
} else := own_decision if {
	user_name == caller_name
} else := {
	"allow": false,
	"reason": sprintf("only CASD staff or %s themself may %s %s", [user_name, user_actions[input.action], user_name]),
}

own_decision := {"allow": true, "reason": "people may list their own projects"} if {
	input.action == "user.projects"
}

own_decision := {"allow": true, "reason": "people may read their own registered networks"} if {
	input.action == "user.networks.read"
}

# A network registered by whoever holds a stolen, still valid token would let them in from
# anywhere: changing one's networks needs a recent login, not just an unexpired token.
own_decision := {"allow": true, "reason": "people may change their own registered networks soon after signing in"} if {
	input.action == "user.networks.set"
	recent_login
}

own_decision := {"allow": false, "reason": "change your registered networks within 5 minutes of signing in"} if {
	input.action == "user.networks.set"
	not recent_login
}

# Offboarding disables a person's account and removes every membership they hold: CASD staff do it,
# never to themselves (another member of staff must, so that no one locks the door behind them alone).
offboard_decision := {"allow": false, "reason": "only CASD staff may offboard people"} if {
	not staff
} else := {"allow": false, "reason": "the request names no user"} if {
	not input.resource.username
} else := {"allow": false, "reason": "CASD staff may not offboard themselves"} if {
	user_name == caller_name
} else := {"allow": true, "reason": sprintf("CASD staff may offboard %s", [user_name])}

# Seconds after signing in during which a person may change their own registered networks.
recent_login_seconds := 300

recent_login if {
	is_number(input.caller.auth_age_seconds)
	input.caller.auth_age_seconds <= recent_login_seconds
}

# Exports: CASD staff review them, never their own; members of the project (people) download them.
review_decision := {"allow": false, "reason": "only CASD staff may review exports"} if {
	not staff
} else := {"allow": false, "reason": "the request names no requester of the export"} if {
	not input.resource.requested_by
} else := {"allow": false, "reason": "the requester of an export may not review it"} if {
	input.resource.requested_by == caller_name
} else := {"allow": true, "reason": "CASD staff may review the exports of others"} if {
	input.resource.requested_by != caller_name
}

download_decision := {
	"allow": true,
	"reason": sprintf("%s is a member of project %s", [caller_name, project_slug]),
} if {
	membership
} else := {
	"allow": false,
	"reason": sprintf("only members of project %s may download its exports", [project_slug]),
}

# Every member brings files into the project (leads and researchers alike: the data is theirs to
# work on); every import lands in quarantine and is released by the governance's rules, not by
# who sent it. Outsiders may not, or anyone could fill a project's review queue.
import_decision := {"allow": true, "reason": "CASD staff may import files into every project"} if {
	staff
} else := {"allow": true, "reason": sprintf("members of project %s may import files into it", [project_slug])} if {
	membership
} else := {
	"allow": false,
	"reason": sprintf("only members of project %s and CASD staff may import files into it", [project_slug]),
}

switch_decision := {"allow": true, "reason": "CASD staff may switch a project's governance"} if {
	staff
} else := {"allow": false, "reason": "only CASD staff may switch a project's governance, not its leads"} if {
	membership.role == "lead"
} else := {"allow": false, "reason": "only CASD staff may switch a project's governance"} if {
	not membership.role == "lead"
}

# Bubbles: the project's compute environment, holding a bubble token.

bubble_decision := {"allow": false, "reason": "unknown project"} if {
	reads_own_project
	not project
}

bubble_decision := {"allow": true, "reason": "a bubble may read its own project"} if {
	reads_own_project
	project
}

bubble_decision := {"allow": false, "reason": "unknown project"} if {
	reads_own_imports
	not project
}

# A bubble reads the released files of its own project: that is how data reaches it.
bubble_decision := {"allow": true, "reason": "a bubble may read the imports of its own project"} if {
	reads_own_imports
	project
}

bubble_decision := {"allow": false, "reason": "bubbles may only read their own project"} if {
	not reads_own_project
	not reads_own_imports
	not input.action == "session.code.record"
	not bubble_export_action
}

# A bubble reports the code cells its kernels run into its own session (whose id is the bubble's id).
bubble_decision := {"allow": false, "reason": "the request names no session"} if {
	input.action == "session.code.record"
	not input.resource.session
} else := {"allow": true, "reason": "a bubble may record the code run in it into its own session"} if {
	input.action == "session.code.record"
	input.resource.session == input.caller.bubble
} else := {"allow": false, "reason": "a bubble may record code into its own session only"} if {
	input.action == "session.code.record"
}

bubble_decision := bubble_export_decision if bubble_export_action

# Exports leave through the bubble they were made in, which may then follow their state.
bubble_export_actions := {"export.submit": "submit", "export.read": "read"}

bubble_export_action if input.action in object.keys(bubble_export_actions)

reads_own_project if {
	input.action == "project.read"
	input.resource.project == input.caller.project
}

reads_own_imports if {
	input.action in {"import.list", "import.read"}
	input.resource.project == input.caller.project
}

bubble_export_decision := {
	"allow": true,
	"reason": sprintf("a bubble may %s exports of its own project", [bubble_export_actions[input.action]]),
} if {
	own_project_export
	project
} else := {"allow": false, "reason": "unknown project"} if {
	own_project_export
} else := {"allow": false, "reason": "a bubble may only submit and read exports of its own project"} if {
	not own_project_export
}

own_project_export if input.resource.project == input.caller.project

# The hub: JupyterHub's service credential.

hub_decision := {"allow": true, "reason": "the hub may list projects"} if input.action == "project.list"

hub_decision := {"allow": false, "reason": "the request names no project"} if {
	input.action == "project.read"
	not input.resource.project
} else := {"allow": false, "reason": "unknown project"} if {
	input.action == "project.read"
	not project
} else := {"allow": true, "reason": "the hub may read every project"} if {
	input.action == "project.read"
}

# The hub starts a bubble for a user and a project: only for a member of that project.
hub_decision := {"allow": false, "reason": "the request names no project"} if {
	input.action == "bubble.create"
	not input.resource.project
} else := {"allow": false, "reason": "unknown project"} if {
	input.action == "bubble.create"
	not project
} else := {
	"allow": true,
	"reason": sprintf("%s is a member of project %s", [input.resource.username, project_slug]),
} if {
	input.action == "bubble.create"
	bubble_owner_is_member
} else := {
	"allow": false,
	"reason": sprintf("%s is not a member of project %s", [input.resource.username, project_slug]),
} if {
	input.action == "bubble.create"
}

hub_decision := {"allow": true, "reason": "the hub may stop the bubbles it started"} if input.action == "bubble.delete"

# The address a bubble runs at binds its credentials (the egress proxy refuses them from anywhere else).
hub_decision := {"allow": true, "reason": "the hub may record where the bubbles it starts run"} if {
	input.action == "bubble.address"
}

# The spawn page lists the user's projects; the hub reports spawns, stops and logins into sessions.
hub_decision := {"allow": false, "reason": "the request names no user"} if {
	input.action == "user.projects"
	not input.resource.username
} else := {"allow": true, "reason": "the hub may list the projects of any user"} if {
	input.action == "user.projects"
}

hub_decision := {"allow": true, "reason": "the hub may record its events in sessions"} if {
	input.action == "session.record"
}

hub_decision := {"allow": false, "reason": hub_refusal} if not hub_action

hub_refusal := "the hub may only read projects and users' projects, start or stop bubbles and record session events"

hub_action if input.action in {
	"project.list", "project.read", "bubble.create", "bubble.address", "bubble.delete", "user.projects",
	"session.record",
}

bubble_owner_is_member if data.store.infracalc.members[input.resource.project][input.resource.username]

# The egress proxy: it reports every egress decision and tunnel of the bubbles, and does nothing else.

proxy_decision := {"allow": true, "reason": "the egress proxy may record egress events"} if {
	input.action == "egress.events.record"
}

proxy_decision := {"allow": false, "reason": "the egress proxy may only record egress events"} if {
	not input.action == "egress.events.record"
}
