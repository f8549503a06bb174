"""Migrations in both storage modes, and what TimescaleDB adds, against real servers: the
hypertables and policies exist, a compressed day reads back identical and takes upserts,
the continuous aggregate equals the flow's own 1-minute candles, retention drops what it
should. A server with the extension's files but no preload stays usable (plain mode)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from connectors.postgres.db import DatabaseError, migrate, scratch_database
from connectors.postgres.sink import write_events
from connectors.postgres.timescale import AGGREGATES, HYPERTABLES, SEGMENT_BY, TimescalePolicy
from operators.events import Bar
from operators.stages.market import MarketLogic, MarketState
from tests.conftest import REPO, server_for
from tests.markets import synthetic_market

pytestmark = pytest.mark.postgres

CANDLE_COLUMNS = "token, interval, ts, open, high, low, close, volume, vwap, ticks"


def columns(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every column and primary key of the public tables (views and internals excluded)."""
    return conn.execute(
        """
        SELECT c.table_name, c.column_name, c.data_type, c.is_nullable,
               (SELECT array_agg(a.attname ORDER BY a.attname)
                  FROM pg_index i JOIN pg_attribute a
                    ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                 WHERE i.indrelid = (quote_ident(c.table_name))::regclass AND i.indisprimary)
          FROM information_schema.columns c
          JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
         ORDER BY 1, 2
        """
    ).fetchall()


def bars_of_session(minutes: int | None, strikes: int, rate: float) -> list[Bar]:
    """The market stage's 1 s and 1 m bars (with indicators) of a synthetic session."""
    market = synthetic_market(11, minutes=minutes, strikes=strikes, rate=rate)
    logic = MarketLogic()
    states: dict[str, MarketState] = {}
    bars: list[Bar] = []
    last = None
    for tick in market.ticks():
        state = states.setdefault(tick.token, MarketState())
        bars.extend(e for e in logic.on_tick(state, tick) if isinstance(e, Bar))
        last = tick.ts_recv
    assert last is not None
    for token, state in states.items():
        bars.extend(logic.on_eof(state, last))
        assert state.candles.late_ticks == 0, token  # no late tick: 1 s and 1 m see the same
    return bars


@pytest.fixture(scope="module")
def tsdb_dsn() -> Iterator[str]:
    with scratch_database(server_for("timescaledb"), "scalpflow_tsdb") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def tsdb(tsdb_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(tsdb_dsn, autocommit=True) as conn:
        yield conn


def test_both_modes_have_the_same_schema_and_say_which_they_are() -> None:
    got: dict[str, list[tuple[Any, ...]]] = {}
    for mode in ("plain", "timescaledb"):
        with scratch_database(server_for(mode), f"scalpflow_mig_{mode[:5]}") as dsn:
            again = migrate(dsn)  # the second start: nothing to apply, same mode
            assert again.applied == ()
            assert again.mode == mode
            with psycopg.connect(dsn) as conn:
                got[mode] = columns(conn)
                ext = conn.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                ).fetchone()
            if mode == "timescaledb":
                assert ext is not None
                assert again.detail.startswith(f"TimescaleDB {ext[0]}: hypertables")
            else:
                assert ext is None
                assert again.detail.startswith("plain PostgreSQL tables: ")
    assert got["plain"] == got["timescaledb"]
    assert ("fills", "ts", "timestamp with time zone", "NO", ["fill_id", "run_id", "ts"]) in got[
        "plain"
    ]


