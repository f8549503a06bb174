"""Render time of every monitor page on a full day's session (issue 17, item 6).

    SCALPFLOW_PG_DSN=postgresql://... .venv/bin/python -m benchmarks.bench_monitor [--run ID]

The database must hold a session (e.g. ``scalpflow demo --no-ui --minutes 375``); the newest
run is used unless ``--run`` names one. Each page is rendered by Streamlit's AppTest (the
server-side script run a browser waits for: queries, figures, tables), first with empty
caches ("cold": what the first visitor of a finished run waits) and then again ("warm": every
later visit, since a finished run's results are cached by run). Row counts of the run are
printed so the figures can be compared between machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboards.monitor import DSN_ENV, PAGES

MONITOR = str(Path(__file__).resolve().parents[1] / "dashboards" / "monitor.py")
TABLES = ("candles", "option_analytics", "regimes", "ai_state", "fills", "trades", "risk_events")


def _counts(dsn: str, run_id: str) -> dict[str, int]:
    out = {}
    with psycopg.connect(dsn) as conn:
        for t in TABLES:
            row = conn.execute(f"SELECT count(*) FROM {t} WHERE run_id = %s", (run_id,)).fetchone()
            out[t] = int(row[0]) if row else 0
    return out


def _render(at: AppTest, page: str) -> float:
    t0 = time.perf_counter()
    at.sidebar.radio(key="page").set_value(page).run()
    dt = time.perf_counter() - t0
    if at.exception or at.error:
        raise SystemExit(f"{page}: {[e.value for e in [*at.exception, *at.error]]}")
    return dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="run id (default: the newest)")
    parser.add_argument("--repeat", type=int, default=3, help="warm renders per page")
    args = parser.parse_args()
    dsn = os.environ.get(DSN_ENV)
    if not dsn:
        raise SystemExit(f"set {DSN_ENV} to a database holding a full-day session")
    sys.argv = ["monitor.py"]
    at = AppTest.from_file(MONITOR, default_timeout=600)
    at.run()  # imports, pool, run list: paid once per server, not per page
    run_id = str(args.run or at.sidebar.selectbox(key="run").value)
    at.sidebar.selectbox(key="run").set_value(run_id).run()
    at.sidebar.toggle(key=f"auto-{run_id}").set_value(False).run()  # a finished run
    counts = _counts(dsn, run_id)
    print(f"run {run_id}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    print(f"{'page':<18} {'cold (s)':>9} {'warm median (s)':>16}")
    for page, title in PAGES.items():
        st.cache_data.clear()
        cold = _render(at, page)
        warm = statistics.median(_render(at, page) for _ in range(args.repeat))
        print(f"{title:<18} {cold:>9.2f} {warm:>16.2f}")


if __name__ == "__main__":
    main()
