"""`scalpflow risk reset`: bad input is a one-line error before anything is sent."""

from __future__ import annotations

from typer.testing import CliRunner

from flows.cli.app import app


def test_reset_needs_a_reason() -> None:
    result = CliRunner().invoke(app, ["risk", "reset", "--account", "a", "--reason", "  "])
    assert result.exit_code == 1
    assert "--reason must say why" in result.output
    assert "Traceback" not in result.output


def test_reset_time_needs_an_offset() -> None:
    args = ["risk", "reset", "--account", "a", "--reason", "r", "--at", "2026-07-08T10:00"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "no UTC offset" in result.output
