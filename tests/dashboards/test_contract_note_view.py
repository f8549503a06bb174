"""The monitor's contract-note view (dashboards/views/contract_note.py), rendered headlessly
against the dashboards' real PostgreSQL: provisional from fills, then the stored note."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from connectors.postgres.sink import write_events
from dashboards.monitor import DSN_ENV
from operators.market.sessions import session_close
from operators.trading.cost_ledger import ContractNote, NoteLine
from tests.dashboards.conftest import new_run_id, populate

MONITOR = str(Path(__file__).resolve().parents[2] / "dashboards" / "monitor.py")
DAY = date(2025, 1, 6)  # the populated run's fills


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, pg_dsn: str) -> Iterator[AppTest]:
    st.cache_data.clear()
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    monkeypatch.setattr("sys.argv", ["monitor.py"])
    yield AppTest.from_file(MONITOR, default_timeout=60)
    st.cache_data.clear()
    st.cache_resource.clear()


def _note_frame(at: AppTest) -> Any:
    (frame,) = [df.value for df in at.dataframe if "Total charges" in df.value.columns]
    return frame


def test_view_shows_the_provisional_note_from_the_fills(
    app: AppTest, pg_conn: psycopg.Connection[Any]
) -> None:
    run = populate(pg_conn, new_run_id("note"))
    at = app.run()
    at.sidebar.selectbox(key="run").set_value(run.run_id).run()
    at.sidebar.radio(key="page").set_value("accounts").run()
    assert not at.exception
    assert any("Provisional" in i.value for i in at.info)
    frame = _note_frame(at)
    # 3 orders of 75: buys at 100.50/102.50/104.50, sells at 101.50/103.50/105.50
    # buy value 2_306_250, sell 2_328_750 paise; turnover 4_635_000; brokerage 3 × 2000
    # exchange 1623.6405 → 1624; IPFT 23.175 → 23; SEBI 4.635 → 5; stamp 69.1875 → 69
    # STT 2328.75 paise = ₹23.2875 → ₹23; GST (6000 + 1624 + 5 + 23) × 0.18 = 1377.36 → 1377
    # charges 6000 + 1624 + 23 + 5 + 69 + 2300 + 1377 = 11_398 = Rs 113.98
    assert list(frame["Scrip"]) == ["NIFTY07JAN2524000CE", "Total"]
    assert frame["Total charges"].iloc[-1] == "113.98"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Contract-note charges"] == "Rs 113.98"


def test_view_shows_the_note_stored_at_session_close(
    app: AppTest, pg_conn: psycopg.Connection[Any]
) -> None:
    run = populate(pg_conn, new_run_id("noted"))
    line = NoteLine(
        token=run.option_token, symbol="NIFTY07JAN2524000CE", buy_qty=225,
        buy_value=2_306_250, sell_qty=225, sell_value=2_328_750, orders=3, brokerage=6000,
        exchange=1624, ipft=23, sebi=5, stamp=69, stt=2300, gst=1377, charges=11_398,
        estimated=11_400,
    )  # fmt: skip
    close = session_close(DAY)
    note = ContractNote(
        ts_event=close, ts_recv=close, account="paper", trade_date=DAY, lines=(line,),
        run_id=run.run_id,
    )  # fmt: skip
    with psycopg.connect(pg_conn.info.dsn) as conn:
        write_events(conn, run.run_id, [note])
    at = app.run()
    at.sidebar.selectbox(key="run").set_value(run.run_id).run()
    at.sidebar.radio(key="page").set_value("accounts").run()
    assert not at.exception
    assert not any("Provisional" in i.value for i in at.info)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["True-up"] == "Rs -0.02"
    assert _note_frame(at)["Net amount"].iloc[0] == "111.02"  # 23_287.50 − 23_062.50 − 113.98
