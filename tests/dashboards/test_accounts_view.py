"""The monitor's accounts view (issue 14): per-account P&L, state and configuration read back
from PostgreSQL, and a leaderboard by return on capital."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboards.monitor import DSN_ENV
from dashboards.views.accounts import accounts, leaderboard, leaderboard_records
from tests.dashboards.conftest import SESSION_OPEN, new_run_id
from tests.dashboards.test_monitor import MONITOR


def insert(conn: psycopg.Connection[Any], run_id: str) -> None:
    for acct, owner, capital in (("a", "Asha", 1_000_000), ("b", "Bala", 200_000)):
        conn.execute(
            "INSERT INTO accounts (run_id, account, owner, capital, limits, strategies)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (run_id, acct, owner, capital, json.dumps({"daily_loss_pct": 3.0}),
             json.dumps([{"name": "momentum_breakout"}, {"name": "fails_on_nth_call"}])),
        )  # fmt: skip
    for acct, strategy, qty, realised, net in (
        ("a", "momentum_breakout", 0, 1000, 900),
        ("a", "gamma_scalp", 65, 0, -100),
        ("b", "momentum_breakout", 0, 500, 450),
        ("c", "vwap_reversal", 0, -50, -60),  # journal only: no accounts row
    ):
        conn.execute(
            "INSERT INTO positions (run_id, account, strategy, token, qty, avg_price, realised,"
            " unrealised, costs, net, mark, seq, updated_at)"
            " VALUES (%s, %s, %s, 't', %s, 100, %s, 0, 10, %s, 100, 1, %s)",
            (run_id, acct, strategy, qty, realised, net, SESSION_OPEN),
        )
    for i, net in enumerate((700, -100)):
        conn.execute(
            "INSERT INTO trades (run_id, trade_id, account, strategy, token, direction, qty,"
            " entry_ts, exit_ts, entry_price, exit_price, gross, costs, net)"
            " VALUES (%s, %s, 'a', 'm', 't', 'LONG', 65, %s, %s, 1, 1, %s, 0, %s)",
            (run_id, f"t{i}", SESSION_OPEN, SESSION_OPEN, net, net),
        )
    events = [
        ("a", "KILL_SWITCH", "DRAWDOWN: 5%", ""),
        ("a", "RESUME", "KILL_SWITCH_RESET", ""),
        ("b", "HALT", "DAILY_LOSS_LIMIT: limit=4000.00", ""),
        ("b", "STRATEGY_FAILED", "NIFTY: disabled: ZeroDivisionError", "fails_on_nth_call"),
        ("c", "KILL_SWITCH", "FEED_STALLED: 12s", ""),
    ]
    for i, (acct, kind, detail, strategy) in enumerate(events):
        conn.execute(
            "INSERT INTO risk_events (run_id, ts, account, kind, detail, strategy)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (run_id, SESSION_OPEN + timedelta(minutes=i), acct, kind, detail, strategy),
        )


def test_accounts_show_pnl_state_and_configuration(pg_conn: psycopg.Connection[Any]) -> None:
    run_id = new_run_id("acc")
    insert(pg_conn, run_id)
    rows = {r.account: r for r in accounts(pg_conn, run_id)}
    assert sorted(rows) == ["a", "b", "c"]
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert (a.owner, a.net, a.open_positions, a.trades, a.wins) == ("Asha", 800, 1, 2, 1)
    assert a.kill_switch == ""  # reset after it fired
    assert b.halted.startswith("DAILY_LOSS_LIMIT")
    assert b.disabled == ("fails_on_nth_call",)
    assert b.strategies == ("momentum_breakout", "fails_on_nth_call")
    assert b.limits == {"daily_loss_pct": 3.0}
    assert c.capital is None
    assert c.kill_switch == "FEED_STALLED: 12s"
    # return on capital: b 450/200k = 0.225% beats a 800/1M = 0.08%; c has no capital
    assert [r.account for r in leaderboard(list(rows.values()))] == ["b", "a", "c"]
    board = leaderboard_records(list(rows.values()))
    assert [(r["rank"], r["account"], r["halted"], r["kill switch"]) for r in board] == [
        (1, "b", "yes", ""),
        (2, "a", "", ""),
        (3, "c", "", "ON"),
    ]


def test_a_run_without_accounts_has_none(pg_conn: psycopg.Connection[Any]) -> None:
    assert accounts(pg_conn, new_run_id("none")) == []


def test_monitor_has_the_accounts_tab(
    monkeypatch: pytest.MonkeyPatch, pg_dsn: str, pg_conn: psycopg.Connection[Any]
) -> None:
    run_id = new_run_id("acctab")
    pg_conn.execute(
        "INSERT INTO runs (run_id, kind, started_at, config_hash) VALUES (%s, 'demo', %s, 'h')",
        (run_id, SESSION_OPEN),
    )
    insert(pg_conn, run_id)
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    monkeypatch.setattr("sys.argv", ["monitor.py"])
    at = AppTest.from_file(MONITOR, default_timeout=60)
    at.run()
    at.sidebar.selectbox(key="run").set_value(run_id).run()
    at.sidebar.radio(key="page").set_value("accounts").run()
    assert not at.exception
    board = next(df.value for df in at.dataframe if "return %" in df.value.columns)
    assert list(board["account"]) == ["b", "a", "c"]
    at.selectbox(key=f"account-{run_id}").set_value("b").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Account net P&L"] == "₹450.00"
    assert metrics["Kill switch"] == "off"
    assert any("~~fails_on_nth_call~~ (disabled)" in c.value for c in at.caption)
    st.cache_data.clear()
    st.cache_resource.clear()
