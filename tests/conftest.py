"""Session fixtures for real services: a Kafka broker and a PostgreSQL server.

Both are real (never mocked). The README's test command (scripts/test.sh) starts them and
exports their addresses; run bare `pytest` and these fixtures start them through the same
infra scripts. Each test session gets a fresh database with every migration applied.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
def kafka_bootstrap() -> str:
    """Address of a real Kafka broker, started by infra/kafka/kafka.sh when none answers."""
    bootstrap = os.environ.get("SCALPFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    if not _kafka_answers(bootstrap):
        subprocess.run([str(REPO / "infra/kafka/kafka.sh"), "start"], check=True)
    assert _kafka_answers(bootstrap), f"Kafka at {bootstrap} does not answer"
    return bootstrap


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


@contextmanager
def fresh_database(server_dsn: str, prefix: str = "scalpflow_test") -> Iterator[str]:
    """A new database on the server with every migration applied; dropped afterwards."""
    from connectors.db import scratch_database

    with scratch_database(server_dsn, prefix) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A fresh database for this test session, every migration applied; dropped afterwards."""
    with fresh_database(pg_server_dsn) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def pg_conn(pg_dsn: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the session's test database."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn
