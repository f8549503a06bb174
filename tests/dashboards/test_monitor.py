"""The Streamlit monitor rendered headlessly (AppTest) against the session's real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboards.monitor import DSN_ENV, records, resolve_dsn
from dashboards.queries import RiskEventRow
from tests.dashboards.conftest import SESSION_OPEN, Populated, new_run_id, populate

MONITOR = str(Path(__file__).resolve().parents[2] / "dashboards" / "monitor.py")
TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Query results are cached for 2 s process-wide: start each test from a clean slate,
    and close the pools afterwards (cache_resource's on_release)."""
    st.cache_data.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, pg_dsn: str) -> AppTest:
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    monkeypatch.setattr("sys.argv", ["monitor.py"])
    return AppTest.from_file(MONITOR, default_timeout=TIMEOUT_S)


def _frame_with(at: AppTest, column: str) -> pd.DataFrame:
    frames = [df.value for df in at.dataframe if column in df.value.columns]
    assert len(frames) == 1, f"expected one table with column {column!r}"
    return frames[0]


def _show_run(at: AppTest, run_id: str) -> AppTest:
    at.run()
    at.sidebar.selectbox(key="run").set_value(run_id).run()
    return at


def test_monitor_renders_a_populated_run(app: AppTest, populated: Populated) -> None:
    at = _show_run(app, populated.run_id)
    assert not at.exception
    assert not at.error
    assert not at.warning, [w.value for w in at.warning]
    assert at.title[0].value == "scalpflow monitor"
    assert at.sidebar.selectbox(key="token").value == populated.index_token
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # candles + equity curve
    assert _frame_with(at, "fill_id").shape[0] == populated.fills
    trades = _frame_with(at, "exit_reason")
    assert trades.shape[0] == populated.trades
    assert list(trades["exit_reason"]) == ["TARGET", "STOP", "TARGET"]
    assert _frame_with(at, "avg_price").shape[0] == 2
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Net"] == "₹99.38"
    assert metrics["Realised"] == "₹126.47"
    assert metrics["Open positions"] == "1"
    assert metrics["Closed trades"] == str(populated.trades)
    assert metrics["Risk events"] == str(populated.risk_events)
    assert metrics["NIFTY regime"] == "TRENDING"
    assert int(metrics["Dead letters (all runs)"]) >= populated.dead_letters
    assert list(_frame_with(at, "size_multiplier")["size_multiplier"]) == [0.5, 1.5]
    assert list(_frame_with(at, "detail")["kind"]) == ["HALT", "COOLDOWN"]
    assert at.sidebar.toggle(key=f"auto-{populated.run_id}").value is True  # demo runs refresh


def test_monitor_switches_instrument_and_reports(
    app: AppTest, pg_conn: psycopg.Connection[Any]
) -> None:
    run = populate(pg_conn, new_run_id("bt"), kind="backtest")
    at = _show_run(app, run.run_id)
    assert at.sidebar.toggle(key=f"auto-{run.run_id}").value is False
    at.sidebar.selectbox(key="token").set_value(run.option_token).run()
    assert not at.exception
    assert any("1s · 3 candles" in c.value for c in at.caption)
    reports = _frame_with(at, "profit_factor")
    row = reports[reports["run_id"] == run.run_id]
    assert list(row["trades"]) == ["3"]
    at.selectbox(key="report_run").set_value(run.run_id)
    at.button(key="build_report").click().run()
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    assert len(at.get("download_button")) == 1


def test_run_without_journal_rows_shows_empty_sections(
    app: AppTest, pg_conn: psycopg.Connection[Any]
) -> None:
    run_id = new_run_id("bare")
    pg_conn.execute(
        "INSERT INTO runs (run_id, kind, started_at, config_hash) VALUES (%s, 'live', %s, 'h')",
        (run_id, SESSION_OPEN),
    )
    at = _show_run(app, run_id)
    assert not at.exception
    assert not at.error
    captions = [c.value for c in at.caption]
    assert "no candles in this run yet" in captions
    assert "no fills" in captions
    assert "no closed trades" in captions


def test_no_dsn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    monkeypatch.setattr("sys.argv", ["monitor.py"])
    at = AppTest.from_file(MONITOR, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert DSN_ENV in at.error[0].value


def test_unreachable_db_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DSN_ENV, "postgresql://monitor:hunter2@127.0.0.1:1/nowhere")
    monkeypatch.setattr("sys.argv", ["monitor.py"])
    at = AppTest.from_file(MONITOR, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("Database unavailable: cannot connect")
    assert "hunter2" not in at.error[0].value


def test_dsn_argument_wins_over_environment() -> None:
    env = {DSN_ENV: "postgresql://env/db"}
    assert resolve_dsn(["--dsn", "postgresql://arg/db"], env) == "postgresql://arg/db"
    assert resolve_dsn(["--dsn=postgresql://arg/db", "-q"], env) == "postgresql://arg/db"
    assert resolve_dsn(["-q", "tests/x.py"], env) == "postgresql://env/db"
    assert resolve_dsn(["--ds", "x"], {}) is None
    assert resolve_dsn([], {DSN_ENV: "  "}) is None


def test_records_display_form() -> None:
    row = RiskEventRow(
        ts=SESSION_OPEN, account="a", kind="HALT", detail="d", strategy="", instrument=""
    )
    assert records([row])[0]["ts"] == "2025-01-06 09:15:00"  # IST
    assert records([{"state": {"w": 1}}])[0] == {"state": '{"w": 1}'}
    assert records([{"x": 1, "state": {"w": 1}}], flatten="state")[0] == {"x": 1, "w": 1}


def test_auto_refresh_follows_the_selected_run(
    app: AppTest, pg_conn: psycopg.Connection[Any]
) -> None:
    demo = populate(pg_conn, new_run_id("demo"))
    backtest = populate(pg_conn, new_run_id("bt"), kind="backtest")
    at = _show_run(app, backtest.run_id)
    assert at.sidebar.toggle(key=f"auto-{backtest.run_id}").value is False
    at.sidebar.selectbox(key="run").set_value(demo.run_id).run()
    assert not at.exception
    assert at.sidebar.toggle(key=f"auto-{demo.run_id}").value is True
