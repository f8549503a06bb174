"""PostgresSink against a real PostgreSQL: same rows as row-by-row upserts, idempotent reruns,
epoch ends and close wait for the commit, and failures surface as DatabaseError."""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import bytewax.operators as op
import msgspec
import psycopg
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main, run_main

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.postgres.db import DatabaseError
from connectors.postgres.sink import PgOutageError, PostgresSink, RetryPolicy, db_key, write_events
from operators.events import Bar, DeadLetter, Instrument, OptionAnalytics, RiskEvent
from operators.options.chain import ChainLogic
from operators.stages.market import MarketLogic, MarketState
from tests import both_modes

pg_dsn = both_modes.pg_dsn  # plain and TimescaleDB, see tests/both_modes.py
pg_conn = both_modes.pg_conn

TABLES = {
    "candles": "token, interval, ts, open, high, low, close, volume, vwap, ticks",
    "indicators": "token, interval, ts, values",
    "option_analytics": (
        "token, ts, underlying, price, forward, iv, delta, gamma, theta, vega, iv_percentile"
    ),
    "risk_events": "ts, account, kind, detail, strategy, instrument",
}


@pytest.fixture(scope="module")
def events() -> list[Any]:
    """Real bars and option analytics of a short synthetic session, plus re-emissions.

    A bar and an analytics event are emitted again with other values later in the stream
    (a window emitted twice): the later one must win, as with sequential upserts.
    """
    market = SyntheticMarket(
        SyntheticConfig(seed=5, date=date(2026, 7, 7), duration_minutes=3, strikes_each_side=2)
    )
    instruments = {i.token: i for i in market.instruments()}
    logic, chain = MarketLogic(), ChainLogic("NIFTY")
    states: dict[str, MarketState] = {}
    out: list[Any] = []
    for tick in market.ticks():
        state = states.setdefault(tick.token, MarketState())
        out.extend(e for e in logic.on_tick(state, tick) if isinstance(e, Bar))
        out.extend(a for a in chain.on_tick(tick, instruments[tick.token]) if a.iv is not None)
    bar = next(e for e in out if isinstance(e, Bar))
    again = msgspec.structs.replace(
        bar, candle=msgspec.structs.replace(bar.candle, close=bar.candle.close + 5, ticks=99)
    )
    analytics = next(e for e in out if isinstance(e, OptionAnalytics))
    later = msgspec.structs.replace(
        analytics, ts_event=analytics.ts_event + timedelta(microseconds=1), iv=0.5
    )
    risk = RiskEvent(
        ts_event=bar.ts_event, ts_recv=bar.ts_recv, account="paper", kind="HALT", detail="t"
    )
    mid = len(out) // 2
    return [*out[:mid], again, later, risk, *out[mid:], again, later]


DEAD_DSN = "postgresql://nobody@127.0.0.1:1/none"
NO_RETRY = RetryPolicy(budget_s=0)


def run_id() -> str:
    return f"sink_{uuid.uuid4().hex[:8]}"


def table_rows(conn: psycopg.Connection[Any], run: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t: conn.execute(
            f"SELECT {cols} FROM {t} WHERE run_id = %s ORDER BY {cols}", (run,)
        ).fetchall()
        for t, cols in TABLES.items()
    }


def write_through_sink(dsn: str, run: str, events: list[Any], batch: int = 97) -> int:
    part = PostgresSink(dsn, run).build_part("pg", "0", None)
    for k in range(0, len(events), batch):
        part.write_batch(events[k : k + batch])
        if k % (batch * 5) == 0:
            part.snapshot()
    part.close()
    return part.rows


