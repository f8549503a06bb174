"""What scalpflow asks of TimescaleDB, when the server has it: hypertables, compression,
retention and the continuous aggregates of 1-second candles.

``connectors.postgres.db.migrate`` decides the mode (see ``server_support``) and calls ``prepare``
on every start; every statement here is idempotent, and policies are replaced each time so a
changed setting takes effect. Without the extension the same tables stay plain tables (the
schema itself is the numbered migrations, identical in both modes).

Chunks are one UTC day for the dense tables: an NSE session (09:15-15:30 IST, 03:45-10:00 UTC)
never straddles a chunk boundary, so a session is one chunk to compress, drop or scan. The
sparse tables (fills, risk events, regimes: hundreds of rows a day) use a trading week.

Policies run on the server's wall clock, while a backtest writes past sessions' market time:
compression is harmless to them (reads and upserts see compressed rows as before), but a
retention policy would drop a replayed July session the day it is written. Retention is
therefore off unless configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

DENSE_TABLES: tuple[str, ...] = ("ticks", "candles", "indicators", "option_analytics")
SPARSE_TABLES: tuple[str, ...] = ("fills", "risk_events", "regimes")
HYPERTABLES: tuple[str, ...] = DENSE_TABLES + SPARSE_TABLES

# Compression of the dense tables: a segment is one instrument's series (with every other
# natural-key column that is not time, which compression requires), ordered by time.
SEGMENT_BY: dict[str, str] = {
    "ticks": "token",
    "candles": "token, interval, run_id",
    "indicators": "token, interval, run_id",
    "option_analytics": "token, run_id",
}
ORDER_BY: dict[str, str] = {"ticks": "ts, seq"}

# Continuous aggregates of the 1-second candles: name -> bucket, and which candle interval
# each serves (dashboards.queries reads history from them when they exist).
AGGREGATES: dict[str, str] = {"candles_1m_agg": "1 minute", "candles_5m_agg": "5 minutes"}
AGGREGATE_FOR_INTERVAL: dict[str, str] = {"1m": "candles_1m_agg", "5m": "candles_5m_agg"}

_AGGREGATE_SQL = """
CREATE MATERIALIZED VIEW IF NOT EXISTS {name}
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT run_id, token, time_bucket(INTERVAL '{bucket}', ts) AS ts,
       first(open, ts) AS open, max(high) AS high, min(low) AS low, last(close, ts) AS close,
       sum(volume)::bigint AS volume,
       coalesce(sum(vwap * volume) / nullif(sum(volume), 0), last(close, ts)::float8) AS vwap,
       sum(ticks)::integer AS ticks
  FROM candles
 WHERE interval = '1s'
 GROUP BY run_id, token, time_bucket(INTERVAL '{bucket}', ts)
WITH NO DATA"""

# Retention of the 1-second candles: they share the candles hypertable with the 1-minute
# ones, so a chunk-dropping retention policy cannot be used; a job deletes the old 1 s rows.
_DROP_1S_PROC = """
CREATE OR REPLACE PROCEDURE scalpflow_drop_1s_candles(job_id integer, config jsonb)
LANGUAGE sql AS $$
  DELETE FROM candles WHERE interval = '1s' AND ts < now() - (config ->> 'drop_after')::interval
$$"""


class TimescalePolicy(BaseSettings):
    """Chunking, compression and retention; every field is ``SCALPFLOW_TIMESCALE_<NAME>``
    (PostgreSQL interval text; an empty value turns a policy off)."""

    model_config = SettingsConfigDict(env_prefix="SCALPFLOW_TIMESCALE_", frozen=True)

    chunk_interval: str = "1 day"
    sparse_chunk_interval: str = "7 days"
    compress_after: str = "7 days"
    ticks_retention: str = ""
    candles_1s_retention: str = ""


@dataclass(frozen=True)
class Support:
    """Whether migrations can use TimescaleDB on this server, and one line saying why."""

    usable: bool
    reason: str


def server_support(conn: psycopg.Connection) -> Support:
    """Ask the catalog before ``CREATE EXTENSION``: with the files installed but the library
    not preloaded, ``CREATE EXTENSION timescaledb`` ends the session (FATAL), not just the
    statement."""
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        return Support(False, "the timescaledb extension is not installed on this server")
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if preload is None or "timescaledb" not in str(preload[0]):
        return Support(
            False,
            f"timescaledb {row[0]} is installed but not in shared_preload_libraries"
            " (add it and restart the server to use it)",
        )
    return Support(True, f"timescaledb {row[0]} is installed and preloaded")


def create_extension(conn: psycopg.Connection) -> str:
    """Create (or keep) the extension; returns its version."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    return str(row.fetchone()[0])  # type: ignore[index]


def prepare(conn: psycopg.Connection, policy: TimescalePolicy) -> None:
    """Hypertables, compression, policies and aggregates; idempotent (autocommit ``conn``:
    continuous aggregates cannot be created inside a transaction)."""
    for table in HYPERTABLES:
        interval = policy.chunk_interval if table in DENSE_TABLES else policy.sparse_chunk_interval
        conn.execute(
            "SELECT create_hypertable(%s, by_range('ts', %s::interval),"
            " if_not_exists => TRUE, migrate_data => TRUE)",
            (table, interval),
        )
        conn.execute("SELECT set_chunk_time_interval(%s, %s::interval)", (table, interval))
    enabled = {
        r[0]
        for r in conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
            " WHERE compression_enabled"
        )
    }
    for table, segment_by in SEGMENT_BY.items():
        if table not in enabled:
            conn.execute(
                f"ALTER TABLE {table} SET (timescaledb.compress,"
                f" timescaledb.compress_segmentby = '{segment_by}',"
                f" timescaledb.compress_orderby = '{ORDER_BY.get(table, 'ts')}')"
            )
        conn.execute("SELECT remove_compression_policy(%s, if_exists => TRUE)", (table,))
        if policy.compress_after:
            conn.execute(
                "SELECT add_compression_policy(%s, compress_after => %s::interval)",
                (table, policy.compress_after),
            )
    conn.execute("SELECT remove_retention_policy('ticks', if_exists => TRUE)")
    if policy.ticks_retention:
        conn.execute(
            "SELECT add_retention_policy('ticks', drop_after => %s::interval)",
            (policy.ticks_retention,),
        )
    conn.execute(_DROP_1S_PROC)
    conn.execute(
        "SELECT delete_job(job_id) FROM timescaledb_information.jobs"
        " WHERE proc_name = 'scalpflow_drop_1s_candles'"
    )
    if policy.candles_1s_retention:
        conn.execute(
            "SELECT add_job('scalpflow_drop_1s_candles', INTERVAL '1 hour',"
            " config => jsonb_build_object('drop_after', %s::interval::text))",
            (policy.candles_1s_retention,),
        )
    for name, bucket in AGGREGATES.items():
        conn.execute(_AGGREGATE_SQL.format(name=name, bucket=bucket))
        conn.execute("SELECT remove_continuous_aggregate_policy(%s, if_exists => TRUE)", (name,))
        # Refreshing a range whose 1 s rows were deleted would empty it again: with 1 s
        # retention the policy refreshes only the younger half of the retained window.
        start = policy.candles_1s_retention or None
        conn.execute(
            "SELECT add_continuous_aggregate_policy(%s, start_offset => %s::interval * 0.5,"
            " end_offset => %s::interval, schedule_interval => INTERVAL '1 minute')",
            (name, start, bucket),
        )
