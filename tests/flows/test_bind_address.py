"""Issue 13 item 7: the monitor and the /metrics endpoints listen on localhost by default."""

from __future__ import annotations

import socket
import urllib.request

from rich.console import Console

import flows.runtime.demo
from connectors import metrics
from flows.config.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_listen_on_localhost_by_default() -> None:
    port = _free_port()
    assert metrics.serve(port) == ("127.0.0.1", port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200


def test_settings_default_to_localhost_and_can_be_told_otherwise(monkeypatch) -> None:
    assert Settings().bind_address == "127.0.0.1"
    monkeypatch.setenv("SCALPFLOW_BIND_ADDRESS", "0.0.0.0")
    assert Settings().bind_address == "0.0.0.0"


def test_monitor_is_started_with_its_bind_address(monkeypatch) -> None:
    started: list[list[str]] = []

    class _Streamlit:
        def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
            started.append(cmd)

        def wait(self) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(flows.runtime.demo.subprocess, "Popen", _Streamlit)
    flows.runtime.demo.serve_monitor("postgresql://x@h/db", 8599, Console(quiet=True))
    (cmd,) = started
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
