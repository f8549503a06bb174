"""The dashboards' SQL against the session's real PostgreSQL (every migration applied)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from connectors.postgres.db import storage_mode
from dashboards import queries
from tests import both_modes
from tests.dashboards.conftest import SESSION_OPEN, Populated, new_run_id, populate

pg_dsn = both_modes.pg_dsn  # plain and TimescaleDB, see tests/both_modes.py
pg_conn = both_modes.pg_conn


def test_list_runs_has_registered_and_candle_only_runs(
    pg_conn: psycopg.Connection[Any], populated: Populated
) -> None:
    orphan = populate(
        pg_conn, new_run_id("orphan"), register=False, started_at=SESSION_OPEN + timedelta(days=1)
    )
    runs = {r.run_id: r for r in queries.list_runs(pg_conn)}
    assert runs[populated.run_id].kind == "demo"
    assert runs[populated.run_id].note == "test demo run"
    assert runs[orphan.run_id].kind == ""
    assert runs[orphan.run_id].started_at == SESSION_OPEN + timedelta(days=1)
    ids = [r.run_id for r in queries.list_runs(pg_conn)]
    assert len(ids) == len(set(ids))


def test_list_instruments_index_first(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], populated: Populated
) -> None:
    got = queries.list_instruments(pg_conn, populated.run_id)
    assert [i.token for i in got] == [populated.index_token, populated.option_token]
    assert got[1].kind == "CE"
    assert got[1].strike == Decimal("24000.00")
    assert got[1].label == "NIFTY07JAN2524000CE (CE 24000)"
    intervals = queries.list_intervals(pg_conn, populated.run_id, populated.option_token)
    timescale = storage_mode(pg_dsn) == "timescaledb"
    assert intervals == (["1s", "5m"] if timescale else ["1s"])


def test_minute_history_of_1s_candles_comes_from_the_aggregates_under_timescaledb(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], populated: Populated
) -> None:
    # The option has three 1 s candles (100 / 101 / 99 / 100.5, 75 each) and no 1 m ones.
    run, token = populated.run_id, populated.option_token
    for interval in ("1m", "5m"):
        bars = queries.candles(pg_conn, run, token, interval)
        if storage_mode(pg_dsn) == "plain":
            assert bars == []
            continue
        [bar] = bars
        assert bar.ts == SESSION_OPEN
        assert (bar.open, bar.high, bar.low, bar.close) == (100, 101, 99, Decimal("100.5"))
        assert bar.volume == 225
        assert bar.vwap == pytest.approx(100.5)
        assert bar.ema9 is None
    # An instrument with stored 1 m candles and no 1 s ones keeps its stored history.
    stored = queries.candles(pg_conn, run, populated.index_token, "1m")
    assert len(stored) == populated.candles


def test_candles_join_indicators_oldest_first(
    pg_conn: psycopg.Connection[Any], populated: Populated
) -> None:
    bars = queries.candles(pg_conn, populated.run_id, populated.index_token, "1m")
    assert len(bars) == populated.candles
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)
    assert all(b.ema9 is None for b in bars[: populated.unindicated])
    assert all(b.ema9 is not None for b in bars[populated.unindicated :])
    last = bars[-1]
    assert last.ema9 == pytest.approx(float(last.close) - 1.0)
    assert last.ema21 == pytest.approx(float(last.close) - 2.0)
    assert last.ind_vwap == pytest.approx(last.vwap)
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)


def test_candles_limit_keeps_the_latest(
    pg_conn: psycopg.Connection[Any], populated: Populated
) -> None:
    bars = queries.candles(pg_conn, populated.run_id, populated.index_token, "1m", limit=5)
    assert [b.ts for b in bars] == [
        SESSION_OPEN + timedelta(minutes=m) for m in range(populated.candles - 5, populated.candles)
    ]


def test_fills_newest_first_with_total_costs(
    pg_conn: psycopg.Connection[Any], populated: Populated
) -> None:
    rows = queries.fills(pg_conn, populated.run_id)
    assert len(rows) == populated.fills
    assert rows[0].ts > rows[-1].ts
    assert {r.costs for r in rows} == {Decimal("21.37")}
    assert {r.symbol for r in rows} == {"NIFTY07JAN2524000CE"}
    assert len(queries.fills(pg_conn, populated.run_id, limit=2)) == 2


def test_positions_and_pnl_summary(pg_conn: psycopg.Connection[Any], populated: Populated) -> None:
    rows = queries.positions(pg_conn, populated.run_id)
    assert [r.strategy for r in rows] == ["momentum_breakout", "vwap_reversal"]  # open first
    total = queries.pnl_summary(rows)
    assert total.realised == Decimal("126.47")
    assert total.unrealised == Decimal("18.750")
    assert total.costs == Decimal("45.84")
    assert total.net == Decimal("99.380")
    assert total.open_positions == 1


def test_trades_metrics_and_equity(pg_conn: psycopg.Connection[Any], populated: Populated) -> None:
    rows = queries.trades(pg_conn, populated.run_id)
    assert [r.net for r in rows] == list(populated.trade_nets)
    assert rows[1].exit_reason == "STOP"
    assert rows[0].entry_reason == "EMA9 crossed above EMA21 #0"
    metrics = queries.trade_metrics(rows)
    assert metrics.trades == 3
    assert metrics.wins == 2
    assert metrics.net_pnl == 5213 - 3140 + 7500  # paise
    assert metrics.max_drawdown == 3140
    equity = queries.equity_points(rows)
    assert [v for _, v in equity] == pytest.approx([52.13, 20.73, 95.73])


def test_latest_regime_and_ai_state(pg_conn: psycopg.Connection[Any], populated: Populated) -> None:
    regimes = queries.latest_regimes(pg_conn, populated.run_id)
    assert [(r.underlying, r.regime) for r in regimes] == [("NIFTY", "TRENDING")]
    assert regimes[0].features == {"adx": 31.5}
    states = queries.latest_ai_state(pg_conn, populated.run_id)
    assert [(s.strategy, s.state["size_multiplier"]) for s in states] == [
        ("momentum_breakout", 0.5),
        ("vwap_reversal", 1.5),
    ]


def test_risk_events_and_dead_letters(
    pg_conn: psycopg.Connection[Any], populated: Populated
) -> None:
    events = queries.risk_events(pg_conn, populated.run_id)
    assert [e.kind for e in events] == ["HALT", "COOLDOWN"]
    counts = {d.reason: d.count for d in queries.dead_letter_counts(pg_conn)}
    assert counts[populated.dead_reason] == populated.dead_letters
    # the same letters again under another run: the run's own count is unchanged
    pg_conn.execute(
        "INSERT INTO dead_letters (run_id, source_topic, source_partition, source_offset,"
        " reason, raw) SELECT 'other-' || run_id, source_topic, source_partition,"
        " source_offset, reason, raw FROM dead_letters WHERE run_id = %s",
        (populated.run_id,),
    )
    ours = {d.reason: d.count for d in queries.dead_letter_counts(pg_conn, populated.run_id)}
    assert ours == {populated.dead_reason: populated.dead_letters}
    counts = {d.reason: d.count for d in queries.dead_letter_counts(pg_conn)}
    assert counts[populated.dead_reason] == 2 * populated.dead_letters


def test_backtest_reports_carry_metrics(pg_conn: psycopg.Connection[Any]) -> None:
    run = populate(pg_conn, new_run_id("bt"), kind="backtest")
    reports = {r.run.run_id: r for r in queries.backtest_reports(pg_conn)}
    assert reports[run.run_id].metrics["trades"] == run.trades
    assert reports[run.run_id].metrics["net_pnl_rs"] == pytest.approx(95.73)
    assert all(r.run.kind == "backtest" for r in reports.values())


def test_connections_are_read_only(pg_dsn: str, populated: Populated) -> None:
    with queries.connect_readonly(pg_dsn) as conn:
        assert queries.list_runs(conn)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM fills WHERE run_id = %s", (populated.run_id,))
    pool = queries.open_pool(pg_dsn)
    try:
        with pool.connection() as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE runs SET note = 'x' WHERE run_id = %s", (populated.run_id,))
    finally:
        pool.close()


def test_unreachable_database_is_a_clear_error() -> None:
    dsn = "postgresql://someone:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(queries.MonitorDatabaseError, match="cannot connect") as info:
        queries.open_pool(dsn)
    assert "s3cret" not in str(info.value)
    assert "port=1" in str(info.value)
