"""The PDF backtest report: a valid multi-page PDF whose pages show the run's trade count."""

from __future__ import annotations

import io
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pypdf
from matplotlib.text import Text

from dashboards import report
from tests.dashboards.conftest import new_run_id, populate

T0 = datetime(2025, 1, 6, 4, 0, tzinfo=UTC)


def _trades(n: int) -> tuple[list[dict[str, Any]], list[tuple[datetime, float]]]:
    trades, equity, total = [], [], 0.0
    for i in range(n):
        net = 40.0 if i % 3 else -25.5
        total += net
        exit_ts = T0 + timedelta(minutes=3 * i + 2)
        trades.append(
            {
                "symbol": "NIFTY07JAN2524000CE",
                "strategy": "momentum_breakout",
                "direction": "LONG",
                "qty": 75,
                "entry_ts": T0 + timedelta(minutes=3 * i),
                "exit_ts": exit_ts,
                "entry_price": 100.5,
                "exit_price": 101.05,
                "net": net,
                "entry_reason": "EMA9 crossed above EMA21 with volume 1.8x average and RSI 61",
                "exit_reason": "TARGET" if net > 0 else "STOP",
            }
        )
        equity.append((exit_ts, total))
    return trades, equity


def pdf_pages(data: bytes) -> int:
    """Page objects in a PDF (``/Type /Page``, not the ``/Pages`` tree node)."""
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


def pdf_text(data: bytes) -> str:
    """The text of every page, extracted by pypdf, ligatures unfolded (NFKC) and runs of
    white space made one space, so checks do not depend on how the PDF lays text out.

    A hand-written reader of matplotlib's TJ arrays used to be here: it lost glyphs such as
    the "ff" of a random run id, which made ``test_report_from_db`` fail now and then.
    """
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    text = unicodedata.normalize("NFKC", "\n".join(page.extract_text() for page in pages))
    return re.sub(r"\s+", " ", text)


def test_write_report_is_a_multi_page_pdf_with_the_trade_count(tmp_path: Path) -> None:
    trades, equity = _trades(37)
    metrics = {"trades": 37, "win_rate": 24 / 37, "profit_factor": math.inf, "sharpe_daily": None}
    path = report.write_report(tmp_path / "sub" / "r.pdf", "bt-37", metrics, trades, equity)
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    # metrics, equity/drawdown, then 37 trades at 30 per page = 2 pages
    assert pdf_pages(data) == 4
    text = pdf_text(data)
    assert "Trades: 37" in text
    assert "Trade list: 37 trades (page 2 of 2)" in text
    assert "64.9%" in text  # win rate formatted as a percentage
    assert "STOP" in text


def test_figures_show_trade_count_and_every_trade() -> None:
    trades, equity = _trades(5)
    figures = report.build_figures("bt-5", {"trades": 5}, trades, equity)
    assert len(figures) == 3
    texts = [t.get_text() for fig in figures for t in fig.findobj(Text)]
    cells = [
        [c.get_text().get_text() for (row, col), c in sorted(table.get_celld().items()) if col == 0]
        for ax in figures[2].axes
        for table in ax.tables
    ]
    assert "Trades: 5" in texts
    assert "Equity and drawdown (5 trades)" in texts
    assert "Trade list: 5 trades (page 1 of 1)" in texts
    assert cells == [["#", "1", "2", "3", "4", "5"]]


def test_empty_run_still_writes_a_report(tmp_path: Path) -> None:
    data = report.write_report(tmp_path / "e.pdf", "bt-0", {}, [], []).read_bytes()
    assert data.startswith(b"%PDF-")
    assert pdf_pages(data) == 3
    assert "Trades: 0" in pdf_text(data)


def test_drawdown_and_metric_format() -> None:
    pts = [(T0, 10.0), (T0, 4.0), (T0, 12.0), (T0, -3.0)]
    assert report.drawdown(pts) == [0.0, 6.0, 0.0, 15.0]
    assert report.drawdown([(T0, -5.0)]) == [5.0]
    assert report.format_metric("win_rate", 0.5) == "50.0%"
    assert report.format_metric("profit_factor", math.inf) == "inf"
    assert report.format_metric("sharpe_daily", None) == "-"
    assert report.format_metric("trades", 1234) == "1,234"


def test_report_from_db(pg_conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    run = populate(pg_conn, new_run_id("bt"), kind="backtest")
    path = report.report_from_db(pg_conn, run.run_id, tmp_path / "db.pdf")
    data = path.read_bytes()
    assert pdf_pages(data) == 3
    text = pdf_text(data)
    assert f"Trades: {run.trades}" in text
    assert f"run {run.run_id}" in text
    assert "95.73" in text  # net P&L in rupees
