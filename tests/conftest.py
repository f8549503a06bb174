"""Session fixtures for real services: a Kafka broker and a PostgreSQL server.

Both are real (never mocked). The README's test command (scripts/test.sh) starts them and
exports their addresses; run bare `pytest` and these fixtures start them through the same
infra scripts. Each test session gets a fresh database with every migration applied.

PostgreSQL comes in two modes: ``SCALPFLOW_TEST_PG_DSN`` is the suite's server (TimescaleDB
under scripts/test.sh), ``SCALPFLOW_TEST_PLAIN_PG_DSN`` a plain one. Tests that must hold in
both (migrations, sink, monitor queries) use ``mode_pg_dsn``, parametrized by mode.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[1]


def _kafka_answers(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Address of a real Kafka broker, started by infra/kafka/kafka.sh when none answers.

    When the session ends, the topics it created (named by ``tests.topics.topic_name``) are
    deleted, so runs do not pile topics up on a developer's broker.
    """
    bootstrap = os.environ.get("SCALPFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    if not _kafka_answers(bootstrap):
        subprocess.run([str(REPO / "infra/kafka/kafka.sh"), "start"], check=True)
    assert _kafka_answers(bootstrap), f"Kafka at {bootstrap} does not answer"
    yield bootstrap
    _delete_session_topics(bootstrap)


def _delete_session_topics(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient

    from tests.topics import SESSION_TAG

    admin = AdminClient({"bootstrap.servers": bootstrap})
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(SESSION_TAG)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result()


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    """DSN of a real PostgreSQL server (SCALPFLOW_TEST_PG_DSN, else infra/postgres/pg.sh)."""
    dsn = os.environ.get("SCALPFLOW_TEST_PG_DSN")
    if not dsn:
        out = subprocess.run(
            [str(REPO / "infra/postgres/pg.sh"), "start"],
            check=True,
            capture_output=True,
            text=True,
        )
        dsn = out.stdout.strip().splitlines()[-1]
    return dsn


PG_MODES = ("plain", "timescaledb")
TIMESCALEDB_TEST_PORT = int(os.environ.get("SCALPFLOW_TEST_TSDB_PORT", "54339"))


def server_mode(dsn: str) -> str:
    """``timescaledb`` when migrations would use the extension on this server, else ``plain``."""
    from connectors.postgres.timescale import server_support

    with psycopg.connect(dsn, autocommit=True) as conn:
        return "timescaledb" if server_support(conn).usable else "plain"


@functools.cache
def server_for(mode: str) -> str:
    """A server of ``mode``: whichever of the two test DSNs is one, else started by pg.sh
    (plain on its default port, TimescaleDB on SCALPFLOW_TEST_TSDB_PORT, built once)."""
    for var in ("SCALPFLOW_TEST_PG_DSN", "SCALPFLOW_TEST_PLAIN_PG_DSN"):
        dsn = os.environ.get(var)
        if dsn and server_mode(dsn) == mode:
            return dsn
    env = dict(os.environ)
    if mode == "timescaledb":
        env |= {"PG_PORT": str(TIMESCALEDB_TEST_PORT), "SCALPFLOW_PG_TIMESCALEDB": "1"}
    out = subprocess.run(
        [str(REPO / "infra/postgres/pg.sh"), "start"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    dsn = out.stdout.strip().splitlines()[-1]
    assert server_mode(dsn) == mode, f"the server pg.sh started at {dsn} is not {mode}"
    return dsn


@pytest.fixture(scope="module", params=PG_MODES)
def mode_pg_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated database per module, once on a plain and once on a TimescaleDB server;
    a module overrides ``pg_dsn`` with it to run in both modes."""
    with fresh_database(server_for(request.param), f"scalpflow_{request.param[:5]}") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def mode_pg_conn(mode_pg_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(mode_pg_dsn, autocommit=True) as conn:
        yield conn


@contextmanager
def fresh_database(server_dsn: str, prefix: str = "scalpflow_test") -> Iterator[str]:
    """A new database on the server with every migration applied; dropped afterwards."""
    from connectors.postgres.db import scratch_database

    with scratch_database(server_dsn, prefix) as dsn:
        yield dsn


def database_fixtures(
    prefix: str, scope: Literal["session", "package", "module"], name: str = "pg"
) -> tuple[Any, Any]:
    """The fixtures ``<name>_dsn`` (a fresh database named after ``prefix``, every migration
    applied, dropped afterwards) and ``<name>_conn`` (an autocommit connection to it), once per
    ``scope``: a package or module that wants a database of its own assigns the pair."""

    @pytest.fixture(scope=scope, name=f"{name}_dsn")
    def dsn(pg_server_dsn: str) -> Iterator[str]:
        with fresh_database(pg_server_dsn, prefix) as out:
            yield out

    @pytest.fixture(scope=scope, name=f"{name}_conn")
    def conn(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection]:
        with psycopg.connect(request.getfixturevalue(f"{name}_dsn"), autocommit=True) as out:
            yield out

    return dsn, conn


# The test session's database and connection.
pg_dsn, pg_conn = database_fixtures("scalpflow_test", "session")
