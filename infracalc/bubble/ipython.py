"""An IPython extension that records each cell a bubble's kernel runs into the bubble's session.

Enabled in every kernel of the bubble image (``c.InteractiveShellApp.extensions``), or by hand
with ``%load_ext infracalc.bubble.ipython``. After each cell (IPython's ``post_run_cell`` event) it
queues the cell's source, execution count, success and, on failure, the exception's type (never
its message, which may quote data; never the output). A background thread sends the queue to the
service (``POST /sessions/{bubble id}/code``) every ``batch_size`` cells or every ``interval``
seconds, and once more when the kernel exits.

The researcher's kernel comes first: a cell never waits for the service, and nothing here raises
into it. While the service cannot be reached, cells wait in a bounded queue and are sent later;
once the queue is full, new cells are dropped with a warning (one per outage). A cell the service
refuses (401 once the bubble is stopped, 403, 422) is dropped with a warning too: sending it again
would be refused again. Sources over 64 KiB are cut, and the record says so.

Outside a bubble (no ``INFRACALC_API_URL`` or ``INFRACALC_BUBBLE_TOKEN``) the extension does nothing.
Settings: ``INFRACALC_CODE_BATCH`` (cells per request, 1 to 50, default 20), ``INFRACALC_CODE_INTERVAL``
(seconds, default 5), ``INFRACALC_CODE_QUEUE`` (cells kept while the service is away, default 1000).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infracalc.bubble.client import BubbleClient, BubbleSettings, DeliveryFailed, NotInABubble

logger = logging.getLogger("infracalc.bubble.ipython")

#: The largest source sent for one cell, in bytes of UTF-8 (the service's own limit).
MAX_SOURCE_BYTES = 64 * 1024
#: The most cells in one request (the service's limit), and the most bytes of JSON.
MAX_BATCH_CELLS = 50
MAX_BATCH_BYTES = 4 * 1024 * 1024
#: The attribute of the shell holding its recorder (so that unloading finds it).
_ATTRIBUTE = "infracalc_code_recorder"

#: The kernel configuration that loads this extension (the bubble image carries the same lines, in
#: ``images/bubble/ipython_kernel_config.py``).
KERNEL_CONFIG = """\
# Written by INFRACALC: every kernel records the cells it runs into the bubble's session
# (infracalc.bubble.ipython); outside a bubble the extension does nothing.
c = get_config()  # noqa: F821
c.InteractiveShellApp.extensions.append("infracalc.bubble.ipython")
"""

#: Sends a batch of cells (JSON objects) to the service; raises on failure.
Send = Callable[[Sequence[Mapping[str, Any]]], object]


@dataclass(frozen=True, slots=True)
class CodeCell:
    """One cell as it is sent: its JSON form, and that form's size."""

    document: Mapping[str, Any]
    size: int


def cut(source: str, limit: int = MAX_SOURCE_BYTES) -> tuple[str, bool, int]:
    """``source`` cut to ``limit`` bytes of UTF-8 (on a character boundary): the text, whether it was cut, its size."""
    data = source.encode("utf-8", "replace")
    if len(data) <= limit:
        return source, False, len(data)
    return data[:limit].decode("utf-8", "ignore"), True, len(data)


def code_cell(
    source: str,
    *,
    at: datetime,
    success: bool,
    execution_count: int | None = None,
    error: BaseException | None = None,
    duration_seconds: float | None = None,
) -> CodeCell:
    """The record of one executed cell."""
    text, truncated, size = cut(source)
    document: dict[str, Any] = {
        "at": at.isoformat(),
        "source": text,
        "success": success,
        "execution_count": execution_count,
    }
    if error is not None:
        document["error"] = type(error).__name__[:200]
    if duration_seconds is not None:
        document["duration_seconds"] = max(0.0, duration_seconds)
    if truncated:
        document["truncated"] = True
        document["source_bytes"] = size
    return CodeCell(document, len(json.dumps(document)))


