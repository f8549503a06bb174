"""PDF session report for people: who ran what, how it went, and every trade.

Why one module (~610 lines): every page of the one PDF report, drawn with one set of page
helpers (layout, fonts, tables) that no other module needs.

Pages (A4 landscape, matplotlib's object API: no pyplot, so no global figure state or GUI
backend, written with ``PdfPages``):

1. title page: run, kind, session dates (IST), the data range replayed, the accounts and
   their capital, the regime model, headline figures, strategies with their parameters per
   account, and the run's own parameters;
1b. every strategy's effective parameters (the run's overrides over the defaults), when the
   run recorded its strategies;
2. metrics with human labels and units, and the per-strategy breakdown;
3. the index price through the session with each trade's entry and exit and a band per
   position (omitted when the run has no index candles);
4. equity curve and drawdown;
5. the trade list: a row per trade with its entry and exit reasons wrapped in full beneath,
   as many whole trades a page as fit (:func:`paginate`).

Every time is IST and says so. Money is in rupees, written "Rs" (every font has it).
``report_from_db`` reads a run's registration, journal and index candles through the
dashboards' queries and computes the metrics with ``operators.trading.analytics``.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dashboards import queries
from dashboards.colours import EMA9_COLOUR, HEADER_BG, INK, MUTED
from dashboards.colours import LOSS_COLOUR as LOSS
from dashboards.colours import WIN_COLOUR as WIN
from operators.market.sessions import IST

A4_LANDSCAPE = (11.69, 8.27)
MIN_SPAN = timedelta(minutes=30)

METRIC_LABELS: dict[str, str] = {
    "trades": "Closed trades",
    "wins": "Winning trades",
    "losses": "Losing trades",
    "win_rate": "Win rate",
    "net_pnl_rs": "Net P&L (Rs)",
    "gross_pnl_rs": "Gross P&L (Rs)",
    "costs_rs": "Costs and charges (Rs)",
    "profit_factor": "Profit factor (gross wins / gross losses)",
    "expectancy_rs": "Expectancy per trade (Rs)",
    "avg_win_rs": "Average winning trade (Rs)",
    "avg_loss_rs": "Average losing trade (Rs)",
    "max_drawdown_rs": "Maximum drawdown (Rs)",
    "sharpe_per_trade": "Sharpe ratio per trade",
    "sharpe_daily": "Sharpe ratio of daily P&L",
    "days": "Trading days",
}

TRADE_COLUMNS: tuple[tuple[str, str, float], ...] = (  # key, header, relative width
    ("#", "#", 0.035),
    ("exit_ts", "exit (IST)", 0.085),
    ("entry_ts", "entry (IST)", 0.085),
    ("strategy", "strategy", 0.11),
    ("symbol", "instrument", 0.14),
    ("direction", "side", 0.05),
    ("qty", "qty", 0.04),
    ("entry_price", "entry Rs", 0.065),
    ("exit_price", "exit Rs", 0.065),
    ("net", "net P&L Rs", 0.075),
    ("entry_reason", "entry reason", 0.16),
    ("exit_reason", "exit reason", 0.09),
)

_PERCENT_KEYS = frozenset({"win_rate"})


def format_metric(key: str, value: float | int | None) -> str:
    """Display text of one metric: percentages, two decimals, inf and '-' for missing."""
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


def _ist(ts: datetime) -> datetime:
    return ts.astimezone(IST).replace(tzinfo=None)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(IST).strftime("%d %b %H:%M:%S")
    if isinstance(value, Decimal | float):
        return f"{float(value):,.2f}"
    text = str(value)
    return text


def drawdown(equity: Sequence[tuple[datetime, float]]) -> list[float]:
    """Fall from the running peak after each point (≥ 0), the curve starting at 0."""
    peak, out = 0.0, []
    for _, value in equity:
        peak = max(peak, value)
        out.append(peak - value)
    return out


@dataclass(frozen=True)
class RunMeta:
    """What the title page says about the run (all optional for a bare report)."""

    kind: str = ""
    started_at: datetime | None = None
    note: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)


def strategy_rows(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(account, strategy, parameters) from a run's config: per account when it has
    accounts, else its top-level strategies."""

    def params(s: Any) -> tuple[str, str]:
        if isinstance(s, Mapping):
            p = s.get("params") or {}
            text = ", ".join(f"{k}={v}" for k, v in sorted(p.items())) or "defaults"
            return str(s.get("name", "?")), text
        return str(s), "defaults"

    out = []
    for acct in config.get("accounts") or []:
        if isinstance(acct, Mapping):
            for s in acct.get("strategies") or []:
                out.append((str(acct.get("id", "")), *params(s)))
    if not out:
        for s in config.get("strategies") or []:
            out.append(("", *params(s)))
    return out