def test_timescaledb_layout(tsdb: psycopg.Connection[Any]) -> None:
    dims = dict(
        tsdb.execute(
            "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions"
            " WHERE column_name = 'ts' AND hypertable_schema = 'public'"
        ).fetchall()
    )
    assert set(dims) == set(HYPERTABLES)
    assert dims["candles"] == dims["ticks"] == timedelta(days=1)
    assert dims["fills"] == dims["risk_events"] == timedelta(days=7)
    segments = {
        (r[0], r[1])
        for r in tsdb.execute(
            "SELECT hypertable_name, attname FROM timescaledb_information.compression_settings"
            " WHERE segmentby_column_index IS NOT NULL"
        )
    }
    assert {(t, c.strip()) for t, cols in SEGMENT_BY.items() for c in cols.split(",")} == segments
    jobs = {
        (r[0], r[1])
        for r in tsdb.execute(
            "SELECT proc_name, coalesce(hypertable_name, '') FROM timescaledb_information.jobs"
        )
    }
    compression = {("policy_compression", t) for t in SEGMENT_BY}
    assert compression <= jobs
    assert not any(p in ("policy_retention", "scalpflow_drop_1s_candles") for p, _ in jobs)
    views = {
        r[0]
        for r in tsdb.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates")
    }
    assert views == set(AGGREGATES)


