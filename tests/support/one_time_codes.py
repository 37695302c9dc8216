"""A one-time code for a browser sign-in, through the record of used codes the ``people`` fixture keeps.

Keycloak takes each code once. ``People._last_step`` is that record as the browser tests read it (the
fixture keeps it in step with ``People.fresh_code`` where it has one), so a code chosen here is never
one already used, by this helper or by the fixture's own sign-ins.
"""

from __future__ import annotations

import time

from tests.fixtures.service import People

#: TOTP's step, in seconds.
STEP = 30


def one_time_code(people: People, who: str) -> str:
    """A code of ``who`` not used yet: the current step's, after waiting for the next one if it was used."""
    step = int(time.time() // STEP)
    while people._last_step.get(who) == step:
        time.sleep(1)
        step = int(time.time() // STEP)
    people._last_step[who] = step
    return people.accounts[who].totp().now()
