"""scalpflow monitor: a Streamlit desk over PostgreSQL (read-only; never touches Kafka state).

Run it with::

    SCALPFLOW_PG_DSN=postgresql://... streamlit run dashboards/monitor.py
    streamlit run dashboards/monitor.py -- --dsn postgresql://...

The sidebar picks a run and a page (also in the URL, ``?page=trades``): the live desk (price,
indicators, trades, option chain, IV), the AI panel, the trade history, the session summary
with its PDF report, the risk panel and the accounts. Every time shown is IST. Query results are
cached per run (``dashboards.data``); a run refreshes itself only while it is still live
(:func:`is_live`). All SQL lives in ``dashboards.queries``; connections are read-only at the
server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import streamlit as st

from dashboards import queries
from dashboards.data import REFRESH_SECONDS, Ctx, fetch, get_pool, section
from dashboards.views import accounts as accounts_view
from dashboards.views import contract_note as contract_note_view
from dashboards.views import desk as desk_view
from dashboards.views import journal as journal_view
from dashboards.views.risk import render_risk
from operators.market.sessions import IST, session_close

DSN_ENV = "SCALPFLOW_PG_DSN"
LIVE_KINDS = frozenset({"live", "demo"})
LAST_BAR = timedelta(minutes=1)  # the newest candle's ts is its window's start
STALE_AFTER_S = 30.0  # a live-kind run whose data has not moved for this long is finished
PAGES: dict[str, str] = {
    "desk": "Live desk",
    "ai": "AI panel",
    "trades": "Trade history",
    "summary": "Session summary",
    "risk": "Risk",
    "accounts": "Accounts",
}


def resolve_dsn(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """``--dsn`` (after ``--`` on the streamlit command line) wins over ``SCALPFLOW_PG_DSN``."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--dsn", default=None)
    args, _ = parser.parse_known_args(list(argv))
    dsn = (args.dsn or environ.get(DSN_ENV) or "").strip()
    return dsn or None


def _display(value: Any) -> Any:
    if isinstance(value, Decimal):
        return round(float(value), 2)
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


def is_live(
    run: queries.RunInfo,
    newest: datetime | None,
    seen: MutableMapping[str, tuple[datetime | None, float]],
    now: float,
) -> bool:
    """Whether a run is still being written: a live or demo run whose newest candle is
    before its session's close and has moved within ``STALE_AFTER_S`` (first sighting
    counts as a move). ``seen`` remembers (newest, when it last moved) per run."""
    if run.kind not in LIVE_KINDS:
        return False
    if newest is not None and newest + LAST_BAR >= session_close(newest.astimezone(IST).date()):
        return False
    last, moved_at = seen.get(run.run_id, (None, now))
    if run.run_id not in seen or newest != last:
        moved_at = now
    seen[run.run_id] = (newest, moved_at)
    return now - moved_at < STALE_AFTER_S


def _progress(dsn: str, run_id: str, instruments: Sequence[queries.InstrumentInfo]) -> Any:
    if not instruments:
        return None
    first = instruments[0]
    intervals = fetch(dsn, queries.list_intervals, run_id, first.token)
    interval = intervals[0] if intervals else "1m"
    return fetch(dsn, queries.latest_candle_ts, run_id, first.token, interval)


def _page_from_url() -> str:
    page = st.query_params.get("page", "desk")
    return page if page in PAGES else "desk"


def render_page(page: str, ctx: Ctx, instruments: Sequence[queries.InstrumentInfo]) -> None:
    """One page of the monitor for the selected run."""
    if page == "desk":
        desk_view.render_desk(ctx, instruments)
    elif page == "ai":
        desk_view.render_ai(ctx, instruments)
    elif page == "trades":
        journal_view.render_trades(ctx)
    elif page == "summary":
        journal_view.render_summary(ctx)
    elif page == "risk":
        render_risk(ctx)
    else:
        section("Accounts", lambda: accounts_view.render(ctx.run_id, ctx.connection))
        section("Contract note", lambda: contract_note_view.render(get_pool(ctx.dsn), ctx.run_id))


def live_page(dsn: str, run: queries.RunInfo, page: str, auto: bool) -> None:
    """The selected page; re-run alone every few seconds by the fragment while live."""
    instruments = fetch(dsn, queries.list_instruments, run.run_id, live=auto)
    if auto:
        seen = st.session_state.setdefault("_progress", {})
        newest = _progress(dsn, run.run_id, instruments)
        if not is_live(run, newest, seen, time.time()):
            st.session_state.setdefault("_finished", set()).add(run.run_id)
            st.rerun(scope="app")  # rebuild without the timer: the run has finished
    ctx = Ctx(dsn=dsn, run=run, live=auto)
    render_page(page, ctx, instruments)


def main() -> None:
    st.set_page_config(page_title="scalpflow monitor", layout="wide")
    dsn = resolve_dsn(sys.argv[1:], os.environ)
    if dsn is None:
        st.title("scalpflow monitor")
        st.error(
            f"No database configured: set {DSN_ENV} or run "
            "`streamlit run dashboards/monitor.py -- --dsn postgresql://...`."
        )
        return
    try:
        get_pool(dsn)
        runs = fetch(dsn, queries.list_runs)
    except (psycopg.Error, queries.MonitorDatabaseError) as exc:
        st.title("scalpflow monitor")
        st.error(f"Database unavailable: {exc}")
        return
    st.sidebar.caption(f"PostgreSQL: {queries.redact(dsn)}")
    if not runs:
        st.title("scalpflow monitor")
        st.info("The database has no runs yet: start `scalpflow demo` or a backtest.")
        return
    by_id = {r.run_id: r for r in runs}
    run_id = st.sidebar.selectbox(
        "Run", list(by_id), format_func=lambda rid: by_id[rid].label, key="run"
    )
    run = by_id[run_id]
    keys = list(PAGES)
    page = st.sidebar.radio(
        "Page", keys, index=keys.index(_page_from_url()), format_func=PAGES.__getitem__,
        key="page",
    )  # fmt: skip
    st.query_params["page"] = page
    key = f"auto-{run_id}"
    if key not in st.session_state:  # per run: a live run starts refreshing, others never
        try:
            instruments = fetch(dsn, queries.list_instruments, run_id)
            newest = _progress(dsn, run_id, instruments)
        except psycopg.Error:
            newest = None
        seen = st.session_state.setdefault("_progress", {})
        st.session_state[key] = is_live(run, newest, seen, time.time())
    elif run_id in st.session_state.get("_finished", set()):
        st.session_state["_finished"].discard(run_id)
        st.session_state[key] = False  # set before the toggle exists in this run
    auto = st.sidebar.toggle(f"Auto-refresh every {REFRESH_SECONDS:g} s (live runs)", key=key)
    st.sidebar.button("Refresh now", key="refresh")
    st.title(PAGES[page])
    st.caption(
        f"Run **{run_id or '(default)'}** · {run.kind or 'unregistered'}"
        + (
            f" · started {run.started_at.astimezone(IST):%d %b %Y %H:%M} IST"
            if run.started_at
            else ""
        )
        + (f" · config {run.config_hash[:12]}" if run.config_hash else "")
        + (f" · {run.note}" if run.note else "")
        + (" · **live**" if auto else "")
    )
    try:
        view = st.fragment(live_page, run_every=REFRESH_SECONDS if auto else None)
        view(dsn, run, page, auto)
    except psycopg.Error as exc:
        st.error(f"Cannot read run {run_id}: {str(exc).strip().splitlines()[0]}")


if __name__ == "__main__":
    main()