def test_sink_writes_the_rows_of_row_by_row_upserts(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], events: list[Any]
) -> None:
    reference, run = run_id(), run_id()
    expected_rows = write_events(pg_conn, reference, events, bulk=False)
    assert write_through_sink(pg_dsn, run, events) == expected_rows
    want, got = table_rows(pg_conn, reference), table_rows(pg_conn, run)
    assert got == want
    bars = {(e.candle.token, e.candle.interval, e.candle.start) for e in events if type(e) is Bar}
    assert len(got["candles"]) == len(got["indicators"]) == len(bars) > 100
    assert len(got["option_analytics"]) > 100
    assert len(got["risk_events"]) == 1
    # the later emission of a re-emitted window won
    again = next(e for e in reversed(events) if type(e) is Bar)
    close = pg_conn.execute(
        "SELECT close, ticks FROM candles"
        " WHERE run_id = %s AND token = %s AND interval = %s AND ts = %s",
        (run, again.candle.token, again.candle.interval, again.candle.start),
    ).fetchone()
    assert close == (Decimal(again.candle.close) / 100, 99)
    later = next(e for e in reversed(events) if type(e) is OptionAnalytics)
    iv = pg_conn.execute(
        "SELECT iv FROM option_analytics WHERE run_id = %s AND token = %s AND ts = %s",
        (run, later.token, later.ts_event.replace(microsecond=0)),
    ).fetchone()
    assert iv == (0.5,)


def test_rerun_of_the_same_events_leaves_the_tables_unchanged(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], events: list[Any]
) -> None:
    run = run_id()
    write_through_sink(pg_dsn, run, events, batch=500)
    first = table_rows(pg_conn, run)
    write_through_sink(pg_dsn, run, events, batch=31)
    assert table_rows(pg_conn, run) == first
    assert len(first["candles"]) > 100


def count(conn: psycopg.Connection[Any], run: str) -> int:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM candles WHERE run_id = %(r)s)"
        " + (SELECT count(*) FROM option_analytics WHERE run_id = %(r)s)",
        {"r": run},
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_snapshot_and_close_return_only_after_the_commit(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], events: list[Any]
) -> None:
    run = run_id()
    market = [e for e in events if type(e) in (Bar, OptionAnalytics)]
    first, second = market[: len(market) // 2], market[len(market) // 2 :]
    part = PostgresSink(pg_dsn, run).build_part("pg", "0", None)
    part.write_batch(first)
    part.snapshot()
    after_snapshot = count(pg_conn, run)
    part.write_batch(second)
    part.close()
    after_close = count(pg_conn, run)
    keys: set[tuple[Any, ...]] = {
        (e.candle.token, e.candle.interval, e.candle.start) for e in first if type(e) is Bar
    }
    keys |= {(e.token, e.ts_event.replace(microsecond=0)) for e in first if type(e) is not Bar}
    assert after_snapshot == len(keys)
    assert after_close == len(table_rows(pg_conn, run)["candles"]) + len(
        table_rows(pg_conn, run)["option_analytics"]
    )
    assert after_close > after_snapshot


def test_unreachable_database_fails_on_snapshot_write_and_close(events: list[Any]) -> None:
    part = PostgresSink(DEAD_DSN, run_id(), NO_RETRY).build_part("pg", "0", None)
    part.write_batch(events[:10])  # handed over; the writer finds out
    with pytest.raises(PgOutageError, match="unreachable for 0 s"):
        part.snapshot()
    with pytest.raises(DatabaseError, match="cannot connect"):
        part.write_batch(events[10:20])
    with pytest.raises(DatabaseError):
        part.close()


def test_rows_refused_for_a_data_reason_become_dead_letters_and_the_rest_is_written(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], events: list[Any]
) -> None:
    """Issue 12: a row PostgreSQL refuses for its content (integer out of range, numeric
    overflow of numeric(14,2), an int beyond bigint, NUL in text) no longer fails the epoch:
    the batch is split down to the refused events, they go to dead_letters with their table and
    error, every other event is committed, and the sink goes on."""
    run = run_id()
    bad_lot = Instrument(
        token=f"TEST-BAD-LOT-{run}", symbol="X", underlying="X", kind="INDEX", exchange="NSE",
        strike=0, expiry=None, lot_size=2**40, tick_size=5,
    )  # fmt: skip
    bar = next(e for e in events if isinstance(e, Bar))
    huge = msgspec.structs.replace(
        bar, candle=msgspec.structs.replace(bar.candle, token=f"huge-{run}", high=10**15)
    )
    beyond_int8 = msgspec.structs.replace(
        bar, candle=msgspec.structs.replace(bar.candle, token=f"vol-{run}", volume=2**63 + 5)
    )
    nul = DeadLetter(
        reason="x\x00y", raw=b"", key=None, source_topic=f"nul-{run}", source_partition=0,
        source_offset=0,
    )  # fmt: skip
    good = events[:50]
    part = PostgresSink(pg_dsn, run).build_part("pg", "0", None)
    part.write_batch([*good[:20], bad_lot, huge, *good[20:40], beyond_int8, nul, *good[40:]])
    part.snapshot()  # no error: the epoch completes
    part.write_batch(events[50:60])
    part.close()
    expected = sum(1 for e in events[:60] if isinstance(e, Bar | OptionAnalytics))
    distinct = {
        (e.candle.token, e.candle.interval, e.candle.start) if isinstance(e, Bar) else e
        for e in events[:60]
        if isinstance(e, Bar | OptionAnalytics)
    }
    assert count(pg_conn, run) == len(distinct) <= expected
    rows = pg_conn.execute(
        "SELECT source_topic, reason, convert_from(raw, 'UTF8') FROM dead_letters"
        " WHERE convert_from(raw, 'UTF8') LIKE %s ORDER BY 1",
        (f"%{run}%",),
    ).fetchall()
    by_topic = {topic: (reason, raw) for topic, reason, raw in rows}
    assert set(by_topic) == {"sink:candles,indicators", "sink:instruments", "sink:dead_letters"}
    assert len(rows) == 4  # two bars, an instrument, a dead letter
    reasons = [reason for _topic, reason, _raw in rows]
    assert any("22003" in r and "instruments" in r for r in reasons)  # integer out of range
    assert any("numeric field overflow" in r for r in reasons)
    assert all(r.startswith("SINK_REJECTED: ") for r in reasons)
    runs = pg_conn.execute(
        "SELECT DISTINCT run_id FROM dead_letters WHERE convert_from(raw, 'UTF8') LIKE %s",
        (f"%{run}%",),
    ).fetchall()
    assert runs == [(run,)]  # pg_rejects writes through the run's sink
    assert pg_conn.execute(
        "SELECT count(*) FROM instruments WHERE token = %s", (bad_lot.token,)
    ).fetchone() == (0,)


