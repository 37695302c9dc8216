"""The local stack: the platform's servers started and supervised on one machine (``infracalc up``)."""

from __future__ import annotations

from infracalc.stack.ports import PortInUse
from infracalc.stack.process import ManagedProcess, ServerFailed, ServerSpec
from infracalc.stack.up import StackError, run_detached, run_down, run_up

__all__ = [
    "ManagedProcess",
    "PortInUse",
    "ServerFailed",
    "ServerSpec",
    "StackError",
    "run_detached",
    "run_down",
    "run_up",
]