def test_a_compressed_day_reads_back_identical_and_takes_upserts(
    tsdb: psycopg.Connection[Any],
) -> None:
    run = "compress-day"
    bars = bars_of_session(None, 0, 0.3)  # a full session: index + ATM CE/PE
    assert write_events(tsdb, run, bars) == 2 * len(bars)
    select = f"SELECT {CANDLE_COLUMNS} FROM candles WHERE run_id = %s ORDER BY {CANDLE_COLUMNS}"
    before = tsdb.execute(select, (run,)).fetchall()
    indicators = (
        "SELECT token, interval, ts, values FROM indicators WHERE run_id = %s ORDER BY 1, 2, 3"
    )
    before_ind = tsdb.execute(indicators, (run,)).fetchall()
    assert len(before) > 20_000
    for table in ("candles", "indicators"):
        chunks = tsdb.execute(
            "SELECT compress_chunk(c, if_not_compressed => TRUE) FROM show_chunks(%s) c", (table,)
        ).fetchall()
        assert len(chunks) == 1  # one session, one UTC-day chunk
    stats = tsdb.execute(
        "SELECT before_compression_total_bytes, after_compression_total_bytes"
        " FROM hypertable_compression_stats('candles')"
    ).fetchone()
    assert stats is not None
    assert stats[1] < stats[0] / 3
    assert tsdb.execute(select, (run,)).fetchall() == before
    assert tsdb.execute(indicators, (run,)).fetchall() == before_ind
    # Bytewax redelivers an epoch: the same upserts into compressed chunks change nothing.
    write_events(tsdb, run, bars[: len(bars) // 2])
    assert tsdb.execute(select, (run,)).fetchall() == before
    assert tsdb.execute(indicators, (run,)).fetchall() == before_ind


def test_the_aggregate_equals_the_flows_own_one_minute_candles(
    tsdb: psycopg.Connection[Any],
) -> None:
    run = "aggregate"
    bars = bars_of_session(20, 1, 0.5)
    write_events(tsdb, run, bars)
    flow = tsdb.execute(
        "SELECT token, ts, open, high, low, close, volume, ticks, vwap FROM candles"
        " WHERE run_id = %s AND interval = '1m' ORDER BY token, ts",
        (run,),
    ).fetchall()
    assert len(flow) > 100
    aggregate = (
        "SELECT token, ts, open, high, low, close, volume, ticks, vwap FROM candles_1m_agg"
        " WHERE run_id = %s ORDER BY token, ts"
    )

    def same(rows: list[tuple[Any, ...]]) -> None:
        assert [r[:8] for r in rows] == [r[:8] for r in flow]
        for got, want in zip(rows, flow, strict=True):
            assert got[8] == pytest.approx(want[8], rel=1e-12), got[:2]

    same(tsdb.execute(aggregate, (run,)).fetchall())  # real time: not materialized yet
    tsdb.execute("CALL refresh_continuous_aggregate('candles_1m_agg', NULL, NULL)")
    same(tsdb.execute(aggregate, (run,)).fetchall())  # materialized
    five = tsdb.execute(
        "SELECT sum(volume), count(*) FROM candles_5m_agg WHERE run_id = %s", (run,)
    ).fetchone()
    assert five is not None
    assert five[0] == sum(r[6] for r in flow)
    assert five[1] == len({(r[0], r[1].replace(minute=r[1].minute // 5 * 5)) for r in flow})


def test_configured_retention_drops_old_ticks_and_1s_candles_only() -> None:
    policy = TimescalePolicy(ticks_retention="3 days", candles_1s_retention="3 days")
    with scratch_database(server_for("timescaledb"), "scalpflow_ret") as dsn:
        info = migrate(dsn, policy=policy)
        assert info.mode == "timescaledb"
        now = datetime.now(UTC).replace(microsecond=0)
        old, new = now - timedelta(days=10), now - timedelta(hours=1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for ts in (old, new):
                conn.execute(
                    "INSERT INTO ticks (token, ts, exchange, ltp) VALUES ('1', %s, 'NSE', 100)",
                    (ts,),
                )
                for interval in ("1s", "1m"):
                    conn.execute(
                        "INSERT INTO candles (run_id, token, interval, ts, open, high, low,"
                        " close, volume) VALUES ('r', '1', %s, %s, 1, 1, 1, 1, 1)",
                        (interval, ts),
                    )
            jobs = conn.execute(
                "SELECT job_id FROM timescaledb_information.jobs"
                " WHERE proc_name IN ('policy_retention', 'scalpflow_drop_1s_candles')"
            ).fetchall()
            assert len(jobs) == 2
            for (job,) in jobs:
                conn.execute("CALL run_job(%s)", (job,))
            assert conn.execute("SELECT ts FROM ticks").fetchall() == [(new,)]
            assert sorted(conn.execute("SELECT interval, ts FROM candles").fetchall()) == [
                ("1m", old),
                ("1m", new),
                ("1s", new),
            ]
        # Turning the policies off again (the default) removes them.
        migrate(dsn)
        with psycopg.connect(dsn) as conn:
            left = conn.execute(
                "SELECT count(*) FROM timescaledb_information.jobs"
                " WHERE proc_name IN ('policy_retention', 'scalpflow_drop_1s_candles')"
            ).fetchone()
            assert left == (0,)


def test_a_bad_policy_setting_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALPFLOW_TIMESCALE_COMPRESS_AFTER", "soon")
    with scratch_database(server_for("plain"), "scalpflow_badpol"):
        pass  # unused without the extension
    with pytest.raises(DatabaseError, match=r"migrating the database failed: .*soon"):
        with scratch_database(server_for("timescaledb"), "scalpflow_badpol"):
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def unpreloaded_server() -> Iterator[str]:
    """A private server whose tree has TimescaleDB's files, not preloaded (port of its own)."""
    root = tempfile.mkdtemp(prefix="scalpflow-pg-", dir="/var/tmp")
    os.chmod(root, 0o755)  # the server runs as the postgres user when we are root
    env = os.environ | {
        "PG_PORT": str(_free_port()),
        "SCALPFLOW_PG_ROOT": root,
        "SCALPFLOW_PG_TIMESCALEDB": "installed",
    }
    script = str(REPO / "infra/postgres/pg.sh")
    try:
        out = subprocess.run([script, "start"], env=env, check=True, capture_output=True, text=True)
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop"], env=env, check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_installed_but_not_preloaded_is_plain_mode_not_a_dead_session(
    unpreloaded_server: str,
) -> None:
    # What the check avoids: on this server CREATE EXTENSION ends the session (FATAL).
    with psycopg.connect(unpreloaded_server, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="must be preloaded"):
            conn.execute("CREATE EXTENSION timescaledb")
        assert conn.broken
        with pytest.raises(psycopg.OperationalError, match="the connection is closed"):
            conn.execute("SELECT 1")
    with scratch_database(unpreloaded_server, "scalpflow_nopre") as dsn:
        info = migrate(dsn)
    assert info.mode == "plain"
    assert "installed but not in shared_preload_libraries" in info.detail