#: config keys the title page already shows in words (``run_details``, the strategy table)
_SHOWN_ABOVE = frozenset({"accounts", "strategies", "from", "to", "regime_model", "kind"})


def _run_parameters(config: Mapping[str, Any]) -> str:
    scalars = {
        k: v
        for k, v in sorted(config.items())
        if isinstance(v, str | int | float | bool) and k not in _SHOWN_ABOVE
    }
    return ", ".join(f"{k} = {v}" for k, v in scalars.items())


def _when(text: Any) -> str:
    try:
        return f"{datetime.fromisoformat(str(text)).astimezone(IST):%d %b %Y %H:%M}"
    except ValueError:
        return str(text)


def run_details(config: Mapping[str, Any]) -> list[str]:
    """Title-page lines from a run's recorded config: the range it replayed (a backtest),
    its accounts with their capital, and the regime model it traded with."""
    out = []
    if config.get("from") and config.get("to"):
        out.append(f"Data range: {_when(config['from'])} to {_when(config['to'])} IST")
    accounts = [a for a in config.get("accounts") or [] if isinstance(a, Mapping)]
    if accounts:
        out.append(
            "Accounts: "
            + ", ".join(
                f"{a.get('id', '?')} (capital Rs {float(a['capital_rupees']):,.0f})"
                if isinstance(a.get("capital_rupees"), int | float)
                else str(a.get("id", "?"))
                for a in accounts
            )
        )
    if "regime_model" in config:
        model = config.get("regime_model")
        out.append(f"Regime model: {model}" if model else "Regime model: none, the rules classify")
    return out


