"""The IPython extension in a real IPython shell, sending to ``infracalc serve``: cells land in the session.

No kernel is needed: ``InteractiveShell.run_cell`` fires the same ``post_run_cell`` events an
IPython kernel does. The service is the real process (``live_service``) with the session's OPA and
Keycloak; the bubble is registered by the hub's credential, as the hub does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from tests.fixtures.live_service import LiveService
from tests.fixtures.service import People

pytestmark = pytest.mark.integration


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A fresh IPython shell keeping its files in the test's directory, without history."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    config = Config()
    config.HistoryManager.enabled = False
    InteractiveShell.clear_instance()
    instance = InteractiveShell.instance(config=config)
    try:
        yield instance
    finally:
        InteractiveShell.clear_instance()


def register_bubble(live: LiveService, people: People) -> tuple[str, str]:
    """A project ``cohort`` with the researcher as member, and a bubble of theirs: its id and token."""
    staff = people.headers("staff")
    created = requests.post(
        f"{live.api}/projects",
        json={"id": "cohort", "title": "Cohort", "governance": "INFRACALC"},
        headers=staff,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    member = requests.put(
        f"{live.api}/projects/cohort/members/{people.username('researcher')}",
        json={"role": "member"},
        headers=staff,
        timeout=30,
    )
    assert member.status_code == 200, member.text
    bubble = requests.post(
        f"{live.api}/bubbles",
        json={"project": "cohort", "username": people.username("researcher"), "address": None},
        headers=people.hub_headers(),
        timeout=30,
    )
    assert bubble.status_code == 201, bubble.text
    return bubble.json()["id"], bubble.json()["token"]


def staff_get(live: LiveService, people: People, path: str, **params: Any) -> Any:
    answer = requests.get(f"{live.api}{path}", params=params, headers=people.headers("staff"), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_cells_run_in_ipython_appear_in_the_session_and_are_found(
    live_service: LiveService, people: People, shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    bubble_id, token = register_bubble(live_service, people)
    monkeypatch.setenv("INFRACALC_API_URL", live_service.api)
    monkeypatch.setenv("INFRACALC_BUBBLE_TOKEN", token)
    monkeypatch.setenv("INFRACALC_BUBBLE_ID", bubble_id)
    monkeypatch.setenv("INFRACALC_CODE_BATCH", "2")
    shell.extension_manager.load_extension("infracalc.bubble.ipython")
    try:
        # store_history, as a kernel runs cells: each gets the next execution count.
        assert shell.run_cell(
            "import statistics\nmedian_age = statistics.median([31, 47, 52])", store_history=True
        ).success
        assert not shell.run_cell("ratio = 1 / 0", store_history=True).success
        assert shell.run_cell("median_age", store_history=True).result == 47
    finally:
        shell.extension_manager.unload_extension("infracalc.bubble.ipython")  # sends what is left

    timeline = staff_get(live_service, people, f"/sessions/{bubble_id}")
    cells = [event for event in timeline["events"] if event["kind"] == "code.cell"]
    assert [(c["source"], c["summary"], c["details"]["success"]) for c in cells] == [
        ("bubble", "import statistics", True),
        ("bubble", "ratio = 1 / 0", False),
        ("bubble", "median_age", True),
    ]
    assert cells[0]["details"]["source"] == "import statistics\nmedian_age = statistics.median([31, 47, 52])"
    assert cells[1]["details"]["error"] == "ZeroDivisionError"
    assert [c["details"]["execution_count"] for c in cells] == [1, 2, 3]

    found = staff_get(live_service, people, "/sessions", q="statistics.median")
    assert [(s["id"], s["matching_events"]) for s in found["sessions"]] == [(bubble_id, 1)]
    assert "statistics.median([31, 47, 52])" in found["sessions"][0]["snippet"]
    assert staff_get(live_service, people, "/sessions", q="statistics", user="someone-else")["sessions"] == []


def test_a_kernel_whose_service_is_down_runs_its_cells_all_the_same(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFRACALC_API_URL", "http://127.0.0.1:9/api/v1")  # nothing listens on the discard port
    monkeypatch.setenv("INFRACALC_BUBBLE_TOKEN", "ibt_0123456789abcdef_" + "0" * 64)
    monkeypatch.setenv("INFRACALC_CODE_BATCH", "1")
    monkeypatch.setenv("INFRACALC_CODE_QUEUE", "2")
    shell.extension_manager.load_extension("infracalc.bubble.ipython")
    try:
        for n in range(5):
            assert shell.run_cell(f"value = {n} * 2").success
        assert shell.user_ns["value"] == 8
    finally:
        shell.extension_manager.unload_extension("infracalc.bubble.ipython")
