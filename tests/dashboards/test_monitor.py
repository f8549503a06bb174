"""The Streamlit monitor rendered headlessly (AppTest) against the session's real PostgreSQL:
every page's logic (what each shows for a known run); the browser test checks the pixels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboards.monitor import DSN_ENV, is_live, records, resolve_dsn
from dashboards.queries import RiskEventRow, RunInfo
from tests.dashboards.conftest import (
    SESSION_OPEN,
    Populated,
    add_chain,
    new_run_id,
    populate,
)

MONITOR = str(Path(__file__).resolve().parents[2] / "dashboards" / "monitor.py")
TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Query results are cached process-wide: start each test from a clean slate, and
    close the pools afterwards (cache_resource's on_release)."""
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


def _traces(at: AppTest) -> list[list[str]]:
    return [
        [t.get("name") for t in json.loads(c.proto.spec)["data"]] for c in at.get("plotly_chart")
    ]


def _show(at: AppTest, run_id: str, page: str = "desk") -> AppTest:
    at.run()
    at.sidebar.selectbox(key="run").set_value(run_id).run()
    at.sidebar.radio(key="page").set_value(page).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]
    return at


def _texts(at: AppTest) -> list[str]:
    out = [c.value for c in at.caption] + [m.value for m in at.markdown]
    for df in at.dataframe:
        out += [str(v) for v in df.value.to_numpy().ravel().tolist()]
    return out


def _no_utc(at: AppTest) -> None:
    for text in _texts(at):
        assert "+00:00" not in text, text
        assert "UTC" not in text, text


@pytest.fixture
def desk_run(pg_conn: psycopg.Connection[Any]) -> Populated:
    run = populate(pg_conn, new_run_id("desk"), kind="backtest")  # finished: chain slider
    add_chain(pg_conn, run)
    return run


def test_desk_shows_price_indicators_trades_and_the_chain(
    app: AppTest, desk_run: Populated
) -> None:
    at = _show(app, desk_run.run_id, "desk")
    assert at.title[0].value == "Live desk"
    traces = _traces(at)
    price = traces[0]
    assert price[:7] == ["price", "EMA 9", "EMA 21", "VWAP", "RSI 14", "ATR 14 (₹)", "volume"]
    assert "entries" in price
    assert "exits" in price
    assert ["CE IV", "PE IV"] == traces[1]  # the smile
    assert "ATM IV (%)" in traces[2]
    chain = _frame_with(at, "strike")
    assert list(chain["strike"]) == [23900.0, 24000.0, 24100.0]
    assert list(chain["ATM"]) == ["", "◆", ""]  # forward 24010 → the 24000 strike
    assert chain["CE IV %"].tolist() == [12.5, 12.4, 12.5]  # the last minute's smile
    # the last minute's stored quote; OI change since the run's first tick of the day
    assert chain[["CE bid", "CE ask", "CE LTP", "CE OI", "CE OI chg"]].iloc[1].tolist() == [
        103.85, 104.15, 104.05, 1300, 325
    ]  # fmt: skip
    assert chain["PE LTP"].tolist() == [104.05] * 3
    assert any("ATM 24,000" in c.value for c in at.caption)
    _no_utc(at)
    # the traded option itself: markers at its own fill prices
    at.selectbox(key=f"token-{desk_run.run_id}").set_value(desk_run.option_token).run()
    assert not at.exception
    assert any("NIFTY07JAN2524000CE" in c.value for c in at.caption)


def test_chain_as_of_an_earlier_minute(app: AppTest, desk_run: Populated) -> None:
    at = _show(app, desk_run.run_id, "desk")
    slider = at.select_slider(key=f"chain-at-{desk_run.run_id}")
    first = slider.options[0]
    slider.set_value(first).run()
    assert not at.exception
    chain = _frame_with(at, "strike")
    assert chain["CE IV %"].tolist() == [12.1, 12.0, 12.1]  # minute 0
    assert chain[["CE bid", "CE ask", "CE LTP", "CE OI", "CE OI chg"]].iloc[1].tolist() == [
        99.85, 100.15, 100.05, 1000, 25
    ]  # fmt: skip