def effective_parameters(config: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(strategy, parameter, value, "set" or "default") for every distinct strategy entry of
    the run: its recorded overrides over the strategy's own defaults (from the registry; a
    strategy that cannot be loaded here shows its overrides only)."""
    from operators.strategies.registry import StrategyLoadError, load_strategy_class

    # (name, params as JSON) -> accounts using that parameter set, in order of appearance
    sets: dict[tuple[str, str], list[str]] = {}
    recorded: dict[tuple[str, str], Mapping[str, Any]] = {}
    accounts = [a for a in config.get("accounts") or [] if isinstance(a, Mapping)]
    pairs = [(str(a.get("id", "")), s) for a in accounts for s in a.get("strategies") or []]
    for account, s in pairs or [("", s) for s in config.get("strategies") or []]:
        if isinstance(s, Mapping) and s.get("name"):
            params = s.get("params") or {}
            key = (str(s["name"]), json.dumps(params, sort_keys=True, default=str))
            sets.setdefault(key, [])
            if account and account not in sets[key]:
                sets[key].append(account)
            recorded[key] = params
    names = [name for name, _ in sets]
    seen: dict[str, tuple[str, Mapping[str, Any]]] = {}  # label -> (strategy, its params)
    for key, users in sets.items():
        name = key[0]
        label = name if names.count(name) == 1 else f"{name} ({', '.join(users) or '?'})"
        seen[label] = (name, recorded[key])
    out = []
    for label, (name, params) in seen.items():
        try:
            values = load_strategy_class(name).validate_params(None).model_dump()
        except (StrategyLoadError, ValueError):
            values = {}
        values.update(params)
        for key, value in values.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else value
            out.append((label, key, "-" if shown in (None, "") else str(shown),
                        "set" if key in params else "default"))  # fmt: skip
    return out


def _session_span(trades: Sequence[Mapping[str, Any]], bars: Sequence[Any]) -> str:
    times = [t[k] for t in trades for k in ("entry_ts", "exit_ts") if t.get(k)]
    times += [b.ts for b in bars]
    if not times:
        return "no trades"
    first, last = min(times).astimezone(IST), max(times).astimezone(IST)
    if first.date() == last.date():
        return f"{first:%a %d %b %Y}, {first:%H:%M} to {last:%H:%M} IST"
    return f"{first:%d %b %Y %H:%M} to {last:%d %b %Y %H:%M} IST"


def _styled_table(
    ax: Axes,
    rows: list[list[str]],
    headers: list[str],
    widths: list[float] | None = None,
    fontsize: float = 10,
    row_height: float = 0.06,
) -> None:
    ax.axis("off")
    table = ax.table(
        cellText=rows, colLabels=headers, colWidths=widths, loc="upper left", cellLoc="left"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    lines = [1] + [max(str(c).count("\n") + 1 for c in r) for r in rows]
    for (r, _c), cell in table.get_celld().items():
        cell.set_height(row_height * lines[r])
        cell.set_edgecolor("#cccccc")
        cell.PAD = 0.03
        if r == 0:
            cell.set_facecolor(HEADER_BG)
            cell.get_text().set_fontweight("bold")


def _title_page(
    run_id: str,
    meta: RunMeta,
    metrics: Mapping[str, float | int | None],
    trades: Sequence[Mapping[str, Any]],
    bars: Sequence[Any],
) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.text(0.06, 0.90, "scalpflow session report", fontsize=26, weight="bold", color=INK)
    kind = f" · {meta.kind}" if meta.kind else ""
    fig.text(0.06, 0.85, f"run {run_id}{kind}", fontsize=14, color=MUTED)
    fig.text(0.06, 0.80, f"Session: {_session_span(trades, bars)}", fontsize=13, color=INK)
    lines = run_details(meta.config)
    if meta.started_at is not None:
        lines.insert(0, f"Run started {meta.started_at.astimezone(IST):%d %b %Y %H:%M} IST")
    if meta.note:
        lines.append(meta.note)
    for i, line in enumerate(lines[:5]):
        fig.text(0.06, 0.765 - 0.03 * i, textwrap.shorten(line, 150), fontsize=11, color=MUTED)
    top = 0.66 - 0.03 * max(0, min(len(lines), 5) - 2)  # headline figures below the details
    headline = (
        ("Net P&L", f"Rs {format_metric('net_pnl_rs', metrics.get('net_pnl_rs'))}"),
        ("Trades", f"{len(trades)}"),
        ("Win rate", format_metric("win_rate", metrics.get("win_rate"))),
        ("Max drawdown", f"Rs {format_metric('max_drawdown_rs', metrics.get('max_drawdown_rs'))}"),
    )
    for i, (label, value) in enumerate(headline):
        x = 0.06 + i * 0.225
        fig.text(x, top, label, fontsize=11, color=MUTED)
        net = metrics.get("net_pnl_rs")
        colour = INK
        if label == "Net P&L" and isinstance(net, int | float):
            colour = WIN if net > 0 else LOSS if net < 0 else INK
        fig.text(x, top - 0.045, value, fontsize=20, weight="bold", color=colour)
    fig.text(0.06, top - 0.13, "Strategies and parameters", fontsize=13, weight="bold", color=INK)
    rows = strategy_rows(meta.config)
    ax = fig.add_axes((0.06, 0.12, 0.88, top - 0.26))
    if rows:
        _styled_table(
            ax,
            [[a or "-", s, textwrap.fill(p, 70)] for a, s, p in rows[:12]],
            ["account", "strategy", "parameters"],
            [0.15, 0.25, 0.60],
            fontsize=10,
            row_height=0.075,
        )
    else:
        ax.axis("off")
        ax.text(0, 0.9, "not recorded for this run", fontsize=11, color=MUTED)
    params = _run_parameters(meta.config)
    if params:
        text = textwrap.shorten("Run parameters: " + params, 300)
        fig.text(0.06, 0.075, textwrap.fill(text, 150), fontsize=9, color=MUTED, va="top")
    return fig


PARAMETER_ROWS = 28  # rows of the parameter table a page holds


def _parameter_pages(rows: Sequence[tuple[str, str, str, str]]) -> list[Figure]:
    """Every strategy's effective parameters, the ones the run set marked as such."""
    pages = []
    chunks = [rows[i : i + PARAMETER_ROWS] for i in range(0, len(rows), PARAMETER_ROWS)]
    for n, chunk in enumerate(chunks, 1):
        fig = Figure(figsize=A4_LANDSCAPE)
        more = f" (page {n} of {len(chunks)})" if len(chunks) > 1 else ""
        fig.text(0.06, 0.92, f"Strategy parameters{more}", fontsize=18, weight="bold", color=INK)
        fig.text(0.06, 0.885, "Values in force for the run: set by the run, or the strategy's "
                 "default.", fontsize=10, color=MUTED)  # fmt: skip
        ax = fig.add_axes((0.06, 0.05, 0.88, 0.82))
        _styled_table(ax, [list(r) for r in chunk], ["strategy", "parameter", "value", "from"],
                      [0.28, 0.30, 0.27, 0.15], fontsize=10, row_height=0.034)  # fmt: skip
        pages.append(fig)
    return pages


