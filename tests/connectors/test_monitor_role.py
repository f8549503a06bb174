"""Issue 13 item 7: the compose stack's monitor role (infra/postgres/monitor_role.sql) reads
every table, including those the migrations create after it, and writes nothing."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from connectors.postgres.db import scratch_database

pytestmark = pytest.mark.postgres

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "postgres" / "monitor_role.sql"


def _render(text: str, variables: dict[str, str], conn: psycopg.Connection) -> str:
    """psql's ``:"name"`` (identifier) and ``:'name'`` (literal) interpolation."""

    def ident(m: re.Match[str]) -> str:
        return sql.Identifier(variables[m.group(1)]).as_string(conn)

    def literal(m: re.Match[str]) -> str:
        return sql.Literal(variables[m.group(1)]).as_string(conn)

    text = re.sub(r':"(\w+)"', ident, text)
    return re.sub(r":'(\w+)'", literal, text)


def test_monitor_role_reads_but_cannot_write(pg_server_dsn: str) -> None:
    role = f"monitor_{uuid.uuid4().hex[:8]}"
    with scratch_database(pg_server_dsn, "scalpflow_role") as dsn:
        with psycopg.connect(dsn, autocommit=True) as owner:
            info = owner.info
            variables = {"role": role, "password": "pw", "owner": info.user, "db": info.dbname}
            try:
                owner.execute(_render(SCRIPT.read_text(), variables, owner).encode())
                owner.execute("CREATE TABLE made_later (x int)")  # a later migration's table
                owner.execute("INSERT INTO made_later VALUES (1)")
                with psycopg.connect(dsn, user=role, password="pw", autocommit=True) as conn:
                    assert conn.info.user == role
                    assert conn.execute("SELECT count(*) FROM risk_events").fetchone() == (0,)
                    assert conn.execute("SELECT x FROM made_later").fetchone() == (1,)
                    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                        conn.execute("INSERT INTO made_later VALUES (2)")
                    conn.execute("SET default_transaction_read_only = off")
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute("INSERT INTO made_later VALUES (2)")
            finally:
                owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
