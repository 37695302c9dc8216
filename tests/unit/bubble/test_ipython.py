"""The code recorder's batching, queue bound and failures, with a fake shell and a fake sender.

The same extension is run in a real IPython shell against the real service in
``tests/integration/bubble/test_code_recording.py``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from infracalc.bubble import ipython as extension
from infracalc.bubble.client import BubbleSettings, DeliveryFailed, NotInABubble
from infracalc.bubble.ipython import MAX_SOURCE_BYTES, CodeRecorder, code_cell, cut

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Info:
    raw_cell: str


@dataclass
class Result:
    """What IPython passes to post_run_cell (``ExecutionResult``), reduced to what the recorder reads."""

    info: Info
    execution_count: int | None = 1
    error_in_exec: BaseException | None = None
    error_before_exec: BaseException | None = None

    @property
    def success(self) -> bool:
        return self.error_in_exec is None and self.error_before_exec is None


@dataclass
class Events:
    callbacks: dict[str, list[Any]] = field(default_factory=dict)

    def register(self, name: str, callback: Any) -> None:
        self.callbacks.setdefault(name, []).append(callback)

    def unregister(self, name: str, callback: Any) -> None:
        self.callbacks[name].remove(callback)


@dataclass
class FakeShell:
    events: Events = field(default_factory=Events)

    def run(self, source: str, count: int = 1, error: BaseException | None = None) -> None:
        for callback in self.events.callbacks.get("pre_run_cell", []):
            callback(Info(source))
        for callback in self.events.callbacks.get("post_run_cell", []):
            callback(Result(Info(source), count, error))


@dataclass
class Sender:
    """Collects batches; fails while ``failure`` is set."""

    batches: list[list[Mapping[str, Any]]] = field(default_factory=list)
    failure: Exception | None = None
    sent: threading.Event = field(default_factory=threading.Event)

    def __call__(self, cells: Sequence[Mapping[str, Any]]) -> object:
        if self.failure is not None:
            raise self.failure
        self.batches.append(list(cells))
        self.sent.set()
        return len(cells)

    def sources(self) -> list[list[str]]:
        return [[cell["source"] for cell in batch] for batch in self.batches]


def recorder(sender: Sender, **options: Any) -> tuple[CodeRecorder, FakeShell]:
    shell = FakeShell()
    code = CodeRecorder(sender, clock=lambda: T0, **options)
    shell.events.register("pre_run_cell", code.pre_run_cell)
    shell.events.register("post_run_cell", code.post_run_cell)
    return code, shell


def test_cells_are_sent_in_batches_of_the_batch_size() -> None:
    sender = Sender()
    code, shell = recorder(sender, batch_size=2)
    for n in range(5):
        shell.run(f"x = {n}", count=n + 1)
    assert code.pending == 5
    assert code.flush() is True
    assert sender.sources() == [["x = 0", "x = 1"], ["x = 2", "x = 3"], ["x = 4"]]
    assert sender.batches[0][1] == {
        "at": T0.isoformat(),
        "source": "x = 1",
        "success": True,
        "execution_count": 2,
        "duration_seconds": sender.batches[0][1]["duration_seconds"],
    }
    assert (code.pending, code.delivered, code.dropped) == (0, 5, 0)


def test_a_failed_cell_records_the_exception_type_not_its_message() -> None:
    sender = Sender()
    code, shell = recorder(sender)
    shell.run("patients['Jeanne Martin']", error=KeyError("Jeanne Martin"))
    shell.run("   \n")  # blank: nothing to record
    code.flush()
    (cell,) = sender.batches[0]
    assert (cell["success"], cell["error"]) == (False, "KeyError")
    assert "Jeanne" not in str({k: v for k, v in cell.items() if k != "source"})


def test_long_sources_are_cut_on_a_character_boundary_and_say_so() -> None:
    text, truncated, size = cut("é" * MAX_SOURCE_BYTES)
    assert truncated
    assert size == 2 * MAX_SOURCE_BYTES
    assert text == "é" * (MAX_SOURCE_BYTES // 2)
    cell = code_cell("x" * (MAX_SOURCE_BYTES + 1), at=T0, success=True)
    assert (cell.document["truncated"], cell.document["source_bytes"]) == (True, MAX_SOURCE_BYTES + 1)
    assert len(cell.document["source"]) == MAX_SOURCE_BYTES
    assert "truncated" not in code_cell("x = 1", at=T0, success=True).document


def test_while_the_service_is_away_cells_wait_then_new_ones_are_dropped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = Sender(failure=DeliveryFailed(None, "the service cannot be reached"))
    code, shell = recorder(sender, batch_size=2, max_queue=3)
    with caplog.at_level(logging.WARNING, logger="infracalc.bubble.ipython"):
        for n in range(6):
            shell.run(f"y = {n}")
            assert code.flush() is False, "kept for later"
    assert (code.pending, code.dropped) == (3, 3)
    assert len([r for r in caplog.records if "no longer recorded" in r.getMessage()]) == 1
    sender.failure = None
    assert code.flush() is True
    assert sender.sources() == [["y = 0", "y = 1"], ["y = 2"]], "the oldest kept, in order"


def test_a_refused_batch_is_dropped_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    sender = Sender(failure=DeliveryFailed(401, "the service answered 401: this bubble was stopped"))
    code, shell = recorder(sender)
    shell.run("z = 1")
    with caplog.at_level(logging.WARNING, logger="infracalc.bubble.ipython"):
        assert code.flush() is True
    assert (code.pending, code.dropped) == (0, 1)
    assert "this bubble was stopped" in caplog.text


def test_nothing_the_sender_raises_reaches_the_kernel() -> None:
    sender = Sender(failure=RuntimeError("bug"))
    code, shell = recorder(sender, batch_size=1)
    code.start()
    try:
        shell.run("w = 1")  # the background thread meets the error
        shell.run("w = 2")
    finally:
        code.close(timeout=5)
    assert code.dropped == 2


def test_the_background_thread_sends_a_full_batch_and_close_sends_the_rest() -> None:
    sender = Sender()
    code, shell = recorder(sender, batch_size=2, interval=3600)
    code.start()
    shell.run("a = 1")
    shell.run("b = 2")
    assert sender.sent.wait(30), "a full batch wakes the sender at once"
    shell.run("c = 3")
    code.close(timeout=30)
    assert sender.sources() == [["a = 1", "b = 2"], ["c = 3"]]


def test_the_interval_sends_a_partial_batch() -> None:
    sender = Sender()
    code, shell = recorder(sender, batch_size=50, interval=0.05)
    code.start()
    try:
        shell.run("partial = True")
        assert sender.sent.wait(30)
    finally:
        code.close()
    assert sender.sources() == [["partial = True"]]


def test_the_extension_registers_and_unregisters_its_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFRACALC_API_URL", "http://127.0.0.1:9/api/v1")
    monkeypatch.setenv("INFRACALC_BUBBLE_TOKEN", "ibt_0123456789abcdef_" + "0" * 64)
    monkeypatch.delenv("INFRACALC_BUBBLE_ID", raising=False)
    monkeypatch.setenv("INFRACALC_CODE_INTERVAL", "3600")
    shell = FakeShell()
    extension.load_ipython_extension(shell)
    extension.load_ipython_extension(shell)  # loading twice records once
    assert [len(shell.events.callbacks[name]) for name in ("pre_run_cell", "post_run_cell")] == [1, 1]
    recorder_ = shell.infracalc_code_recorder  # type: ignore[attr-defined]
    shell.run("kept = 1")
    assert recorder_.pending == 1
    extension.unload_ipython_extension(shell)  # the service is unreachable: the kernel is not held up for long
    assert shell.events.callbacks == {"pre_run_cell": [], "post_run_cell": []}


def test_outside_a_bubble_the_extension_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFRACALC_API_URL", raising=False)
    monkeypatch.delenv("INFRACALC_BUBBLE_TOKEN", raising=False)
    shell = FakeShell()
    extension.load_ipython_extension(shell)
    assert shell.events.callbacks == {}
    with pytest.raises(NotInABubble):
        BubbleSettings.from_env({})


def test_settings_take_the_bubble_id_from_the_token_when_unset() -> None:
    settings = BubbleSettings.from_env(
        {"INFRACALC_API_URL": "http://gw:8001/api/v1/", "INFRACALC_BUBBLE_TOKEN": "ibt_0123456789abcdef_" + "a" * 64}
    )
    assert (settings.api_url, settings.bubble_id) == ("http://gw:8001/api/v1", "0123456789abcdef")
    assert "aaaa" not in repr(settings)


def test_the_bubble_package_loads_nothing_but_the_standard_library() -> None:
    code = (
        "import sys, infracalc.bubble.ipython; "
        "print(sorted(m for m in ('litestar', 'sqlalchemy', 'msgspec', 'requests', 'IPython', 'jupyterhub') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