def _metrics_page(
    metrics: Mapping[str, float | int | None], trades: Sequence[Mapping[str, Any]]
) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.text(0.06, 0.92, "Results", fontsize=18, weight="bold", color=INK)
    ax = fig.add_axes((0.06, 0.08, 0.38, 0.80))
    rows = [[METRIC_LABELS.get(k, k.replace("_", " ")), format_metric(k, v)]
            for k, v in metrics.items()]  # fmt: skip
    if rows:
        _styled_table(ax, rows, ["measure", "value"], [0.72, 0.28], fontsize=10, row_height=0.05)
    else:
        ax.axis("off")
        ax.text(0, 0.9, "no metrics", fontsize=11)
    fig.text(0.50, 0.885, "By strategy", fontsize=13, weight="bold", color=INK)
    by: dict[str, list[float]] = {}
    for t in trades:
        by.setdefault(str(t.get("strategy", "")), []).append(float(t.get("net") or 0))
    ax2 = fig.add_axes((0.50, 0.08, 0.46, 0.78))
    if by:
        _styled_table(
            ax2,
            [
                [name, str(len(n)), f"{sum(1 for x in n if x > 0) / len(n):.0%}",
                 f"{sum(n):,.2f}", f"{sum(n) / len(n):,.2f}"]
                for name, n in sorted(by.items())
            ],
            ["strategy", "trades", "win rate", "net Rs", "avg Rs"],
            [0.34, 0.14, 0.16, 0.2, 0.16],
            fontsize=10,
            row_height=0.055,
        )  # fmt: skip
    else:
        ax2.axis("off")
        ax2.text(0, 0.9, "no closed trades", fontsize=11, color=MUTED)
    return fig


def _price_page(bars: Sequence[Any], trades: Sequence[Mapping[str, Any]], label: str) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.suptitle(f"{label} through the session, with every trade", fontsize=14)
    ax = fig.add_axes((0.07, 0.12, 0.9, 0.78))
    x = date2num([_ist(b.ts) for b in bars])
    closes = [float(b.close) for b in bars]
    ax.plot(x, closes, color=EMA9_COLOUR, linewidth=1.1, label=f"{label} close")
    times = [b.ts for b in bars]

    def y_at(ts: datetime) -> float:
        i = max(0, min(len(times) - 1, sum(1 for t in times if t <= ts) - 1))
        return closes[i]

    entries = [(t["entry_ts"], y_at(t["entry_ts"])) for t in trades if t.get("entry_ts")]
    exits = [(t["exit_ts"], y_at(t["exit_ts"]), float(t.get("net") or 0)) for t in trades
             if t.get("exit_ts")]  # fmt: skip
    for t in trades:
        if t.get("entry_ts") and t.get("exit_ts"):
            colour = WIN if float(t.get("net") or 0) > 0 else LOSS
            ax.axvspan(
                date2num(_ist(t["entry_ts"])),
                date2num(_ist(t["exit_ts"])),
                alpha=0.12,
                color=colour,
                lw=0,
            )
    if entries:
        ex = date2num([_ist(e[0]) for e in entries])
        ax.scatter(ex, [e[1] for e in entries], marker="^", s=40, color=EMA9_COLOUR,
                   edgecolor="black", lw=0.5, zorder=3, label="entry")  # fmt: skip
    if exits:
        ax.scatter(date2num([_ist(e[0]) for e in exits]), [e[1] for e in exits], marker="X", s=45,
                   c=[WIN if e[2] > 0 else LOSS for e in exits], zorder=3,
                   label="exit (green: profit, red: loss)")  # fmt: skip
    ax.set_ylabel(f"{label} (Rs)")
    ax.set_xlabel("time (IST)")
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    return fig