class CodeRecorder:
    """Queues executed cells and sends them in batches from a background thread; never blocks or raises into IPython.

    Args:
        send: delivers a batch; :class:`~infracalc.bubble.client.DeliveryFailed` that is worth retrying keeps the
            batch queued, any other failure drops it with a warning.
        batch_size: cells per request, and how many queued cells wake the sender up at once.
        interval: seconds between two sends of a partial batch (and before a retry).
        max_queue: cells kept while the service cannot be reached; beyond it new cells are dropped.
    """

    def __init__(
        self,
        send: Send,
        *,
        batch_size: int = 20,
        interval: float = 5.0,
        max_queue: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_CELLS:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_CELLS}, got {batch_size}")
        self.send = send
        self.batch_size = batch_size
        self.interval = interval
        self.max_queue = max_queue
        self._clock = clock
        self._queue: deque[CodeCell] = deque()
        self._wake = threading.Condition()
        self._sending = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._started: tuple[datetime, float] | None = None
        #: Cells dropped (queue full, or refused by the service), and cells delivered, since the start.
        self.dropped = 0
        self.delivered = 0
        self._warned_full = False

    # IPython's events

    def pre_run_cell(self, info: Any = None) -> None:
        """Remember when the cell started."""
        self._started = (self._clock(), time.monotonic())

    def post_run_cell(self, result: Any) -> None:
        """Queue the cell ``result`` (an IPython ``ExecutionResult``) describes; empty cells are not recorded."""
        try:
            info = getattr(result, "info", None)
            source = getattr(info, "raw_cell", None)
            if not isinstance(source, str) or not source.strip():
                return
            started, ticks = self._started or (self._clock(), None)
            self._started = None
            error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
            count = getattr(result, "execution_count", None)
            self.add(
                code_cell(
                    source,
                    at=started,
                    success=bool(getattr(result, "success", error is None)),
                    execution_count=count if isinstance(count, int) and count >= 0 else None,
                    error=error if isinstance(error, BaseException) else None,
                    duration_seconds=None if ticks is None else time.monotonic() - ticks,
                )
            )
        except Exception:
            logger.warning("infracalc: this cell could not be recorded", exc_info=True)

    # The queue

    def add(self, cell: CodeCell) -> None:
        """Queue ``cell``, or drop it with a warning when the queue is full; wakes the sender at a full batch."""
        with self._wake:
            if len(self._queue) >= self.max_queue:
                self.dropped += 1
                if not self._warned_full:
                    self._warned_full = True
                    logger.warning(
                        "infracalc: the INFRACALC service has not taken the recorded cells for a while; %d are "
                        "waiting, and newer cells are no longer recorded in your session until it does",
                        len(self._queue),
                    )
                return
            self._queue.append(cell)
            if len(self._queue) >= self.batch_size:
                self._wake.notify()

    @property
    def pending(self) -> int:
        """Cells waiting to be sent."""
        with self._wake:
            return len(self._queue)

    def _next_batch(self) -> list[CodeCell]:
        with self._wake:
            batch: list[CodeCell] = []
            size = 0
            while self._queue and len(batch) < self.batch_size:
                cell = self._queue[0]
                if batch and size + cell.size > MAX_BATCH_BYTES:
                    break
                batch.append(self._queue.popleft())
                size += cell.size
            return batch

    def _put_back(self, batch: list[CodeCell]) -> None:
        with self._wake:
            self._queue.extendleft(reversed(batch))

    def flush(self) -> bool:
        """Send everything queued now, batch by batch; False when the service could not take it (cells kept)."""
        with self._sending:
            while True:
                batch = self._next_batch()
                if not batch:
                    return True
                try:
                    self.send([cell.document for cell in batch])
                except DeliveryFailed as error:
                    if error.worth_retrying:
                        self._put_back(batch)
                        logger.debug("infracalc: cells kept for later: %s", error)
                        return False
                    self._drop(batch, str(error))
                except Exception as error:  # noqa: BLE001 - whatever fails, the kernel goes on
                    self._drop(batch, repr(error))
                else:
                    self.delivered += len(batch)
                    with self._wake:
                        self._warned_full = False

    def _drop(self, batch: list[CodeCell], why: str) -> None:
        self.dropped += len(batch)
        logger.warning("infracalc: %d cell(s) not recorded in your session: %s", len(batch), why)

    # The sender thread

    def start(self) -> None:
        """Start the background sender (a daemon thread: it never keeps the kernel alive)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="infracalc-code-recorder", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._stopping and len(self._queue) < self.batch_size:
                    self._wake.wait(self.interval)
                if self._stopping:
                    return
            if not self.flush():
                # The service is away: wait a whole interval before trying again, whatever arrives meanwhile.
                with self._wake:
                    if not self._stopping:
                        self._wake.wait(self.interval)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the sender and send what is left, giving up after about ``timeout`` seconds (at kernel exit)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._sending.acquire(timeout=timeout):
            self._sending.release()
            self.flush()


def recorder_from_env(environ: Mapping[str, str] | None = None) -> CodeRecorder:
    """A recorder sending to the service of the bubble's environment, with its settings.

    Raises:
        NotInABubble: the environment is not a bubble's.
    """
    env = os.environ if environ is None else environ
    #: ``INFRACALC_CODE_BATCH``: cells sent in one request (1 to 50).
    #: ``INFRACALC_CODE_INTERVAL``: seconds between two sends of the cells run meanwhile.
    #: ``INFRACALC_CODE_QUEUE``: cells kept while the service is away; newer ones are dropped beyond, with a warning.
    client = BubbleClient(BubbleSettings.from_env(env))
    return CodeRecorder(
        client.record_code,
        batch_size=min(MAX_BATCH_CELLS, max(1, _number(env, "INFRACALC_CODE_BATCH", 20))),
        interval=max(0.05, float(_number(env, "INFRACALC_CODE_INTERVAL", 5.0))),
        max_queue=max(1, _number(env, "INFRACALC_CODE_QUEUE", 1000)),
    )


def _number(env: Mapping[str, str], name: str, default: int | float) -> Any:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return type(default)(raw)
    except ValueError:
        logger.warning("infracalc: %s=%r is not a number; using %s", name, raw, default)
        return default


def load_ipython_extension(ipython: Any) -> None:
    """Record the cells of ``ipython`` (an ``InteractiveShell``) into the bubble's session; nothing outside a bubble."""
    if getattr(ipython, _ATTRIBUTE, None) is not None:
        return
    try:
        recorder = recorder_from_env()
    except NotInABubble as reason:
        logger.info("infracalc: code is not recorded (%s)", reason)
        return
    ipython.events.register("pre_run_cell", recorder.pre_run_cell)
    ipython.events.register("post_run_cell", recorder.post_run_cell)
    setattr(ipython, _ATTRIBUTE, recorder)
    recorder.start()
    atexit.register(recorder.close)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop recording: unregister the callbacks and send what is left."""
    recorder: CodeRecorder | None = getattr(ipython, _ATTRIBUTE, None)
    if recorder is None:
        return
    ipython.events.unregister("pre_run_cell", recorder.pre_run_cell)
    ipython.events.unregister("post_run_cell", recorder.post_run_cell)
    setattr(ipython, _ATTRIBUTE, None)
    atexit.unregister(recorder.close)
    recorder.close()


def write_kernel_config(ipython_dir: Path) -> Path:
    """Write :data:`KERNEL_CONFIG` as ``<ipython_dir>/profile_default/ipython_kernel_config.py``; its path.

    For kernels whose ``IPYTHONDIR`` the platform owns (the local spawner's bubbles); the bubble image
    carries the same configuration in its environment's IPython directory instead.
    """
    path = ipython_dir / "profile_default" / "ipython_kernel_config.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(KERNEL_CONFIG)
    return path