def test_two_runs_late_tick_letters_of_the_same_key_are_both_kept(
    pg_conn: psycopg.Connection[Any],
) -> None:
    """dead_letters is keyed by run too (migration 011): a late tick's letter has a natural
    key without the run (``late-<interval>:<token>``, -1, event time), and a second run over
    the same instruments used to overwrite the first run's row; the rejected rows also name
    their run."""
    first, second = run_id(), run_id()
    letter = DeadLetter(
        reason="LATE_TICK: 1s", raw=b"{}", key=b"T", source_topic=f"late-1s:T-{first}",
        source_partition=-1, source_offset=1_783_400_000_000_000,
    )  # fmt: skip
    write_events(pg_conn, first, [letter])
    write_events(pg_conn, second, [msgspec.structs.replace(letter, reason="LATE_TICK: again")])
    write_events(pg_conn, second, [msgspec.structs.replace(letter, reason="LATE_TICK: 1s")])
    rows = pg_conn.execute(
        "SELECT run_id, reason FROM dead_letters WHERE source_topic = %s ORDER BY 1",
        (letter.source_topic,),
    ).fetchall()
    assert sorted(rows) == sorted([(first, "LATE_TICK: 1s"), (second, "LATE_TICK: 1s")])


def test_unknown_event_type_is_reported_by_close(pg_dsn: str) -> None:
    part = PostgresSink(pg_dsn, run_id()).build_part("pg", "0", None)
    part.write_batch([object()])
    with pytest.raises(DatabaseError, match="no table for object"):
        part.close()


def write_one_by_one(part: Any, events: list[Any]) -> None:
    for event in events:
        part.write_batch([event])


def test_a_failed_writer_never_blocks_the_flow_thread(events: list[Any]) -> None:
    """With a tiny queue bound and a dead database, writes fail instead of waiting forever."""
    sink = PostgresSink(DEAD_DSN, run_id(), NO_RETRY, max_pending=1)
    part = sink.build_part("pg", "0", None)
    with pytest.raises(DatabaseError):
        write_one_by_one(part, events[:100])
    with pytest.raises(DatabaseError):
        part.close()


