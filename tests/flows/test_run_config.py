"""Issue 13 item 6: one RunConfig from settings + options + accounts file, passed whole to the
worker processes and hashed whole into ``runs``."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

import flows.cli.run
from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.postgres.instruments import save_instruments
from flows.cli.app import app
from flows.config.accounts import parse_accounts
from flows.config.run_config import RunConfig, build_run_config
from flows.config.settings import Settings
from flows.pipeline import ENV_CONFIG
from flows.trading import stage_configs
from operators.stages.underlying import StrategySpec
from tests.accounts import account_toml
from tests.integration.helpers import create_topics, unique_topics


class _Worker:
    """Stands in for a worker process: the test builds the worker's flow from its env."""

    envs: ClassVar[list[dict[str, str]]] = []

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        assert "flows.pipeline:flow_from_env()" in cmd
        self.envs.append(env)

    returncode = 0

    def wait(self) -> int:
        return 0

    def poll(self) -> int:  # done at once (the CLI's status loop polls its workers)
        return 0


@pytest.mark.kafka
@pytest.mark.postgres
def test_run_cli_settings_reach_the_worker_stages(
    kafka_bootstrap, pg_dsn, pg_conn, monkeypatch
) -> None:
    save_instruments(pg_dsn, SyntheticMarket(SyntheticConfig(seed=1)).instruments())
    topics = unique_topics("run-config")
    create_topics(kafka_bootstrap, topics)
    env = {
        "SCALPFLOW_PG_DSN": pg_dsn,
        "SCALPFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SCALPFLOW_CAPITAL_RUPEES": "123456",
        "SCALPFLOW_FEED_LAG_THRESHOLD_MS": "750",
        "SCALPFLOW_ALLOWED_LATENESS_MS": "3500",
        **{f"SCALPFLOW_TOPIC_{k.upper()}": v for k, v in topics.model_dump().items()},
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(flows.cli.run.subprocess, "Popen", _Worker)
    _Worker.envs.clear()
    run_id = f"rc-{uuid.uuid4().hex[:8]}"
    args = ["run", "--no-tail", "--processes", "2", "--run-id", run_id,
            "--strategy", "vwap_reversal", "--params", "stop_pct=0.3"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(_Worker.envs) == 2
    assert _Worker.envs[0][ENV_CONFIG] == _Worker.envs[1][ENV_CONFIG]  # passed whole

    # the worker side: the flow a worker builds from its environment
    monkeypatch.setenv(ENV_CONFIG, _Worker.envs[0][ENV_CONFIG])
    from flows.pipeline import flow_from_env

    flow_from_env()
    capital = pg_conn.execute(
        "SELECT capital FROM accounts WHERE run_id = %s AND account = 'paper'", (run_id,)
    ).fetchone()
    assert capital is not None
    assert float(capital[0]) == 123456.0  # recorded by the worker from its config

    pipeline = RunConfig.from_json(_Worker.envs[0][ENV_CONFIG]).pipeline()
    assert pipeline.candle.allowed_lateness == timedelta(milliseconds=3500)  # market stage
    underlying, accounts = stage_configs(pipeline)
    assert underlying.candle.allowed_lateness == timedelta(milliseconds=3500)
    assert [(s.name, dict(s.params)) for s in underlying.strategies] == [
        ("vwap_reversal", {"stop_pct": 0.3})
    ]
    assert list(accounts) == ["paper"]
    assert accounts["paper"].limits.capital == 12_345_600  # paise
    assert accounts["paper"].feed_health.lag_threshold_ms == 750
    assert pipeline.db_partitions == 2

    row = pg_conn.execute("SELECT config FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None
    recorded = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    assert recorded["feed_lag_threshold_ms"] == 750
    assert recorded["allowed_lateness_ms"] == 3500
    assert recorded["accounts"][0]["capital_rupees"] == 123456.0
    assert "pg_dsn" not in json.dumps(recorded)
    assert pg_dsn not in json.dumps(recorded)


def test_run_params_without_strategy_is_one_line_error(monkeypatch) -> None:
    monkeypatch.setenv("SCALPFLOW_PG_DSN", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["run", "--params", "stop_pct=0.3"])
    assert result.exit_code == 1
    assert "--params needs --strategy" in result.output
    assert "Traceback" not in result.output


def _config(**settings: Any) -> RunConfig:
    return build_run_config(
        Settings(**settings),
        kind="live",
        run_id="r",
        strategies=(StrategySpec("vwap_reversal", {}),),
    )


def _digest(config: RunConfig) -> str:
    from connectors.postgres.runs import config_hash

    return config_hash(config.record(None))


def test_every_decision_parameter_changes_the_hash() -> None:
    base = _digest(_config())
    assert _digest(_config(capital_rupees=123_456.0)) != base
    assert _digest(_config(feed_lag_threshold_ms=750)) != base
    assert _digest(_config(allowed_lateness_ms=3500)) != base
    assert _digest(_config(account="other")) != base
    params = build_run_config(
        Settings(), kind="live", run_id="r",
        strategies=(StrategySpec("vwap_reversal", {"stop_pct": 0.3}),),
    )  # fmt: skip
    assert _digest(params) != base
    text = account_toml("paper", 500000, "vwap_reversal")
    limits = build_run_config(
        Settings(), kind="live", run_id="r", accounts_file=parse_accounts(text)
    )
    assert _digest(limits) != base


def test_where_a_run_writes_does_not_change_the_hash() -> None:
    base = _config()
    moved = base.model_copy(
        update={"pg_dsn": "postgresql://x@h/db", "processes": 4, "run_id": "other",
                "kafka_bootstrap": "elsewhere:9092", "batch_size": 7}
    )  # fmt: skip
    assert _digest(moved) == _digest(base)
    assert RunConfig.from_json(moved.to_json()) == moved
