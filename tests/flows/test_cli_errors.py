"""Bad input to the CLI is one clear line, never a traceback or a screen of librdkafka noise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from flows.cli.app import app
from tests.conftest import REPO

runner = CliRunner()
NO_BROKER = "127.0.0.1:1"  # nothing listens on port 1


def _scalpflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: librdkafka writes to file descriptor 2 directly,
    which an in-process runner would not see."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli.app", *args],
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


WRONG_DSN = "postgresql://nobody@127.0.0.1:1/nothing"  # nothing listens on port 1


@pytest.mark.parametrize(
    "command", [["run", "--no-tail"], ["db", "migrate"], ["feed", "synthetic", "--minutes", "1"]]
)
def test_a_wrong_dsn_is_one_line_saying_what_to_do(command: list[str], kafka_bootstrap) -> None:
    env = {"SCALPFLOW_PG_DSN": WRONG_DSN, "SCALPFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap}
    done = runner.invoke(app, command, env=env)
    assert done.exit_code == 1, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    assert lines[0].startswith("error: cannot connect to PostgreSQL")
    assert "check SCALPFLOW_PG_DSN" in lines[0]
    assert "Traceback" not in done.output
    assert isinstance(done.exception, SystemExit | typer.Exit)


def test_monitor_without_stored_data_says_to_run_the_demo(tmp_path) -> None:
    env = {"SCALPFLOW_PG_DSN": "", "SCALPFLOW_DATA_DIR": str(tmp_path / "none")}
    done = runner.invoke(app, ["monitor"], env=env)
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        f"error: no data in {tmp_path / 'none' / 'pg'}: run `scalpflow demo` first, or set "
        "SCALPFLOW_PG_DSN"
    ]


def test_a_scalpflow_error_from_any_command_is_one_red_line() -> None:
    """The app's group turns a ScalpflowError of a nested command into one line, exit 1;
    any other exception (a bug) keeps its traceback."""
    import typer

    from flows.errors import FlowError, OneLineErrors

    demo = typer.Typer(cls=OneLineErrors)
    sub = typer.Typer()
    demo.add_typer(sub, name="sub")

    @sub.command("refuse")
    def refuse() -> None:
        raise FlowError("first line\n  second line: do this")

    @sub.command("crash")
    def crash() -> None:
        raise KeyError("bug")

    done = runner.invoke(demo, ["sub", "refuse"])
    assert done.exit_code == 1
    assert done.output == "error: first line second line: do this\n"
    crashed = runner.invoke(demo, ["sub", "crash"])
    assert isinstance(crashed.exception, KeyError)


def test_every_family_hangs_under_one_root_and_brokers_share_one_class() -> None:
    from connectors.errors import BrokerUnavailableError, ConnectorError
    from connectors.feeds.angelone import errors as angelone
    from connectors.kafka.admin import BrokerUnavailableError as KafkaUnavailable
    from connectors.kafka.sink import KafkaDeliveryError
    from connectors.postgres.db import DatabaseError
    from dashboards.errors import DashboardError
    from dashboards.queries import MonitorDatabaseError
    from flows.backtest.spec import BacktestError
    from flows.config.accounts import AccountsFileError
    from flows.errors import FlowError
    from operators.errors import OperatorError, ScalpflowError
    from operators.strategies.base import StrategyParamsError
    from operators.trading.costs import CostScheduleError

    assert angelone.BrokerUnavailableError is KafkaUnavailable is BrokerUnavailableError
    families = {
        OperatorError: (CostScheduleError, StrategyParamsError),
        ConnectorError: (DatabaseError, BrokerUnavailableError, KafkaDeliveryError),
        FlowError: (AccountsFileError, BacktestError),
        DashboardError: (MonitorDatabaseError,),
    }
    for family, members in families.items():
        assert issubclass(family, ScalpflowError)
        for member in members:
            assert issubclass(member, family), member
    assert issubclass(angelone.AuthenticationError, ConnectorError)
    assert not issubclass(BrokerUnavailableError, angelone.AngelOneError)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["feed", "synthetic", "--minutes", "0"], "--minutes"),
        (["feed", "synthetic", "--strikes", "41"], "--strikes"),
        (["feed", "synthetic", "--rate", "0"], "--rate"),
        (["feed", "synthetic", "--faults", "0.5"], "--faults"),
        (["feed", "synthetic", "--seed", "-1"], "--seed"),
        (["demo", "--no-ui", "--minutes", "400"], "--minutes"),
        (["run", "--processes", "0"], "--processes"),
    ],
)
def test_an_option_out_of_range_is_a_usage_error(args: list[str], option: str) -> None:
    done = runner.invoke(app, args)
    assert done.exit_code == 2, done.output
    assert f"Invalid value for '{option}'" in done.output
    assert "Traceback" not in done.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["report", "contract-note", "--account", "a", "--date", "bad"], "is not a date"),
        (["ai", "train", "--from", "bad", "--to", "2026-01-01"], "--from must be a date"),
        (
            ["backtest", "--from", "bad", "--to", "2026-07-08 10:00", "--strategy", "gamma_scalp"],
            "--from must be an ISO time",
        ),
        (["run", "--accounts", "/nonexistent/accounts.toml"], "cannot read the accounts file"),
    ],
)
def test_other_bad_inputs_are_one_line(args: list[str], says: str) -> None:
    done = runner.invoke(app, args, env={"SCALPFLOW_PG_DSN": WRONG_DSN})
    assert done.exit_code == 1, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    assert lines[0].startswith("error: ")
    assert says in lines[0]
