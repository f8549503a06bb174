"""scalpflow monitor: a Streamlit page over PostgreSQL (read-only; never touches Kafka state).

Run it with::

    SCALPFLOW_PG_DSN=postgresql://... streamlit run dashboards/monitor.py
    streamlit run dashboards/monitor.py -- --dsn postgresql://...

A run selector (registered runs plus run ids seen only in candles) scopes every section: the
candle chart with EMA 9/21 and VWAP, fills, positions and P&L, the trade journal, the AI layer
(latest regime per underlying, adaptive state), risk events, dead letters and the backtest
reports. Live and demo runs refresh themselves every few seconds through a fragment. All SQL
lives in ``dashboards.queries``; connections are read-only at the server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import streamlit as st
from psycopg_pool import ConnectionPool

from dashboards import accounts_view, charts, contract_note_view, queries
from dashboards.report import format_metric, report_from_db
from operators.sessions import IST

DSN_ENV = "SCALPFLOW_PG_DSN"
LIVE_KINDS = frozenset({"live", "demo"})
REFRESH_SECONDS = 2.0
CANDLE_LIMIT = 400
REPORT_COLUMNS = (
    "trades",
    "win_rate",
    "net_pnl_rs",
    "gross_pnl_rs",
    "costs_rs",
    "profit_factor",
    "sharpe_daily",
    "max_drawdown_rs",
    "expectancy_rs",
)

# The journal's "why" next to the money, ids last.
TRADE_COLUMNS = (
    "exit_ts",
    "symbol",
    "strategy",
    "direction",
    "qty",
    "entry_price",
    "exit_price",
    "net",
    "entry_reason",
    "exit_reason",
    "entry_ts",
    "gross",
    "costs",
    "account",
    "trade_id",
)

T = TypeVar("T")


def resolve_dsn(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """``--dsn`` (after ``--`` on the streamlit command line) wins over ``SCALPFLOW_PG_DSN``."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--dsn", default=None)
    args, _ = parser.parse_known_args(list(argv))
    dsn = (args.dsn or environ.get(DSN_ENV) or "").strip()
    return dsn or None


def _close_pool(pool: ConnectionPool) -> None:
    pool.close()


@st.cache_resource(show_spinner=False, on_release=_close_pool)
def get_pool(dsn: str) -> ConnectionPool:
    """One read-only pool per DSN for the whole server (a failed open is not cached)."""
    return queries.open_pool(dsn)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _cached_query(dsn: str, name: str, *args: Any) -> Any:
    with get_pool(dsn).connection() as conn:
        return getattr(queries, name)(conn, *args)


def fetch(dsn: str, fn: Callable[..., T], *args: Any) -> T:
    """Run ``queries.<fn>`` through the pool, cached for a couple of seconds."""
    result: T = _cached_query(dsn, fn.__name__, *args)
    return result


