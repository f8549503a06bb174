"""PostgreSQL/TimescaleDB access: connections, versioned migrations, storage mode.

Migrations are the numbered ``.sql`` files in ``infra/postgres/migrations``; each is applied
once, in order, inside a transaction, and recorded in ``schema_migrations``. TimescaleDB is
used when ``CREATE EXTENSION timescaledb`` succeeds: the time-series tables then become
hypertables; otherwise they stay plain tables with time indexes. The mode is logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "infra" / "postgres" / "migrations"

StorageMode = Literal["timescaledb", "plain"]

# (table, time column) pairs that become hypertables under TimescaleDB, or get a time index.
TIME_SERIES_TABLES: tuple[tuple[str, str], ...] = (
    ("candles", "ts"),
    ("indicators", "ts"),
    ("option_analytics", "ts"),
    ("regimes", "ts"),
    ("risk_events", "ts"),
)


class DatabaseError(RuntimeError):
    """The database could not be reached or prepared; the message says what to do."""


@dataclass(frozen=True)
class SchemaInfo:
    mode: StorageMode
    applied: tuple[str, ...]


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection:
    """Open a connection, turning driver errors into one clear message (the DSN is not shown)."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        msg = f"cannot connect to PostgreSQL ({_redact(dsn)}): {exc}".strip()
        raise DatabaseError(msg) from exc


def _redact(dsn: str) -> str:
    """Hide a password in a URI DSN so it never reaches logs or exceptions."""
    if "://" in dsn and "@" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return "dsn"


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.sql") if p.name[:3].isdigit())


def _try_timescale(conn: psycopg.Connection) -> bool:
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        log.info("TimescaleDB not available (%s): using plain tables", str(exc).splitlines()[0])
        return False
    return True


def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> SchemaInfo:
    """Apply pending migrations and set up time-series tables; safe to call on every start."""
    with connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # Serialise concurrent starters (tests, workers) on one advisory lock.
        conn.execute("SELECT pg_advisory_lock(774411)")
        try:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            applied: list[str] = []
            for path in migration_files(directory):
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("INSERT INTO schema_migrations(version) VALUES (%s)", (path.name,))
                applied.append(path.name)
            mode: StorageMode = "timescaledb" if _try_timescale(conn) else "plain"
            _prepare_time_series(conn, mode)
        finally:
            conn.execute("SELECT pg_advisory_unlock(774411)")
    log.info("PostgreSQL storage mode: %s; migrations applied now: %s", mode, applied or "none")
    return SchemaInfo(mode=mode, applied=tuple(applied))


def _prepare_time_series(conn: psycopg.Connection, mode: StorageMode) -> None:
    for table, column in TIME_SERIES_TABLES:
        if mode == "timescaledb":
            conn.execute(
                "SELECT create_hypertable(%s, %s, if_not_exists => TRUE, migrate_data => TRUE)",
                (table, column),
            )
        else:
            conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_{column}_idx ON {table} ({column})")


def storage_mode(dsn: str) -> StorageMode:
    with connect(dsn) as conn:
        row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return "timescaledb" if row else "plain"


def with_dbname(dsn: str, name: str) -> str:
    """The same server and credentials as ``dsn``, another database."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **info)


@contextmanager
def scratch_database(server_dsn: str, prefix: str) -> Iterator[str]:
    """A new database on ``server_dsn``'s server, every migration applied, dropped afterwards
    (also if migrating fails): tests and benchmarks that must start from an empty one."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = with_dbname(server_dsn, name)
        migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