def _equity_page(equity: Sequence[tuple[datetime, float]], trade_count: int) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    fig.suptitle(f"Equity and drawdown ({trade_count} trades)", fontsize=14)
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if equity:
        x = [_ist(ts) for ts, _ in equity]
        y = [v for _, v in equity]
        dd = [-d for d in drawdown(equity)]
        ax_eq.step(x, y, where="post", color=EMA9_COLOUR)
        ax_eq.axhline(0, color="#999999", linewidth=0.8)
        ax_dd.fill_between(x, dd, 0, step="post", color=LOSS, alpha=0.4)
        if x[-1] - x[0] < MIN_SPAN:  # a few trades close together: show them in context
            ax_eq.set_xlim(x[0] - MIN_SPAN / 2, x[-1] + MIN_SPAN / 2)
        ax_dd.xaxis.set_major_formatter(DateFormatter("%d %b %H:%M"))
    else:
        ax_eq.text(0.5, 0.5, "no closed trades", ha="center", transform=ax_eq.transAxes)
    ax_eq.set_ylabel("cumulative net P&L (Rs)")
    ax_dd.set_ylabel("drawdown (Rs)")
    ax_dd.set_xlabel("exit time (IST)")
    ax_eq.grid(alpha=0.3)
    ax_dd.grid(alpha=0.3)
    return fig


LINE = 0.0205  # one 8 pt line as a fraction of the page height
TOP, BOTTOM = 0.895, 0.05
REASON_CHARS = 150


def _trade_lines(t: Mapping[str, Any]) -> list[str]:
    """The wrapped 'entry: ...' and 'exit: ...' lines under a trade's row."""
    out = []
    for label, key in (("entry", "entry_reason"), ("exit", "exit_reason")):
        text = str(t.get(key) or "")
        out += textwrap.wrap(f"{label}: {text}", REASON_CHARS, subsequent_indent="      ") or [
            f"{label}:"
        ]
    return out


