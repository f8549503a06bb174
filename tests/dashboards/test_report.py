"""The PDF backtest report: a valid multi-page PDF whose pages show the run's trade count."""

from __future__ import annotations

import io
import json
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pypdf
from matplotlib.text import Text

from dashboards import queries, report
from flows.backtest.engine import write_pdf
from flows.backtest.spec import BacktestResult
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


REASON = "EMA9 crossed above EMA21 with volume 1.8x average and RSI 61"


def test_write_report_is_a_multi_page_pdf_with_the_trade_count(tmp_path: Path) -> None:
    trades, equity = _trades(37)
    metrics = {"trades": 37, "win_rate": 24 / 37, "profit_factor": math.inf, "sharpe_daily": None}
    path = report.write_report(
        tmp_path / "sub" / "r.pdf", report.ReportData("bt-37", metrics, trades, equity)
    )
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    pages = report.paginate(trades)
    assert [i for page in pages for i in page] == list(range(37))  # each trade once, in order
    assert len(pages) > 1
    # title, results, equity/drawdown, then the trade pages
    assert pdf_pages(data) == 3 + len(pages)
    text = pdf_text(data)
    assert "scalpflow session report" in text
    n = len(pages)
    assert f"Trade list: 37 trades (page {n} of {n})" in text
    assert "Win rate 64.9%" in text  # a human label next to its formatted value
    assert "Profit factor (gross wins / gross losses) inf" in text
    assert "Session: Mon 06 Jan 2025, 09:30 to 11:20 IST" in text  # IST, labelled
    assert REASON in text  # wrapped, never cut
    assert "STOP" in text


def test_figures_show_trade_count_and_every_trade() -> None:
    trades, equity = _trades(5)
    figures = report.build_figures(report.ReportData("bt-5", {"trades": 5}, trades, equity))
    assert len(figures) == 4  # no candles: no price page
    texts = [t.get_text() for fig in figures for t in fig.findobj(Text)]
    assert "Equity and drawdown (5 trades)" in texts
    assert "Trade list: 5 trades (page 1 of 1)" in texts
    page = [t.get_text() for t in figures[3].findobj(Text)]
    assert [x for x in page if x in {"1", "2", "3", "4", "5", "6"}] == ["1", "2", "3", "4", "5"]
    assert page.count(f"entry: {REASON}") == 5


def test_title_page_names_strategies_and_parameters() -> None:
    trades, equity = _trades(3)
    config = {
        "seed": 7,
        "accounts": [
            {"id": "asha", "strategies": [{"name": "momentum_breakout", "params": {}}]},
            {"id": "bala", "strategies": [{"name": "vwap_reversal", "params": {"rsi_max": 35}}]},
        ],
    }
    meta = report.RunMeta(kind="demo", started_at=T0, note="a note", config=config)
    figures = report.build_figures(
        report.ReportData("d-1", {"net_pnl_rs": 54.5}, trades, equity, meta=meta)
    )
    texts = [t.get_text() for t in figures[0].findobj(Text)]
    texts += [
        c.get_text().get_text()
        for ax in figures[0].axes
        for t in ax.tables
        for c in t.get_celld().values()
    ]
    assert "run d-1 · demo" in texts
    assert "Run started 06 Jan 2025 09:30 IST" in texts
    assert "Rs 54.50" in texts
    assert {"asha", "momentum_breakout", "defaults", "bala", "vwap_reversal", "rsi_max=35"} <= set(
        texts
    )
    assert "Run parameters: seed = 7" in texts


def test_empty_run_still_writes_a_report(tmp_path: Path) -> None:
    data = report.write_report(
        tmp_path / "e.pdf", report.ReportData("bt-0", {}, [], [])
    ).read_bytes()
    assert data.startswith(b"%PDF-")
    assert pdf_pages(data) == 4
    assert "no closed trades" in pdf_text(data)


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
    assert pdf_pages(data) == 5  # title, results, NIFTY price with trades, equity, trades
    text = pdf_text(data)
    assert f"run {run.run_id} · backtest" in text
    assert "NIFTY through the session, with every trade" in text
    assert "Trade list: 3 trades (page 1 of 1)" in text
    assert "95.73" in text  # net P&L in rupees
    assert "test backtest run" in text  # the run's note


def test_backtest_report_shows_the_runs_range_accounts_and_parameters(
    pg_conn: psycopg.Connection[Any], pg_dsn: str, tmp_path: Path
) -> None:
    """``scalpflow backtest --report`` writes the monitor's report of the run, title page and
    parameters included, with the metrics the command printed."""
    run = populate(pg_conn, new_run_id("bt"), kind="backtest")
    config = {
        "from": "2025-01-06T03:45:00+00:00",
        "to": "2025-01-08T10:00:00+00:00",
        "regime_model": None,
        "accounts": [
            {"id": "asha", "capital_rupees": 500000.0,
             "strategies": [{"name": "momentum_breakout", "params": {"stop_pct": 0.4}}]},
            {"id": "bala", "capital_rupees": 250000.0,
             "strategies": [{"name": "vwap_reversal", "params": {}}]},
        ],
    }  # fmt: skip
    pg_conn.execute(
        "UPDATE runs SET config = %s WHERE run_id = %s", (json.dumps(config), run.run_id)
    )
    metrics = queries.trade_metrics(queries.trades(pg_conn, run.run_id))
    result = BacktestResult(run.run_id, "c0ffee", metrics, 0, 0, "", "", {}, 0.0)
    data = write_pdf(tmp_path / "bt.pdf", result, pg_dsn).read_bytes()
    assert pdf_pages(data) == 6  # title, parameters, results, price, equity, trades
    pages = [
        re.sub(r"\s+", " ", unicodedata.normalize("NFKC", p.extract_text()))
        for p in pypdf.PdfReader(io.BytesIO(data)).pages
    ]
    title, params = pages[0], pages[1]
    assert f"run {run.run_id} · backtest" in title
    assert "Data range: 06 Jan 2025 09:15 to 08 Jan 2025 15:30 IST" in title
    assert "Accounts: asha (capital Rs 500,000), bala (capital Rs 250,000)" in title
    assert "Regime model: none, the rules classify" in title
    assert "stop_pct=0.4" in title  # the override, per account
    assert "Rs 95.73" in title  # the printed metrics' net P&L
    assert "Strategy parameters" in params
    assert "momentum_breakout stop_pct 0.4 set" in params
    assert "momentum_breakout target_pct 0.5 default" in params
    assert "vwap_reversal rsi_max 30.0 default" in params


def test_parameter_sets_of_one_strategy_are_told_apart_by_their_accounts() -> None:
    same = {"name": "momentum_breakout", "params": {}}
    tuned = {"name": "momentum_breakout", "params": {"target_pct": 0.6}}
    config = {
        "accounts": [
            {"id": "asha", "strategies": [same]},
            {"id": "bala", "strategies": [same]},
            {"id": "chitra", "strategies": [tuned, {"name": "no_such_plugin", "params": {"k": 1}}]},
        ]
    }
    rows = report.effective_parameters(config)
    assert list(dict.fromkeys(r[0] for r in rows)) == [
        "momentum_breakout (asha, bala)", "momentum_breakout (chitra)", "no_such_plugin"
    ]  # fmt: skip
    assert ("momentum_breakout (chitra)", "target_pct", "0.6", "set") in rows
    assert ("momentum_breakout (asha, bala)", "target_pct", "0.5", "default") in rows
    assert [r for r in rows if r[0] == "no_such_plugin"] == [("no_such_plugin", "k", "1", "set")]
