"""PostgreSQL/TimescaleDB access: connections, versioned migrations, storage mode.

Migrations are the numbered ``.sql`` files in ``infra/postgres/migrations``; each is applied
once, in order, inside a transaction, and recorded in ``schema_migrations``. TimescaleDB is
used when the server has it installed and preloaded (asked of the catalog first, see
``connectors.postgres.timescale``): the time-series tables then become hypertables with compression,
policies and continuous aggregates; otherwise they stay plain tables with time indexes. The
mode, and why, is logged in one line.
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

from connectors.errors import ConnectorError
from connectors.postgres import timescale

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "infra" / "postgres" / "migrations"

StorageMode = Literal["timescaledb", "plain"]

# Tables that get a time index in plain mode (hypertables under TimescaleDB, see
# connectors.postgres.timescale.HYPERTABLES).
TIME_SERIES_TABLES: tuple[str, ...] = timescale.HYPERTABLES


class DatabaseError(ConnectorError, RuntimeError):
    """The database could not be reached or prepared; the message says what to do."""


@dataclass(frozen=True)
class SchemaInfo:
    mode: StorageMode
    applied: tuple[str, ...]
    detail: str = ""  # one line: the mode and why, e.g. "TimescaleDB 2.28.3: hypertables"


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection:
    """Open a connection, turning driver errors into one clear message (the DSN is not shown)."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        msg = (
            f"cannot connect to PostgreSQL ({redact(dsn)}): {str(exc).strip()}; check"
            " SCALPFLOW_PG_DSN, or start one with `scalpflow infra up`"
        )
        raise DatabaseError(msg) from exc


def redact(dsn: str) -> str:
    """Hide a password in a URI DSN so it never reaches logs or exceptions."""
    if "://" in dsn and "@" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return "dsn"


def describe(dsn: str) -> str:
    """Where a DSN points, for messages: ``user@host:port/dbname`` (never the password)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return redact(dsn)
    host = str(info.get("host") or "localhost")
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    return f"{user}{host}{port}/{info.get('dbname') or ''}"


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.sql") if p.name[:3].isdigit())


def migrate(
    dsn: str,
    directory: Path = MIGRATIONS_DIR,
    policy: timescale.TimescalePolicy | None = None,
) -> SchemaInfo:
    """Apply pending migrations and set up time-series tables; safe to call on every start.

    ``policy`` (TimescaleDB chunking, compression, retention) defaults to the
    ``SCALPFLOW_TIMESCALE_*`` settings.
    """
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
            mode, detail = _prepare_time_series(conn, policy)
        except psycopg.Error as exc:
            msg = f"migrating the database failed: {str(exc).splitlines()[0]}"
            raise DatabaseError(msg) from exc
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(774411)")
    log.info("PostgreSQL storage mode: %s; migrations applied now: %s", detail, applied or "none")
    return SchemaInfo(mode=mode, applied=tuple(applied), detail=detail)


def _prepare_time_series(
    conn: psycopg.Connection, policy: timescale.TimescalePolicy | None
) -> tuple[StorageMode, str]:
    support = timescale.server_support(conn)
    if support.usable:
        version = timescale.create_extension(conn)
        timescale.prepare(conn, policy or timescale.TimescalePolicy())
        return "timescaledb", f"TimescaleDB {version}: hypertables ({support.reason})"
    for table in TIME_SERIES_TABLES:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_ts_idx ON {table} (ts)")
    return "plain", f"plain PostgreSQL tables: {support.reason}"


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
