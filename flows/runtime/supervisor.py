"""Keeps a live run's worker processes running: restarts after a crash, stops on a signal.

A Bytewax cluster cannot lose one process and go on, so when any worker dies (a crash,
``kill -9``, an out-of-memory kill) the supervisor stops the others and starts them all again;
they resume from the recovery store's last snapshot (``flows.runtime.recovery``). Restarts are
bounded: at most ``max_restarts`` within ``window_s``, each after an exponentially growing pause,
each logged and passed to the new workers (``RESTARTS_ENV``), which count it in the
``scalpflow_flow_restarts_total`` metric on their ``/metrics``.

SIGINT/SIGTERM to the supervisor are passed on as SIGTERM: each worker ends its input, takes a
final snapshot and exits (``flows.runtime.stopping``). A worker still running ``stop_timeout_s``
later is killed, and the stop is reported as not clean.

A supervisor killed outright (``kill -9``, an OOM kill) cannot pass anything on, so each worker
watches for it itself (``exit_with_supervisor``, from ``SUPERVISOR_ENV``): on Linux the kernel
sends the worker SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), and everywhere a thread
notices the new parent; either way the worker takes the same graceful stop, and ends itself
``ORPHAN_GRACE_S`` later if that stop does not finish. No worker outlives its run.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import FrameType

log = logging.getLogger(__name__)

RESTARTS_ENV = "SCALPFLOW_FLOW_RESTARTS"  # restarts before this start, for the metric
SUPERVISOR_ENV = "SCALPFLOW_SUPERVISOR_PID"  # the worker's parent: it ends when that one dies
ORPHAN_GRACE_S = 10.0  # an orphaned worker's graceful stop, then it exits regardless
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def observe_restarts(env: Mapping[str, str]) -> None:
    """In a worker: count the restarts before this start (``RESTARTS_ENV``) in the metric."""
    from connectors import metrics

    metrics.FLOW_RESTARTS.inc(int(env.get(RESTARTS_ENV, "0")))


def exit_with_supervisor(env: Mapping[str, str], grace_s: float = ORPHAN_GRACE_S) -> None:
    """In a worker started by a ``Supervisor`` (``SUPERVISOR_ENV`` set): stop gracefully when
    the supervisor dies, however it died, and exit ``grace_s`` later at the latest."""
    value = env.get(SUPERVISOR_ENV)
    if not value:
        return  # not supervised (k8s starts the flow itself)
    supervisor = int(value)
    if sys.platform.startswith("linux"):  # the kernel's SIGTERM: flows.runtime.stopping's stop
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    watch = threading.Thread(
        target=_watch_parent, args=(supervisor, grace_s), name="scalpflow.orphan", daemon=True
    )
    watch.start()  # also covers a supervisor that died before the prctl above


def _watch_parent(supervisor: int, grace_s: float) -> None:
    while os.getppid() == supervisor:
        time.sleep(0.5)
    from flows.runtime import stopping

    log.error("the supervisor (pid %d) is gone: stopping this worker", supervisor)
    stopping.request()
    time.sleep(grace_s)
    log.error("orphaned worker still running %.0f s after its stop: exiting", grace_s)
    os._exit(70)


@dataclass(frozen=True)
class RestartPolicy:
    """How often a crashed run is restarted, and how long a stop may take."""

    max_restarts: int = 5
    window_s: float = 600.0  # restarts older than this no longer count against the limit
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    stop_timeout_s: float = 5.0

    def backoff(self, recent: int) -> float:
        """Pause before the ``recent``-th restart within the window (1-based)."""
        return min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, recent - 1))


class Outcome(Enum):
    DONE = "done"  # every worker exited 0 (end of a --no-tail input)
    STOPPED = "stopped"  # asked to stop, every worker exited within the timeout
    STOP_TIMED_OUT = "stop timed out"  # asked to stop, a worker had to be killed
    GAVE_UP = "gave up"  # too many restarts


@dataclass
class Result:
    outcome: Outcome
    restarts: int
    codes: list[int]
    stop_s: float = 0.0  # from the stop request until every worker had exited


Launch = Callable[[int, int], "subprocess.Popen[bytes]"]  # (process index, restarts) -> process


def describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Runs ``processes`` workers from ``launch`` until done, stopped, or out of restarts."""

    def __init__(self, launch: Launch, processes: int, policy: RestartPolicy | None = None):
        self.launch = launch
        self.processes = processes
        self.policy = policy or RestartPolicy()
        self.restarts = 0
        self._stop = threading.Event()
        self._recent: deque[float] = deque()

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    def _start(self) -> list[subprocess.Popen[bytes]]:
        return [self.launch(i, self.restarts) for i in range(self.processes)]

    def _stop_all(self, procs: Sequence[subprocess.Popen[bytes]]) -> bool:
        """SIGTERM every live worker, wait ``stop_timeout_s``; True if none had to be killed."""
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.policy.stop_timeout_s
        clean = True
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                clean = False
                log.error("worker %d did not stop within %.0f s: killed", p.pid,
                          self.policy.stop_timeout_s)  # fmt: skip
                p.kill()
                p.wait()
        return clean

    def _codes(self, procs: Sequence[subprocess.Popen[bytes]]) -> list[int]:
        return [p.returncode if p.returncode is not None else 0 for p in procs]

    def run(self) -> Result:
        procs = self._start()
        while True:
            if self._stop.wait(0.1):
                asked = time.monotonic()
                clean = self._stop_all(procs)
                outcome = Outcome.STOPPED if clean else Outcome.STOP_TIMED_OUT
                took = time.monotonic() - asked
                return Result(outcome, self.restarts, self._codes(procs), took)
            polled = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(polled) if c not in (None, 0)]
            if not failed:
                if all(c == 0 for c in polled):
                    return Result(Outcome.DONE, self.restarts, self._codes(procs))
                continue
            index, code = failed[0]
            self._stop_all(procs)  # a cluster cannot go on without one of its processes
            now = time.monotonic()
            while self._recent and now - self._recent[0] > self.policy.window_s:
                self._recent.popleft()
            if len(self._recent) >= self.policy.max_restarts:
                log.error("worker %d %s; %d restarts within %.0f s: giving up", index,
                          describe(code), len(self._recent), self.policy.window_s)  # fmt: skip
                return Result(Outcome.GAVE_UP, self.restarts, self._codes(procs))
            self._recent.append(now)
            pause = self.policy.backoff(len(self._recent))
            self.restarts += 1
            log.warning("worker %d %s; restart %d in %.1f s (resumes from the last snapshot)",
                        index, describe(code), self.restarts, pause)  # fmt: skip
            if self._stop.wait(pause):
                return Result(Outcome.STOPPED, self.restarts, self._codes(procs))
            procs = self._start()