def test_chain_without_stored_quotes_says_so(
    app: AppTest, pg_conn: psycopg.Connection[Any]
) -> None:
    run = populate(pg_conn, new_run_id("bare"), kind="backtest")
    add_chain(pg_conn, run, quotes=False)
    at = _show(app, run.run_id, "desk")
    chain = _frame_with(at, "strike")
    assert "CE bid" not in chain.columns
    assert chain["CE LTP"].tolist() == [104.0] * 3  # the analytics' price instead
    assert any("no bid/ask/OI stored" in c.value for c in at.caption)


def test_ai_panel(app: AppTest, desk_run: Populated, pg_conn: psycopg.Connection[Any]) -> None:
    until = SESSION_OPEN + timedelta(minutes=40)
    pg_conn.execute(
        "INSERT INTO ai_state (run_id, ts, account, strategy, state) VALUES (%s, %s, 'paper',"
        " 'momentum_breakout', %s)",
        (
            desk_run.run_id,
            SESSION_OPEN + timedelta(minutes=27),
            json.dumps(
                {"size_multiplier": 0.5, "weight": 0.2, "paused_until": until.isoformat(),
                 "win_rate": 0.25, "max_drawdown": 12345, "trades": 4}
            ),
        ),
    )  # fmt: skip
    at = _show(app, desk_run.run_id, "ai")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["NIFTY regime"] == "TRENDING"
    assert metrics["Model"] == "rules-v1"
    assert metrics["Rules fallback"] == "yes"
    traces = _traces(at)
    assert "regime TRENDING" in traces[0]
    assert "regime RANGING" in traces[0]
    assert sorted(traces[1]) == ["paper/momentum_breakout", "paper/vwap_reversal"]  # size ×
    mix = _frame_with(at, "share %")
    assert dict(zip(mix["regime"], mix["minutes"], strict=True)) == {
        "RANGING": 1, "HIGH_VOL": 1, "TRENDING": 1
    }  # fmt: skip
    latest = _frame_with(at, "size ×")
    row = latest[latest["strategy"] == "momentum_breakout"].iloc[0]
    assert row["max drawdown ₹"] == 123.45
    assert row["win rate %"] == 25.0
    cool = _frame_with(at, "until (IST)")
    assert list(cool["until (IST)"]) == ["?", "06 Jan 2025 09:55:00"]  # COOLDOWN without until
    assert list(cool["active"]) == ["", "yes"]  # the run's clock is 09:43
    _no_utc(at)


def _extra_trade(conn: psycopg.Connection[Any], run: Populated) -> None:
    conn.execute(
        "INSERT INTO trades (run_id, trade_id, account, strategy, token, underlying, direction,"
        " qty, entry_ts, exit_ts, entry_price, exit_price, gross, costs, net, entry_reason,"
        " exit_reason) VALUES (%s, 'short-1', 'other', 'vwap_reversal', %s, 'NIFTY', 'SHORT',"
        " 75, %s, %s, 240.1857, 238.5, 126.43, 40, 86.43, %s, 'TARGET')",
        (
            run.run_id,
            run.option_token,
            SESSION_OPEN + timedelta(minutes=40),
            SESSION_OPEN + timedelta(days=1, minutes=2),
            "RSI 78 above 70 and price 1.2% over VWAP: fade back to VWAP " * 3,
        ),
    )


