"""Where the service keeps its data in OPA: under ``data.store.infracalc``, a root no policy package lives under.

The policies are packages under ``data.infracalc`` (``infracalc.authz``, ``infracalc.egress``,
``infracalc.login``, ``infracalc.governance``: names the service and the proxy ask by, a contract).
Their data used to be pushed under the same prefix, and OPA then did work proportional to that data
on every write there (measured with OPA 1.22: a PUT cost 1.6 ms with no data, 75 ms with 50
projects, 275 ms with 200), while the same PUT under a root where no package lives costs about
half a millisecond whatever the data. So data and policies have separate roots: policies under
``infracalc``, data under ``store/infracalc``, which also suits bundles later (one bundle's roots
may not overlap another's).

Paths here are slash-separated, relative to OPA's ``/v1/data/``.
"""

from __future__ import annotations

#: The root of every document the service pushes (``data.store.infracalc``).
ROOT = "store/infracalc"

PROJECTS = f"{ROOT}/projects"
MEMBERS = f"{ROOT}/members"
RULES = f"{ROOT}/rules"
RULE_HOSTS = f"{ROOT}/rule_hosts"
BUBBLES = f"{ROOT}/bubbles"
USERS = f"{ROOT}/users"
#: Rewritten last by every push of a project; the egress proxy polls it.
REVISIONS = f"{ROOT}/revisions"
#: Written last by a full resync; gone after an OPA restart.
SYNC = f"{ROOT}/sync"
