"""Fixtures for a test module that must hold on plain PostgreSQL and on TimescaleDB alike.

Import them into the module (``from tests.both_modes import pg_conn, pg_dsn``): they shadow
the session's ``pg_dsn``/``pg_conn`` there with the mode-parametrized ones of tests/conftest.py.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest


@pytest.fixture(scope="module")
def pg_dsn(mode_pg_dsn: str) -> str:
    """Every test of the importing module runs against a plain and a TimescaleDB server."""
    return mode_pg_dsn


@pytest.fixture(scope="module")
def pg_conn(mode_pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    return mode_pg_conn
