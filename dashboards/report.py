"""PDF backtest report: metrics, equity curve, drawdown and the trade list.

Built with matplotlib's object API (no pyplot, so no global figure state or GUI backend) and
written with ``PdfPages``: page 1 holds the metrics table, page 2 the equity curve and
drawdown, the following pages the trade list (``TRADES_PER_PAGE`` rows each). Money is shown
in rupees ("Rs", which every font has). ``report_from_db`` reads a run's journal through the
dashboards' queries and computes the metrics with ``operators.analytics``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from dashboards import queries
from operators.sessions import IST

A4_LANDSCAPE = (11.69, 8.27)
TRADES_PER_PAGE = 30
REASON_WIDTH = 38

TRADE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("#", "#"),
    ("symbol", "symbol"),
    ("strategy", "strategy"),
    ("direction", "dir"),
    ("qty", "qty"),
    ("entry_ts", "entry (IST)"),
    ("exit_ts", "exit (IST)"),
    ("entry_price", "entry Rs"),
    ("exit_price", "exit Rs"),
    ("net", "net Rs"),
    ("entry_reason", "entry reason"),
    ("exit_reason", "exit reason"),
)

_PERCENT_KEYS = frozenset({"win_rate"})


def format_metric(key: str, value: float | int | None) -> str:
    """Display text of one metric: percentages, two decimals, ∞ and '—' for missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return "-"
        if key in _PERCENT_KEYS:
            return f"{value:.1%}"
        return f"{value:,.2f}"
    return f"{value:,}"


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(IST).strftime("%m-%d %H:%M:%S")
    if isinstance(value, Decimal | float):
        return f"{float(value):,.2f}"
    text = str(value)
    if key.endswith("_reason") and len(text) > REASON_WIDTH:
        return text[: REASON_WIDTH - 1] + "…"
    return text


def drawdown(equity: Sequence[tuple[datetime, float]]) -> list[float]:
    """Fall from the running peak after each point (≥ 0), the curve starting at 0."""
    peak, out = 0.0, []
    for _, value in equity:
        peak = max(peak, value)
        out.append(peak - value)
    return out


def _title_page(run_id: str, metrics: Mapping[str, float | int | None], trade_count: int) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.suptitle(f"scalpflow backtest report - run {run_id}", fontsize=16, y=0.95)
    fig.text(0.5, 0.88, f"Trades: {trade_count}", ha="center", fontsize=13)
    ax = fig.add_axes((0.2, 0.08, 0.6, 0.75))
    ax.axis("off")
    rows = [[k.replace("_", " "), format_metric(k, v)] for k, v in metrics.items()]
    if rows:
        table = ax.table(
            cellText=rows, colLabels=["metric", "value"], loc="upper center", cellLoc="left"
        )
        table.auto_set_font_size(False)
        table.set_fontsize(10)
        table.scale(1, 1.4)
    else:
        ax.text(0.5, 0.5, "no metrics", ha="center")
    return fig


MIN_SPAN = timedelta(minutes=30)


def _equity_page(equity: Sequence[tuple[datetime, float]], trade_count: int) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.suptitle(f"Equity and drawdown ({trade_count} trades)", fontsize=14)
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if equity:
        x = [ts.astimezone(IST).replace(tzinfo=None) for ts, _ in equity]
        y = [v for _, v in equity]
        dd = [-d for d in drawdown(equity)]
        ax_eq.step(x, y, where="post", color="#1f77b4")
        ax_eq.axhline(0, color="#999999", linewidth=0.8)
        ax_dd.fill_between(x, dd, 0, step="post", color="#d62728", alpha=0.4)
        if x[-1] - x[0] < MIN_SPAN:  # a few trades close together: show them in context
            ax_eq.set_xlim(x[0] - MIN_SPAN / 2, x[-1] + MIN_SPAN / 2)
        ax_dd.xaxis.set_major_formatter(DateFormatter("%d %b %H:%M"))
        fig.autofmt_xdate()
    else:
        ax_eq.text(0.5, 0.5, "no closed trades", ha="center", transform=ax_eq.transAxes)
    ax_eq.set_ylabel("cumulative net P&L (Rs)")
    ax_dd.set_ylabel("drawdown (Rs)")
    ax_dd.set_xlabel("exit time (IST)")
    ax_eq.grid(alpha=0.3)
    ax_dd.grid(alpha=0.3)
    return fig


def _trade_pages(trades: Sequence[Mapping[str, Any]]) -> list[Figure]:
    total = len(trades)
    chunks = [trades[i : i + TRADES_PER_PAGE] for i in range(0, total, TRADES_PER_PAGE)] or [[]]
    pages: list[Figure] = []
    for page_no, chunk in enumerate(chunks, start=1):
        fig = Figure(figsize=A4_LANDSCAPE)
        fig.suptitle(f"Trade list: {total} trades (page {page_no} of {len(chunks)})", fontsize=13)
        ax = fig.add_axes((0.02, 0.03, 0.96, 0.88))
        ax.axis("off")
        if not chunk:
            ax.text(0.5, 0.5, "no closed trades", ha="center")
        else:
            first = (page_no - 1) * TRADES_PER_PAGE
            rows = [
                [str(first + i + 1)] + [_cell(k, t.get(k)) for k, _ in TRADE_COLUMNS[1:]]
                for i, t in enumerate(chunk)
            ]
            table = ax.table(
                cellText=rows,
                colLabels=[label for _, label in TRADE_COLUMNS],
                loc="upper center",
                cellLoc="left",
            )
            table.auto_set_font_size(False)
            table.set_fontsize(7)
            table.auto_set_column_width(list(range(len(TRADE_COLUMNS))))
            table.scale(1, 1.3)
        pages.append(fig)
    return pages


def build_figures(
    run_id: str,
    metrics: Mapping[str, float | int | None],
    trades: Sequence[Mapping[str, Any]],
    equity: Sequence[tuple[datetime, float]],
) -> list[Figure]:
    """The report's pages as matplotlib figures (pure; ``write_report`` saves them)."""
    n = len(trades)
    return [_title_page(run_id, metrics, n), _equity_page(equity, n), *_trade_pages(trades)]


def write_report(
    path: str | Path,
    run_id: str,
    metrics: Mapping[str, float | int | None],
    trades: Sequence[Mapping[str, Any]],
    equity: Sequence[tuple[datetime, float]],
) -> Path:
    """Write the PDF report to ``path`` and return it.

    ``metrics`` maps names to values (e.g. ``Metrics.summary()``); ``trades`` are journal rows
    as dicts (keys as in ``TRADE_COLUMNS``; missing keys print blank); ``equity`` is
    (exit time, cumulative net P&L in rupees) per trade.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = build_figures(run_id, metrics, trades, equity)
    info = {"Title": f"scalpflow backtest report {run_id}", "Subject": f"{len(trades)} trades"}
    with PdfPages(out, metadata=info) as pdf:
        for fig in figures:
            pdf.savefig(fig)
    return out


def report_from_db(conn: psycopg.Connection[Any], run_id: str, path: str | Path) -> Path:
    """Read a run's trades, compute its metrics and equity curve, and write the PDF."""
    rows = queries.trades(conn, run_id)
    metrics = queries.trade_metrics(rows).summary()
    return write_report(
        path, run_id, metrics, [asdict(r) for r in rows], queries.equity_points(rows)
    )
