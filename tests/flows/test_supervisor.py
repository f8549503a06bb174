"""The supervisor restarts crashed workers with bounded, growing pauses and stops on request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from prometheus_client import REGISTRY

from flows.runtime.supervisor import Outcome, RestartPolicy, Supervisor, observe_restarts
from tests.processes import gone

FAST = RestartPolicy(max_restarts=3, backoff_initial_s=0.01, backoff_max_s=0.05,
                     stop_timeout_s=2.0)  # fmt: skip


def _worker(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(backoff_initial_s=1.0, backoff_max_s=30.0)
    assert [policy.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_crashed_worker_is_restarted_and_told_how_often(tmp_path: Path) -> None:
    seen: list[int] = []

    def launch(index: int, restarts: int) -> subprocess.Popen[bytes]:
        seen.append(restarts)
        return _worker(f"import sys; sys.exit({0 if restarts == 2 else 3})")

    result = Supervisor(launch, 1, FAST).run()
    assert result.outcome is Outcome.DONE
    assert result.restarts == 2
    assert seen == [0, 1, 2]


def test_a_worker_killed_by_a_signal_restarts_every_process_of_the_cluster() -> None:
    starts: list[tuple[int, int]] = []

    def launch(index: int, restarts: int) -> subprocess.Popen[bytes]:
        starts.append((index, restarts))
        if index == 0 and restarts == 0:
            return _worker("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
        if restarts == 0:
            return _worker("import time; time.sleep(60)")  # stopped with its cluster
        return _worker("pass")

    result = Supervisor(launch, 2, FAST).run()
    assert result.outcome is Outcome.DONE
    assert starts == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_restarts_are_bounded() -> None:
    result = Supervisor(lambda i, r: _worker("import sys; sys.exit(1)"), 1, FAST).run()
    assert result.outcome is Outcome.GAVE_UP
    assert result.restarts == FAST.max_restarts
    assert result.codes == [1]


GRACEFUL = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("up", flush=True)
time.sleep(60)
"""


def _stop_when_up(supervisor: Supervisor) -> None:
    """Make ``supervisor`` request its own stop once every worker it starts is up."""
    original = supervisor._start

    def start() -> list[subprocess.Popen[bytes]]:
        procs = original()

        def wait_and_stop() -> None:
            for p in procs:
                assert p.stdout is not None
                p.stdout.readline()  # the worker installed its handler
            supervisor.request_stop()

        threading.Thread(target=wait_and_stop, daemon=True).start()
        return procs

    supervisor._start = start  # type: ignore[method-assign]


def test_a_stop_request_ends_the_workers_gracefully() -> None:
    procs: list[subprocess.Popen[bytes]] = []

    def launch(index: int, restarts: int) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-c", GRACEFUL], stdout=subprocess.PIPE)
        procs.append(p)
        return p

    supervisor = Supervisor(launch, 2, FAST)
    _stop_when_up(supervisor)
    result = supervisor.run()
    assert result.outcome is Outcome.STOPPED
    assert result.codes == [0, 0]


def test_a_worker_that_ignores_the_stop_is_killed_after_the_timeout() -> None:
    stubborn = GRACEFUL.replace("sys.exit(0)", "None")
    policy = RestartPolicy(stop_timeout_s=0.5)

    def launch(index: int, restarts: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE)

    supervisor = Supervisor(launch, 1, policy)
    _stop_when_up(supervisor)
    result = supervisor.run()
    assert result.outcome is Outcome.STOP_TIMED_OUT
    assert result.codes == [-9]


def test_restarts_are_counted_in_the_worker_metric() -> None:
    name = "scalpflow_flow_restarts_total"
    before = REGISTRY.get_sample_value(name) or 0.0
    observe_restarts({"SCALPFLOW_FLOW_RESTARTS": "3"})
    assert REGISTRY.get_sample_value(name) == before + 3


# A supervisor (MIDDLE) starts one worker (ORPHAN) and is then killed with SIGKILL.
MIDDLE = """
import os, subprocess, sys, time
env = {**os.environ, "SCALPFLOW_SUPERVISOR_PID": str(os.getpid())}
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]], env=env)
print(child.pid, flush=True)
time.sleep(120)
"""
ORPHAN = """
import os, sys, time
from flows.runtime import stopping
from flows.runtime.supervisor import exit_with_supervisor
stopping.install()  # as a worker does: SIGTERM only requests the graceful stop
exit_with_supervisor(os.environ, grace_s=float(sys.argv[3]))
open(sys.argv[1], "w").write("up")
if sys.argv[2] == "graceful":
    while not stopping.requested():
        time.sleep(0.05)
    open(sys.argv[1], "w").write("stopped")
    sys.exit(0)
time.sleep(120)  # a stop that never finishes
"""


def _orphan(tmp_path: Path, mode: str, grace_s: float) -> str:
    """Start MIDDLE + ORPHAN, kill MIDDLE with SIGKILL once ORPHAN is up, wait (bounded) for
    ORPHAN to be gone, return what it wrote."""
    marker = tmp_path / "marker"
    middle = subprocess.Popen(
        [sys.executable, "-c", MIDDLE, ORPHAN, str(marker), mode, str(grace_s)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert middle.stdout is not None
        child = int(middle.stdout.readline())
        deadline = time.monotonic() + 60  # bounds only: each step takes well under a second
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the worker never came up"
        os.kill(middle.pid, signal.SIGKILL)
        middle.wait()
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not gone(child):
            os.kill(child, signal.SIGKILL)
            raise AssertionError("the worker outlived its killed supervisor")
        return marker.read_text()
    finally:
        if middle.poll() is None:
            middle.kill()


def test_a_worker_stops_gracefully_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    assert _orphan(tmp_path, "graceful", grace_s=30.0) == "stopped"


def test_an_orphaned_worker_whose_stop_hangs_exits_after_the_grace(tmp_path: Path) -> None:
    assert _orphan(tmp_path, "stuck", grace_s=1.0) == "up"  # gone, without a stop of its own