def test_trade_history_filters_downloads_and_per_strategy(
    app: AppTest, populated: Populated, pg_conn: psycopg.Connection[Any]
) -> None:
    _extra_trade(pg_conn, populated)
    at = _show(app, populated.run_id, "trades")
    trades = _frame_with(at, "exit reason")
    assert trades.shape[0] == 4
    assert trades["entry ₹"].tolist()[-1] == 240.19  # rounded
    assert trades["entry reason"].tolist()[-1].count("fade back") == 3  # in full
    assert trades["exit (IST)"].tolist()[0] == "06 Jan 2025 09:19:00"
    by = _frame_with(at, "max drawdown ₹")
    assert by.set_index("strategy")["net ₹"].to_dict() == {
        "momentum_breakout": 95.73, "vwap_reversal": 86.43
    }  # fmt: skip
    assert len(at.get("download_button")) == 2
    assert sorted(_traces(at)[0]) == ["momentum_breakout", "vwap_reversal"]  # equity curves
    at.multiselect(key="f-side").set_value(["SHORT"]).run()
    assert _frame_with(at, "exit reason").shape[0] == 1
    assert at.selectbox(key="trade-detail").value == "short-1"  # the detail follows the filter
    assert any("fade back to VWAP" in m.value for m in at.markdown)
    at.multiselect(key="f-side").set_value([]).run()
    at.multiselect(key="f-strategy").set_value(["momentum_breakout"]).run()
    assert _frame_with(at, "exit reason").shape[0] == 3
    at.multiselect(key="f-strategy").set_value([]).run()
    at.date_input(key="f-dates").set_value((SESSION_OPEN.date(), SESSION_OPEN.date())).run()
    assert _frame_with(at, "exit reason").shape[0] == 3  # the short closed the next day
    # positions: the closed one shows what it made, not qty 0 / avg 0
    closed = _frame_with(at, "closed (IST)")
    assert "qty" not in closed.columns
    assert closed["net ₹"].tolist() == [-15.1]
    open_ = _frame_with(at, "mark ₹")
    assert open_["qty"].tolist() == [75]
    assert open_["avg ₹"].tolist() == [102.25]
    assert _frame_with(at, "fill id").shape[0] == populated.fills
    _no_utc(at)


def test_summary_page_and_pdf(app: AppTest, populated: Populated) -> None:
    at = _show(app, populated.run_id, "summary")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Net P&L"] == "₹99.38"
    assert metrics["Realised"] == "₹126.47"
    daily = _frame_with(at, "date (IST)")
    assert daily.to_dict("records")[0] | {} == {
        "date (IST)": "06 Jan 2025", "trades": 3, "wins": 2, "gross ₹": 223.95,
        "costs ₹": 128.22, "net ₹": 95.73,
    }  # fmt: skip
    assert [t[0] for t in _traces(at)] == ["all strategies", "drawdown"]
    assert len(at.get("download_button")) == 0  # nothing built yet
    at.button(key="build_report").click().run()
    assert not at.exception
    assert len(at.get("download_button")) == 1
    at.run()  # a rerun (a live run's auto-refresh) keeps the built report downloadable
    assert len(at.get("download_button")) == 1
    _no_utc(at)


def test_risk_panel_state_causes_and_resets(
    app: AppTest, populated: Populated, pg_conn: psycopg.Connection[Any]
) -> None:
    rows = [
        (SESSION_OPEN + timedelta(minutes=20), "k", "KILL_SWITCH", "DRAWDOWN: 5.2% of capital"),
        (SESSION_OPEN + timedelta(minutes=21), "r", "KILL_SWITCH", "FEED_STALLED: 31 s"),
        (SESSION_OPEN + timedelta(minutes=26), "r", "OPERATOR_RESET", "ops: feed back"),
    ]
    pg_conn.cursor().executemany(
        "INSERT INTO risk_events (run_id, ts, account, kind, detail) VALUES (%s, %s, %s, %s, %s)",
        [(populated.run_id, *r) for r in rows],
    )
    at = _show(app, populated.run_id, "risk")
    state = _frame_with(at, "kill switch").set_index("account")
    assert state.loc["k", "kill switch"] == "ON"
    assert state.loc["k", "why"] == "DRAWDOWN: 5.2% of capital"
    assert state.loc["r", "kill switch"] == "off"
    assert state.loc["r", "operator resets"] == 1
    assert state.loc["paper", "halted"] == "yes"
    assert state.loc["paper", "to reset"] == ('scalpflow risk reset --account paper --reason "..."')
    assert state.loc["r", "to reset"] == ""
    code = [c.value for c in at.code]
    assert code == [
        'scalpflow risk reset --account k --reason "..."\n'
        'scalpflow risk reset --account paper --reason "..."'
    ]
    frames = [df.value for df in at.dataframe if "event" in df.value.columns]
    causes, resets = frames
    assert "KILL_SWITCH" in set(causes["event"])
    assert "HALT" in set(causes["event"])
    assert resets["detail"].tolist() == ["ops: feed back"]
    assert resets["time (IST)"].tolist() == ["06 Jan 2025 09:41:00"]
    _no_utc(at)


