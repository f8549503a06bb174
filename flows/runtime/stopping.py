"""A graceful stop for a worker process: finish the epoch, snapshot, exit.

Bytewax's own reaction to SIGINT is to abort: the work since the last snapshot is redone on
restart and its outputs are sent again. Here SIGINT/SIGTERM only set a flag. The sources
(``flows.sources.aligned_kafka``) see it and end their input, the stateful steps
(``flows.adapters``) keep their state at that end of input instead of flushing it as if the session
were over, and Bytewax then takes its end-of-input snapshot (offsets and state) and exits. A
restart resumes exactly there: nothing is redone, nothing is sent twice.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_STOP = threading.Event()


def requested() -> bool:
    """True once this process was asked to stop (never in backtests or the demo)."""
    return _STOP.is_set()


def request() -> None:
    _STOP.set()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    request()


def install() -> None:
    """Make SIGINT and SIGTERM request a graceful stop (worker processes of a live run)."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