def paginate(trades: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Trade indices per page: as many whole trades (row + wrapped reasons) as fit."""
    room = int((TOP - BOTTOM) / LINE) - 1  # minus the header row
    pages: list[list[int]] = [[]]
    used = 0.0
    for i, t in enumerate(trades):
        need = 1 + len(_trade_lines(t)) + 0.5
        if pages[-1] and used + need > room:
            pages.append([])
            used = 0.0
        pages[-1].append(i)
        used += need
    return pages


def _trade_pages(trades: Sequence[Mapping[str, Any]]) -> list[Figure]:
    total = len(trades)
    chunks = paginate(trades)
    xs, x = [], 0.04
    for _, _, w in TRADE_COLUMNS[:-2]:
        xs.append(x)
        x += w * 1.3
    pages: list[Figure] = []
    for page_no, chunk in enumerate(chunks, start=1):
        fig = Figure(figsize=A4_LANDSCAPE)
        fig.text(
            0.04, 0.95, f"Trade list: {total} trades (page {page_no} of {len(chunks)})",
            fontsize=13, weight="bold",
        )  # fmt: skip
        fig.text(0.96, 0.95, "times IST · prices and P&L in Rs", ha="right", fontsize=9,
                 color=MUTED)  # fmt: skip
        if not chunk:
            fig.text(0.5, 0.5, "no closed trades", ha="center", fontsize=12)
        y = TOP
        fig.patches.append(
            Rectangle((0.035, y - 0.006), 0.93, LINE, transform=fig.transFigure,
                      facecolor=HEADER_BG, edgecolor="none")
        )  # fmt: skip
        if chunk:
            for (_, header, _), x in zip(TRADE_COLUMNS[:-2], xs, strict=True):
                fig.text(x, y, header, fontsize=8, weight="bold")
        y -= LINE * 1.3
        for i in chunk:
            t = trades[i]
            cells = [str(i + 1)] + [_cell(k, t.get(k)) for k, _, _ in TRADE_COLUMNS[1:-2]]
            for (key, _, _), x, text in zip(TRADE_COLUMNS[:-2], xs, cells, strict=True):
                colour = INK
                if key == "net" and t.get("net") is not None:
                    colour = WIN if float(t["net"]) > 0 else LOSS
                fig.text(x, y, text, fontsize=8, color=colour)
            y -= LINE
            for line in _trade_lines(t):
                fig.text(xs[1], y, line, fontsize=7.5, color=MUTED)
                y -= LINE
            y -= LINE * 0.5
        fig.text(0.96, 0.02, f"page {page_no} of {len(chunks)}", ha="right", fontsize=8,
                 color=MUTED)  # fmt: skip
        pages.append(fig)
    return pages


@dataclass(frozen=True)
class ReportData:
    """What one report shows: ``metrics`` maps names to values (e.g. ``Metrics.summary()``);
    ``trades`` are journal rows as dicts (keys as in ``TRADE_COLUMNS``; missing keys print
    blank); ``equity`` is (exit time, cumulative net P&L in rupees) per trade; ``bars`` the
    index candles."""

    run_id: str
    metrics: Mapping[str, float | int | None]
    trades: Sequence[Mapping[str, Any]]
    equity: Sequence[tuple[datetime, float]]
    meta: RunMeta = field(default_factory=RunMeta)
    bars: Sequence[Any] = ()
    price_label: str = "Index"


def build_figures(data: ReportData) -> list[Figure]:
    """The report's pages as matplotlib figures (pure; ``write_report`` saves them)."""
    trades, bars = data.trades, data.bars
    pages = [_title_page(data.run_id, data.meta, data.metrics, trades, bars)]
    params = effective_parameters(data.meta.config)
    if params:
        pages.extend(_parameter_pages(params))
    pages.append(_metrics_page(data.metrics, trades))
    if bars:
        pages.append(_price_page(bars, trades, data.price_label))
    return [*pages, _equity_page(data.equity, len(trades)), *_trade_pages(trades)]


def write_report(path: str | Path, data: ReportData) -> Path:
    """Write the PDF report of ``data`` to ``path`` and return it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = build_figures(data)
    info = {
        "Title": f"scalpflow session report {data.run_id}",
        "Subject": f"{len(data.trades)} trades",
    }
    with PdfPages(out, metadata=info) as pdf:
        for fig in figures:
            pdf.savefig(fig)
    return out


def report_from_db(
    conn: psycopg.Connection[Any],
    run_id: str,
    path: str | Path,
    metrics: Mapping[str, float | int | None] | None = None,
) -> Path:
    """Read a run's registration, trades and index candles; write the PDF (the monitor's
    and ``scalpflow backtest --report``'s, which passes the ``metrics`` it printed)."""
    rows = queries.trades(conn, run_id)
    if metrics is None:
        metrics = queries.trade_metrics(rows).summary()
    found = queries.run_meta(conn, run_id)
    meta = RunMeta(found.kind, found.started_at, found.note, found.config) if found else RunMeta()
    index = next(
        (i for i in queries.list_instruments(conn, run_id) if i.kind not in ("CE", "PE")), None
    )
    bars = queries.candles(conn, run_id, index.token, "1m", 400) if index else []
    data = ReportData(
        run_id,
        metrics,
        [asdict(r) for r in rows],
        queries.equity_points(rows),
        meta=meta,
        bars=bars,
        price_label=index.symbol if index else "Index",
    )
    return write_report(path, data)
