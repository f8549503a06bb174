"""Bad input to the CLI is one clear line, never a traceback or a screen of librdkafka noise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import REPO

runner = CliRunner()
NO_BROKER = "127.0.0.1:1"  # nothing listens on port 1


def _scalpflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: librdkafka writes to file descriptor 2 directly,
    which an in-process runner would not see."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_topics_with_kafka_down_is_one_line() -> None:
    done = _scalpflow("topics", SCALPFLOW_KAFKA_BOOTSTRAP=NO_BROKER)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"Kafka at {NO_BROKER} does not answer" in lines[0]
    assert "scalpflow infra up" in lines[0]
    assert "Traceback" not in done.stdout + done.stderr


def test_feed_with_kafka_down_is_one_line() -> None:
    done = _scalpflow("feed", "synthetic", "--minutes", "1", SCALPFLOW_KAFKA_BOOTSTRAP=NO_BROKER)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "does not answer" in done.stderr


@pytest.mark.parametrize("command", [["feed", "synthetic"], ["demo", "--no-ui"]])
@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "08-07-2026"])
def test_a_bad_date_is_a_usage_error(command: list[str], bad: str) -> None:
    done = runner.invoke(app, [*command, "--date", bad])
    assert done.exit_code == 2
    assert "is not a date; use YYYY-MM-DD" in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