def test_run_without_journal_rows_shows_empty_sections(
    app: AppTest, pg_conn: psycopg.Connection[Any]
) -> None:
    run_id = new_run_id("bare")
    pg_conn.execute(
        "INSERT INTO runs (run_id, kind, started_at, config_hash) VALUES (%s, 'live', %s, 'h')",
        (run_id, SESSION_OPEN),
    )
    for page, expected in (
        ("desk", "no candles in this run yet"),
        ("trades", "no closed trades"),
        ("ai", "no regime classifications"),
        ("risk", "no risk events"),
    ):
        at = _show(app, run_id, page)
        assert expected in [c.value for c in at.caption], page


def test_page_comes_from_the_url(app: AppTest, populated: Populated) -> None:
    app.query_params["page"] = "risk"
    at = app.run()
    assert at.sidebar.radio(key="page").value == "risk"
    assert at.title[0].value == "Risk"


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
    at = _show(app, backtest.run_id)
    assert at.sidebar.toggle(key=f"auto-{backtest.run_id}").value is False
    at.sidebar.selectbox(key="run").set_value(demo.run_id).run()
    assert not at.exception
    assert at.sidebar.toggle(key=f"auto-{demo.run_id}").value is True


def test_is_live_only_while_a_live_run_moves() -> None:
    run = RunInfo("r", "demo", SESSION_OPEN, "h", "")
    seen: dict[str, Any] = {}
    t1 = SESSION_OPEN + timedelta(minutes=5)
    assert is_live(run, t1, seen, now=1000.0)  # first sighting
    assert is_live(run, t1, seen, now=1020.0)  # still within the grace period
    assert not is_live(run, t1, seen, now=1031.0)  # nothing moved for 31 s
    assert is_live(run, t1 + timedelta(minutes=1), seen, now=1040.0)  # it moved again
    closing = SESSION_OPEN.replace(hour=9, minute=59)  # 15:29 IST: the session's last bar
    assert not is_live(run, closing, {}, now=0.0)
    assert not is_live(RunInfo("b", "backtest", SESSION_OPEN, "h", ""), t1, {}, now=0.0)


def test_ai_panel_shows_a_models_class_probabilities(
    app: AppTest, desk_run: Populated, pg_conn: psycopg.Connection[Any]
) -> None:
    probs = [  # minute → (class, probabilities); the rules' minutes 5, 15, 25 have none
        (26, "RANGING", {"TRENDING": 0.2, "RANGING": 0.7, "HIGH_VOL": 0.1}),
        (27, "TRENDING", {"TRENDING": 0.55, "RANGING": 0.25, "HIGH_VOL": 0.2}),
    ]
    pg_conn.cursor().executemany(
        "INSERT INTO regimes (run_id, underlying, ts, regime, features, model_version,"
        " probabilities) VALUES (%s, 'NIFTY', %s, %s, '{\"adx\": 30.0}', 'rf-0123456789ab', %s)",
        [
            (desk_run.run_id, SESSION_OPEN + timedelta(minutes=m), r, json.dumps(p))
            for m, r, p in probs
        ],
    )
    at = _show(app, desk_run.run_id, "ai")
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Model"], metrics["Rules fallback"]) == ("rf-0123456789ab", "no")
    table = _frame_with(at, "probability %")
    assert table.to_dict("records") == [
        {"regime": "TRENDING", "probability %": 55.0, "class": "◆"},
        {"regime": "RANGING", "probability %": 25.0, "class": ""},
        {"regime": "HIGH_VOL", "probability %": 20.0, "class": ""},
    ]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (lines,) = [s for s in specs if [t["name"] for t in s["data"]] == list(probs[0][2])]
    assert lines["data"][1]["y"] == [0.7, 0.25]  # RANGING over the two model minutes
    _no_utc(at)
