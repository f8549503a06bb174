"""Backtests on the real Kafka broker and PostgreSQL: determinism, live/replay parity, partition
independence; plus the pure helpers (sweep grids, parameters, ranking) and CLI errors."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from connectors.kafka.admin import ensure_topics
from flows.backtest.engine import collect_result, run_backtest
from flows.backtest.spec import (
    BacktestEnv,
    BacktestError,
    BacktestResult,
    BacktestSpec,
    derive_run_id,
    grid_points,
    parse_sweep,
    parse_time,
    strategy_specs,
)
from flows.backtest.sweep import rank, run_sweep, sweep_specs
from flows.cli.run import live_run_config
from flows.config.settings import Settings
from flows.pipeline import build_flow, kafka_source, run_flow
from flows.sources.controls import control_source
from operators.events import Instrument
from operators.market.sessions import IST
from operators.stages.underlying import StrategySpec
from operators.trading.analytics import compute_metrics
from tests.integration.helpers import create_topics, produce, unique_topics
from tests.markets import synthetic_market
from tests.topics import topic_name

ALL = tuple(StrategySpec(n) for n in ("momentum_breakout", "vwap_reversal", "gamma_scalp"))


# ------------------------------------------------------------------------ shared session
class Session:
    """A short synthetic session produced to a 1- and a 6-partition topic."""

    def __init__(self, bootstrap: str, dsn: str) -> None:
        # 30 minutes, ATM ± 2, 0.3× tick rate: ~42k ticks, a few seconds through the flows,
        # and the opening window makes gamma_scalp trade (the other built-ins may too).
        self.market = synthetic_market(7, minutes=30, strikes=2, rate=0.3)
        self.instruments: dict[str, Instrument] = {i.token: i for i in self.market.instruments()}
        tag = topic_name("bt")
        self.topic1 = f"{tag}.p1.md.ticks"
        self.topic6 = f"{tag}.p6.md.ticks"
        ensure_topics(bootstrap, {self.topic1: 1, self.topic6: 6})
        for topic in (self.topic1, self.topic6):
            produce(
                bootstrap,
                topic,
                ((m.key, m.value, m.timestamp_ms) for m in self.market.raw_messages()),
            )
        self.env = BacktestEnv(kafka_bootstrap=bootstrap, pg_dsn=dsn)
        self.spec = BacktestSpec(
            start=self.market.start, end=self.market.end + timedelta(minutes=1), strategies=ALL
        )

    def backtest(self, topic: str, run_id: str | None = None) -> BacktestResult:
        return run_backtest(
            replace(self.spec, topic=topic), self.env, run_id=run_id, instruments=self.instruments
        )


@pytest.fixture(scope="module")
def session(kafka_bootstrap: str, pg_dsn: str) -> Session:
    return Session(kafka_bootstrap, pg_dsn)


@pytest.mark.slow
def test_same_backtest_twice_gives_identical_fills_and_journal(session: Session, pg_dsn) -> None:
    first = session.backtest(session.topic6, run_id=f"det-a-{uuid.uuid4().hex[:6]}")
    second = session.backtest(session.topic6, run_id=f"det-b-{uuid.uuid4().hex[:6]}")
    assert first.fills >= 1, "the session produced no fill: nothing to compare"
    assert first.records == second.records == session.market.raw_count
    assert first.config_hash == second.config_hash
    assert first.fills_hash == second.fills_hash
    assert dict(first.table_hashes) == dict(second.table_hashes)
    assert first.journal_hash == second.journal_hash
    assert first.metrics == second.metrics
    # the journal really holds this run's decisions (the hashes are not of empty tables)
    with psycopg.connect(pg_dsn) as conn:
        trades = conn.execute(
            "SELECT entry_ts, exit_ts, gross, costs, net FROM trades WHERE run_id = %s",
            (first.run_id,),
        ).fetchall()
    assert first.metrics.trades == len(trades)
    assert first.metrics.net_pnl == sum(int(t[4] * 100) for t in trades)


@pytest.mark.slow
def test_derived_run_id_is_recorded_with_its_config_hash(session: Session, pg_dsn) -> None:
    result = session.backtest(session.topic1)
    assert result.run_id == derive_run_id(result.config_hash)
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "SELECT kind, config_hash, config->>'topic' FROM runs WHERE run_id = %s",
            (result.run_id,),
        ).fetchone()
    assert row == ("backtest", result.config_hash, session.topic1)
    # a rerun replaces the namespace: same id, same rows, no duplicates
    again = session.backtest(session.topic1)
    assert again.run_id == result.run_id
    assert again.fills == result.fills
    assert again.journal_hash == result.journal_hash


@pytest.mark.slow
def test_live_run_then_backtest_of_the_same_range_fill_identically(
    session: Session, kafka_bootstrap: str, pg_dsn: str
) -> None:
    live_id = f"live-{uuid.uuid4().hex[:6]}"
    # the config as `scalpflow run --no-tail` builds it (flows.cli.run → flows.config.run_config),
    # its
    # Kafka outputs on this test's own topics; the input is the session's 6-partition topic
    topics = unique_topics("parity").model_copy(update={"ticks": session.topic6})
    create_topics(kafka_bootstrap, topics, tick_partitions=6)
    settings = Settings(pg_dsn=SecretStr(pg_dsn), kafka_bootstrap=kafka_bootstrap, topics=topics)
    names = [s.name for s in ALL]
    run = live_run_config(
        settings,
        run_id=live_id,
        tail=False,
        trading=True,
        processes=1,
        accounts=None,
        strategy=names,
        params=[],
    )
    assert run.kind == "live"
    assert run.strategies == ALL
    assert run.kafka_bootstrap == kafka_bootstrap  # outputs to Kafka too, as a live run
    # as the worker does (flows.pipeline.flow_from_env), with the backtest's (absent) model
    config = run.pipeline(regime_model=None)
    source = kafka_source(
        kafka_bootstrap, run.topics.ticks, tail=run.tail, batch_size=run.batch_size
    )
    controls = control_source(kafka_bootstrap, run.topics.control, tail=run.tail)
    flow = build_flow(
        source, session.instruments, config, controls=controls, flow_id=f"live-{live_id}"
    )
    run_flow(flow)
    live = collect_result(pg_dsn, live_id, "", 0, 0.0, {})
    replayed = session.backtest(session.topic6, run_id=f"par-{uuid.uuid4().hex[:6]}")
    assert live.fills >= 1
    assert replayed.fills == live.fills
    assert replayed.fills_hash == live.fills_hash
    assert replayed.journal_hash == live.journal_hash


@pytest.mark.slow
def test_one_and_six_partitions_give_identical_backtests(session: Session) -> None:
    one = session.backtest(session.topic1, run_id=f"p1-{uuid.uuid4().hex[:6]}")
    six = session.backtest(session.topic6, run_id=f"p6-{uuid.uuid4().hex[:6]}")
    assert one.fills >= 1
    assert one.records == six.records
    assert one.fills_hash == six.fills_hash
    assert one.journal_hash == six.journal_hash
    assert one.metrics == six.metrics


@pytest.mark.slow
def test_cli_reports_an_empty_range_in_one_line(session: Session, pg_dsn: str) -> None:
    from connectors.postgres.instruments import save_instruments
    from flows.cli.app import app

    save_instruments(pg_dsn, session.instruments.values())
    env = {"SCALPFLOW_PG_DSN": pg_dsn, "SCALPFLOW_KAFKA_BOOTSTRAP": session.env.kafka_bootstrap}
    runner = CliRunner()
    args = ["backtest", "--strategy", "gamma_scalp", "--topic", session.topic1]
    later = ["--from", "2026-07-08T12:00", "--to", "2026-07-08T13:00"]
    done = runner.invoke(app, [*args, *later], env=env)
    assert done.exit_code == 1
    assert "no records in" in done.output
    assert "Traceback" not in done.output
    backwards = ["--from", "2026-07-08T10:00", "--to", "2026-07-08T09:00"]
    done = runner.invoke(app, [*args, *backwards], env=env)
    assert done.exit_code == 1
    assert "empty range" in done.output


@pytest.mark.slow
def test_sweep_runs_each_grid_point_in_its_own_process_and_namespace(
    session: Session, pg_dsn: str
) -> None:
    from connectors.postgres.instruments import save_instruments

    save_instruments(pg_dsn, session.instruments.values())
    spec = replace(session.spec, topic=session.topic1, strategies=(StrategySpec("gamma_scalp"),))
    points = sweep_specs(spec, {}, parse_sweep(["max_hold_s=60,300"]))
    results = run_sweep(points, session.env, processes=2)
    assert [r.params for r in results] == [{"max_hold_s": 60}, {"max_hold_s": 300}]
    assert len({r.run_id for r in results}) == 2
    assert all(r.records == session.market.raw_count and r.fills >= 1 for r in results)
    # a shorter holding time exits earlier: the two journals differ
    assert results[0].journal_hash != results[1].journal_hash


# ------------------------------------------------------------------------ pure helpers
def test_sweep_values_split_outside_brackets_and_parse_as_json() -> None:
    grid = parse_sweep(["stop_pct=0.2,0.3", 'regimes=null,["TRENDING","RANGING"]'])
    assert grid == {"stop_pct": [0.2, 0.3], "regimes": [None, ["TRENDING", "RANGING"]]}
    points = grid_points(grid)
    assert len(points) == 4
    assert points[0] == {"regimes": None, "stop_pct": 0.2}
    with pytest.raises(BacktestError, match="key=v1,v2"):
        parse_sweep(["stop_pct"])


def test_strategy_params_are_validated_and_routed() -> None:
    (one,) = strategy_specs(["vwap_reversal"], {"stop_pct": 0.25})
    assert one.params == {"stop_pct": 0.25}
    two = strategy_specs(["vwap_reversal", "gamma_scalp"], {"gamma_scalp.max_hold_s": 60})
    assert [dict(s.params) for s in two] == [{}, {"max_hold_s": 60}]
    with pytest.raises(BacktestError, match="ambiguous"):
        strategy_specs(["vwap_reversal", "gamma_scalp"], {"stop_pct": 0.25})
    with pytest.raises(BacktestError, match="vwap_reversal"):
        strategy_specs(["vwap_reversal"], {"stop_pct": -1})
    with pytest.raises(BacktestError, match="unknown strategy"):
        strategy_specs(["no_such_strategy"], {})


def test_times_default_to_ist_and_ranges_must_be_forward() -> None:
    assert parse_time("2026-07-08T09:15", "--from") == datetime(2026, 7, 8, 9, 15, tzinfo=IST)
    assert parse_time("2026-07-08T03:45Z", "--from") == datetime(2026, 7, 8, 3, 45, tzinfo=UTC)
    t = datetime(2026, 7, 8, 4, tzinfo=UTC)
    with pytest.raises(BacktestError, match="empty range"):
        BacktestSpec(start=t, end=t, strategies=ALL)
    spec = BacktestSpec(start=t, end=t + timedelta(hours=1), strategies=ALL)
    assert spec.config(None)["strategies"][0] == {"name": "momentum_breakout", "params": {}}


def _result(run_id: str, nets: list[int]) -> BacktestResult:
    t0 = datetime(2026, 7, 8, 4, tzinfo=UTC)
    from operators.trading.analytics import SimpleTrade

    trades = [
        SimpleTrade(
            entry_ts=t0 + timedelta(minutes=i),
            exit_ts=t0 + timedelta(minutes=i, seconds=30),
            gross=n + 10,
            costs=10,
            net=n,
        )
        for i, n in enumerate(nets)
    ]
    return BacktestResult(
        run_id=run_id,
        config_hash="",
        metrics=compute_metrics(trades),
        records=0,
        fills=0,
        fills_hash="",
        journal_hash="",
        table_hashes={},
        elapsed_s=0.0,
    )


def test_rank_orders_best_first_and_undefined_last() -> None:
    a = _result("a", [100, -50, 30])  # net 80, drawdown 50
    b = _result("b", [500, -400])  # net 100, drawdown 400
    c = _result("c", [])  # no trades: no win rate
    assert [r.run_id for r in rank([a, b, c], "net_pnl")] == ["b", "a", "c"]
    assert [r.run_id for r in rank([a, b, c], "max_drawdown")] == ["c", "a", "b"]
    assert [r.run_id for r in rank([c, b, a], "win_rate")] == ["a", "b", "c"]
    with pytest.raises(BacktestError, match="cannot rank"):
        rank([a], "luck")
