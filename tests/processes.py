"""Looking at processes through /proc (Linux), for tests that check nothing outlives a stop."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any


def children(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def gone(pid: int) -> bool:
    """No such process, or only its zombie (reaped by whoever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def interrupt(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Stop ``proc`` as Ctrl-C would (SIGINT, so it shuts down cleanly); kill it if it has not
    ended within ``timeout`` seconds."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