def _display(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def records(rows: Sequence[Any], flatten: str | None = None) -> list[dict[str, Any]]:
    """Dataclass rows as display dicts: rupees as floats, times in IST, JSON as text.

    ``flatten`` names a dict field whose keys become columns (e.g. the adaptive state).
    """
    out = []
    for row in rows:
        data = asdict(row) if is_dataclass(row) and not isinstance(row, type) else dict(row)
        if flatten and isinstance(data.get(flatten), dict):
            data = {**{k: v for k, v in data.items() if k != flatten}, **data[flatten]}
        out.append({k: _display(v) for k, v in data.items()})
    return out


def _table(
    rows: Sequence[Any],
    empty: str,
    flatten: str | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    if rows:
        st.dataframe(records(rows, flatten), hide_index=True, width="stretch", column_order=columns)
    else:
        st.caption(empty)


def _section(title: str, render: Callable[[], None]) -> None:
    """A titled section whose database errors become a warning instead of a traceback."""
    st.subheader(title)
    try:
        render()
    except (psycopg.Error, queries.MonitorDatabaseError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        st.warning(f"{title} unavailable: {first}")


def _rs(value: Decimal | float) -> str:
    return f"₹{float(value):,.2f}"


# --- sections ---------------------------------------------------------------------------


def market_section(dsn: str, run_id: str, instrument: queries.InstrumentInfo | None) -> None:
    def render() -> None:
        if instrument is None:
            st.caption("no candles in this run yet")
            return
        intervals = fetch(dsn, queries.list_intervals, run_id, instrument.token) or ["1m"]
        interval = "1m" if "1m" in intervals else intervals[0]
        bars = fetch(dsn, queries.candles, run_id, instrument.token, interval, CANDLE_LIMIT)
        if not bars:
            st.caption(f"no {interval} candles for {instrument.label}")
            return
        last = bars[-1]
        st.caption(
            f"{instrument.label} · {interval} · {len(bars)} candles · last close "
            f"{_rs(last.close)} at {_display(last.ts)} IST"
        )
        st.plotly_chart(charts.candle_figure(bars), width="stretch")

    _section("Market", render)


def summary_strip(dsn: str, run_id: str) -> None:
    """Headline figures above the tabs: P&L, open positions, trades, risk and DLQ counts."""
    try:
        total = queries.pnl_summary(fetch(dsn, queries.positions, run_id))
        n_trades = len(fetch(dsn, queries.trades, run_id))
        n_risk = len(fetch(dsn, queries.risk_events, run_id))
        n_dead = sum(d.count for d in fetch(dsn, queries.dead_letter_counts))
    except psycopg.Error as exc:
        st.warning(f"P&L summary unavailable: {str(exc).strip().splitlines()[0]}")
        return
    money = st.columns(4)
    money[0].metric("Net", _rs(total.net), help="realised + unrealised - costs")
    money[1].metric("Realised", _rs(total.realised))
    money[2].metric("Unrealised", _rs(total.unrealised), help="marked to mid")
    money[3].metric("Costs", _rs(total.costs))
    counts = st.columns(4)
    counts[0].metric("Open positions", total.open_positions)
    counts[1].metric("Closed trades", n_trades)
    counts[2].metric("Risk events", n_risk)
    counts[3].metric("Dead letters (all runs)", n_dead)


def positions_section(dsn: str, run_id: str) -> None:
    _section("Positions", lambda: _table(fetch(dsn, queries.positions, run_id), "no positions"))


def fills_section(dsn: str, run_id: str) -> None:
    _section("Fills", lambda: _table(fetch(dsn, queries.fills, run_id), "no fills"))


def trades_section(dsn: str, run_id: str) -> None:
    def render() -> None:
        rows = fetch(dsn, queries.trades, run_id)
        if rows:
            st.plotly_chart(charts.equity_figure(queries.equity_points(rows)), width="stretch")
        _table(rows, "no closed trades", columns=TRADE_COLUMNS)

    _section("Trade journal", render)


def ai_section(dsn: str, run_id: str) -> None:
    def render() -> None:
        regimes = fetch(dsn, queries.latest_regimes, run_id)
        if regimes:
            cols = st.columns(len(regimes))
            for col, r in zip(cols, regimes, strict=True):
                col.metric(f"{r.underlying} regime", r.regime, help=f"model {r.model_version}")
        else:
            st.caption("no regime classifications")
        _table(fetch(dsn, queries.latest_ai_state, run_id), "no adaptive state", "state")

    _section("AI layer", render)


def risk_section(dsn: str, run_id: str) -> None:
    def render() -> None:
        _table(fetch(dsn, queries.risk_events, run_id), "no risk events")
        st.caption("Dead letters by reason (all runs)")
        _table(fetch(dsn, queries.dead_letter_counts), "no dead letters")

    _section("Risk events and dead letters", render)


def reports_section(dsn: str) -> None:
    def render() -> None:
        reports = fetch(dsn, queries.backtest_reports)
        if not reports:
            st.caption("no backtest runs")
            return
        st.dataframe(
            [
                {
                    "run_id": r.run.run_id,
                    "started": _display(r.run.started_at),
                    "note": r.run.note,
                    **{k: format_metric(k, r.metrics.get(k)) for k in REPORT_COLUMNS},
                }
                for r in reports
            ],
            hide_index=True,
            width="stretch",
        )
        chosen = st.selectbox("Backtest run", [r.run.run_id for r in reports], key="report_run")
        if chosen and st.button("Build PDF report", key="build_report"):
            with tempfile.TemporaryDirectory() as tmp, get_pool(dsn).connection() as conn:
                path = report_from_db(conn, chosen, Path(tmp) / f"report-{chosen}.pdf")
                data = path.read_bytes()
            st.download_button("Download PDF", data, file_name=path.name, mime="application/pdf")

    _section("Backtest reports", render)


def live_view(dsn: str, run_id: str, instrument: queries.InstrumentInfo | None) -> None:
    """Everything scoped to the selected run (re-run alone by the auto-refresh fragment)."""
    summary_strip(dsn, run_id)
    market, journal, ai_risk, users = st.tabs(["Market", "Journal", "AI and risk", "Accounts"])
    with market:
        market_section(dsn, run_id, instrument)
    with journal:
        positions_section(dsn, run_id)
        fills_section(dsn, run_id)
        trades_section(dsn, run_id)
        _section("Contract note", lambda: contract_note_view.render(get_pool(dsn), run_id))
    with ai_risk:
        ai_section(dsn, run_id)
        risk_section(dsn, run_id)
    with users:  # issue 14: account selector and leaderboard (dashboards/accounts_view.py)
        _section("Accounts", lambda: accounts_view.render(run_id, get_pool(dsn).connection))


def main() -> None:
    st.set_page_config(page_title="scalpflow monitor", layout="wide")
    st.title("scalpflow monitor")
    dsn = resolve_dsn(sys.argv[1:], os.environ)
    if dsn is None:
        st.error(
            f"No database configured: set {DSN_ENV} or run "
            "`streamlit run dashboards/monitor.py -- --dsn postgresql://...`."
        )
        return
    try:
        get_pool(dsn)
        runs = fetch(dsn, queries.list_runs)
    except (psycopg.Error, queries.MonitorDatabaseError) as exc:
        st.error(f"Database unavailable: {exc}")
        return
    st.sidebar.caption(f"PostgreSQL: {queries.redact(dsn)}")
    if not runs:
        st.info("The database has no runs yet: start `scalpflow demo` or a backtest.")
        return
    by_id = {r.run_id: r for r in runs}
    run_id = st.sidebar.selectbox(
        "Run", list(by_id), format_func=lambda rid: by_id[rid].label, key="run"
    )
    run = by_id[run_id]
    try:
        instruments = fetch(dsn, queries.list_instruments, run_id)
    except psycopg.Error as exc:
        st.error(f"Cannot list instruments: {exc}")
        return
    instrument = None
    if instruments:
        by_token = {i.token: i for i in instruments}
        token = st.sidebar.selectbox(
            "Instrument", list(by_token), format_func=lambda t: by_token[t].label, key="token"
        )
        instrument = by_token[token]
    auto = st.sidebar.toggle(
        f"Auto-refresh every {REFRESH_SECONDS:g} s",
        value=run.kind in LIVE_KINDS,
        key=f"auto-{run_id}",  # per run: switching to a live run turns refreshing on
    )
    st.sidebar.button("Refresh now", key="refresh")
    st.caption(
        f"Run **{run_id or '(default)'}** · {run.kind or 'unregistered'}"
        + (f" · config {run.config_hash[:12]}" if run.config_hash else "")
        + (f" · {run.note}" if run.note else "")
    )
    view = st.fragment(live_view, run_every=REFRESH_SECONDS if auto else None)
    view(dsn, run_id, instrument)
    reports_section(dsn)


if __name__ == "__main__":
    main()