def flow(events: list[Any], sink: PostgresSink) -> Dataflow:
    flow = Dataflow("pg_sink_test")
    items = op.input("in", flow, TestingSource(events, batch_size=64))
    op.output("postgres", op.key_on("db_keyed", items, db_key), sink)
    return flow


@pytest.mark.parametrize("workers", [1, 2])
def test_in_a_dataflow_every_row_is_committed_when_the_run_ends(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], events: list[Any], workers: int
) -> None:
    reference, run = run_id(), run_id()
    write_events(pg_conn, reference, events, bulk=False)
    sink = PostgresSink(pg_dsn, run, partitions=workers)
    if workers == 1:
        run_main(flow(events, sink), epoch_interval=timedelta(milliseconds=50))
    else:
        cluster_main(
            flow(events, sink), [], 0, worker_count_per_proc=workers,
            epoch_interval=timedelta(milliseconds=50),
        )  # fmt: skip
    assert table_rows(pg_conn, run) == table_rows(pg_conn, reference)


def test_db_key_routes_by_instrument_token(events: list[Any]) -> None:
    bar = next(e for e in events if type(e) is Bar)
    analytics = next(e for e in events if type(e) is OptionAnalytics)
    assert db_key(bar) == bar.candle.token
    assert db_key(analytics) == analytics.token
    assert db_key(DeadLetter(reason="r", raw=b"x")) == ""


def test_retry_policy_backs_off_exponentially_up_to_its_cap() -> None:
    policy = RetryPolicy(budget_s=60, first_delay_s=0.5, max_delay_s=10)
    assert [policy.delay(n) for n in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(first_delay_s=5, max_delay_s=1)


def test_an_outage_longer_than_the_budget_stops_with_a_clear_error(events: list[Any]) -> None:
    """The writer keeps retrying (the flow thread waits in snapshot) until the budget is
    spent, then names the budget and the setting that controls it."""
    retry = RetryPolicy(budget_s=1.0, first_delay_s=0.1, max_delay_s=0.2)
    waited: list[float] = []
    part = PostgresSink(DEAD_DSN, run_id(), retry, on_wait=waited.append).build_part(
        "pg", "0", None
    )
    part.write_batch(events[:10])
    with pytest.raises(PgOutageError, match="SCALPFLOW_PG_RETRY_BUDGET_S") as info:
        part.snapshot()
    assert "stopping" in str(info.value)
    assert "cannot connect" in str(info.value)
    assert waited
    assert waited[-1] >= retry.budget_s  # the flow thread was held for the whole budget
    with pytest.raises(PgOutageError):
        part.close()


def wait_written(part: Any) -> None:
    while part._writer.written == 0 and part._writer._error is None:
        threading.Event().wait(0.01)


def test_an_epoch_is_invisible_until_its_end_then_visible_in_every_table(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], events: list[Any]
) -> None:
    run = run_id()
    part = PostgresSink(pg_dsn, run).build_part("pg", "0", None)
    part.write_batch(events)
    wait_written(part)  # written by the server, in the epoch's open transaction
    assert part._writer.written > 0
    assert count(pg_conn, run) == 0
    assert not any(table_rows(pg_conn, run).values())
    part.snapshot()
    reference = run_id()
    write_events(pg_conn, reference, events, bulk=False)
    assert table_rows(pg_conn, run) == table_rows(pg_conn, reference)
    part.close()


def test_a_connection_lost_mid_epoch_is_rebuilt_and_the_epoch_written_again(
    pg_dsn: str, pg_conn: psycopg.Connection[Any], events: list[Any]
) -> None:
    """The server ends the writer's session between two chunks of one epoch (as a restart
    does): the writer reconnects, writes the first chunk again and commits both."""
    run = run_id()
    part = PostgresSink(pg_dsn, run).build_part("pg", "0", None)
    half = len(events) // 2
    part.write_batch(events[:half])
    wait_written(part)
    killed = pg_conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND state = 'idle in transaction'"
    ).fetchall()
    assert killed == [(True,)]
    part.write_batch(events[half:])
    part.snapshot()
    reference = run_id()
    write_events(pg_conn, reference, events, bulk=False)
    assert table_rows(pg_conn, run) == table_rows(pg_conn, reference)
    part.close()
