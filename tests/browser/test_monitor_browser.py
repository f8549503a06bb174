"""The monitor as a person sees it: a real Streamlit server over a real demo session, driven
in headless Chromium (Debian's ``chromium`` through Playwright for Python).

Streamlit draws in JavaScript, so only a browser shows what is on screen. Every page is
opened, its rendered content asserted (chart traces, chain rows, filters changing the rows,
downloads producing files) and a full-page screenshot saved in ``tests/artifacts/``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pypdf
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from connectors.files.model_store import save_model
from tests.conftest import fresh_database
from tests.operators.test_regime import fitted

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = os.environ.get("SCALPFLOW_CHROMIUM", "/usr/bin/chromium")
WAIT_MS = 120_000  # a contended CI machine renders slowly; assertions wait, never time
DEMO = ["--minutes", "40", "--rate", "0.25", "--strikes", "4", "--seed", "17"]
DEMO_DATE = "2026-07-07"
expect.set_options(timeout=WAIT_MS)
RISK_EVENTS = (
    ("bala", "KILL_SWITCH", "DRAWDOWN: 5.1% of capital"),
    ("chitra", "KILL_SWITCH", "FEED_STALLED: 31 s"),
    ("chitra", "OPERATOR_RESET", "ops: feed restored"),
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_dsn(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database holding a 40-minute demo session (long enough for regimes), traded
    with a trained regime model (the regime tests' forest, fitted on synthetic regimes) so
    the AI panel has class probabilities to show."""
    with fresh_database(pg_server_dsn, "scalpflow_browser") as dsn:
        data = tmp_path_factory.mktemp("demo")
        save_model(fitted(), data / "models")
        env = os.environ | {
            "SCALPFLOW_PG_DSN": dsn,
            "SCALPFLOW_DATA_DIR": str(data),
            "SCALPFLOW_MODELS_DIR": str(data / "models"),
        }
        cmd = [sys.executable, "-m", "flows.cli.app", "demo", "--no-ui", *DEMO, "--date", DEMO_DATE]
        done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        with psycopg.connect(dsn, autocommit=True) as conn:  # an operator's day on top
            conn.cursor().executemany(
                "INSERT INTO risk_events (run_id, ts, account, kind, detail)"
                " SELECT run_id, %s::timestamptz, %s, %s, %s FROM runs",
                [(f"{DEMO_DATE} 09:50+05:30", a, k, d) for a, k, d in RISK_EVENTS],
            )
        yield dsn


@pytest.fixture(scope="module")
def monitor_url(demo_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run dashboards/monitor.py`` on a free port, until the module ends."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("streamlit") / "server.log").open("w")
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "dashboards" / "monitor.py"),
        "--server.headless", "true", "--server.port", str(port),
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        "--", "--dsn", demo_dsn,
    ]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                assert server.poll() is None, "streamlit exited; see its log"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
    p = context.new_page()
    p.set_default_timeout(WAIT_MS)
    yield p
    context.close()


def _open(page: Page, url: str, name: str, heading: str) -> None:
    page.goto(f"{url}/?page={name}")
    expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()


def _shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"monitor-{name}.png"
    page.wait_for_load_state("networkidle")
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": 1500, "height": max(1000, int(height))})  # the page scrolls
    page.wait_for_timeout(500)  # inside Streamlit's own container: grow it to show it all
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def _legend(page: Page, nth: int) -> list[str]:
    return page.locator(".js-plotly-plot").nth(nth).locator(".legendtext").all_text_contents()


def _db(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def _number(value: float, decimals: int) -> re.Pattern[str]:
    """``value`` rounded as the monitor rounds it, however the grid prints it (55 or 55.0)."""
    whole, _, frac = f"{value:.{decimals}f}".partition(".")
    frac = frac.rstrip("0")
    return re.compile(rf"(?<![\d.]){whole}" + (rf"\.{frac}0*" if frac else r"(\.0+)?") + r"(?!\d)")


def _table(page: Page, column: str) -> Locator:
    """The rendered data grid whose header has ``column`` (its accessible table)."""
    return page.locator("[data-testid='stDataFrame']").filter(
        has=page.locator("th", has_text=column)
    )


def test_desk_page(page: Page, monitor_url: str, demo_dsn: str) -> None:
    _open(page, monitor_url, "desk", "Live desk")
    expect(page.locator(".js-plotly-plot")).to_have_count(3)  # price, smile, ATM IV
    legend = _legend(page, 0)
    for name in ("price", "EMA 9", "EMA 21", "VWAP", "RSI 14", "ATR 14 (₹)", "entries", "exits"):
        assert name in legend
    assert page.locator(".js-plotly-plot").nth(0).locator(".trace").count() >= 9
    assert _legend(page, 1) == ["CE IV", "PE IV"]
    chain = _table(page, "strike")
    ((strikes,),) = _db(
        demo_dsn,
        "SELECT count(DISTINCT strike) FROM instruments WHERE kind IN ('CE', 'PE') AND expiry ="
        " (SELECT min(expiry) FROM instruments WHERE kind IN ('CE', 'PE'))",
    )
    expect(chain.locator("tbody tr")).to_have_count(min(strikes, 13))  # ATM ± 6 strikes
    expect(chain.locator("tbody")).to_contain_text("◆")
    for column in ("CE OI", "CE OI chg", "CE bid", "CE ask", "CE LTP"):
        expect(chain.locator("th", has_text=re.compile(f"^{column}$"))).to_have_count(1)
    # the ATM row shows the stored quote: a two-sided book around the LTP, open interest
    headers = [t.strip() for t in chain.locator("thead th").all_inner_texts()]
    atm = [
        t.strip()
        for t in chain.locator("tbody tr", has_text="◆").locator("th, td").all_inner_texts()
    ]
    cell = dict(zip(headers, atm, strict=False))
    bid, ask, ltp = (float(cell[f"CE {k}"].replace(",", "")) for k in ("bid", "ask", "LTP"))
    assert 0 < bid < ask
    assert bid - 20 < ltp < ask + 20  # the last trade, near the book
    assert int(cell["CE OI"].replace(",", "")) > 0
    ((quoted, options),) = _db(
        demo_dsn,
        "SELECT (SELECT count(DISTINCT token) FROM quotes),"
        " (SELECT count(*) FROM instruments WHERE kind IN ('CE', 'PE'))",
    )
    assert quoted == options  # every option's quotes were stored
    expect(page.get_by_text(re.compile(r"chain as of 09:\d\d:\d\d IST"))).to_be_visible()
    assert "UTC" not in page.locator("[data-testid=stMain]").inner_text()
    _shot(page, "desk")


def test_ai_page(page: Page, monitor_url: str, demo_dsn: str) -> None:
    _open(page, monitor_url, "ai", "AI panel")
    expect(page.get_by_text("Rules fallback", exact=True)).to_be_visible()
    # regimes, class probabilities, multipliers, weights
    expect(page.locator(".js-plotly-plot")).to_have_count(4)
    assert any(t.startswith("regime ") for t in _legend(page, 0))
    assert _legend(page, 1) == ["TRENDING", "RANGING", "HIGH_VOL"]  # a line per class
    assert _legend(page, 2)  # a size-multiplier line per account/strategy
    ((version, probabilities),) = _db(
        demo_dsn,
        "SELECT model_version, probabilities FROM regimes ORDER BY ts DESC LIMIT 1",
    )
    assert version.startswith("rf-")
    expect(page.get_by_text(version, exact=True)).to_be_visible()
    table = _table(page, "probability %")
    expect(table.locator("tbody tr")).to_have_count(3)
    for regime, p in probabilities.items():  # the latest minute's, as stored
        expect(table.locator("tbody tr", has_text=regime)).to_contain_text(_number(100 * p, 1))
    _shot(page, "ai")


def test_trades_page_filters_and_downloads(page: Page, monitor_url: str, demo_dsn: str) -> None:
    ((total, asha),) = _db(
        demo_dsn, "SELECT count(*), count(*) FILTER (WHERE account = 'asha') FROM trades"
    )
    assert 0 < asha < total  # the filter must change the rows
    _open(page, monitor_url, "trades", "Trade history")
    expect(page.get_by_text(f"{total} of {total} trades")).to_be_visible()
    trades = _table(page, "exit (IST)")
    expect(trades.locator("tbody tr")).to_have_count(min(total, 10))  # rows in view
    page.locator("[data-testid='stMultiSelect']").filter(has_text="Account").locator(
        "input"
    ).click()
    page.get_by_role("option", name="asha").click()
    page.keyboard.press("Escape")
    expect(page.get_by_text(f"{asha} of {total} trades")).to_be_visible()
    expect(trades.locator("tbody tr")).to_have_count(min(asha, 10))
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    csv_path = ARTIFACTS / "trades.csv"
    csv_download.value.save_as(csv_path)
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("exit (IST),entry (IST),account")
    assert len(lines) == 1 + asha  # header + exactly the filtered trades
    assert all(",asha," in line for line in lines[1:])
    with page.expect_download() as excel_download:
        page.get_by_role("button", name="Download for Excel").click()
    excel_path = ARTIFACTS / "trades-excel.csv"
    excel_download.value.save_as(excel_path)
    assert excel_path.read_bytes().startswith("\ufeffexit (IST)".encode())
    expect(page.locator(".js-plotly-plot")).to_have_count(1)  # equity per strategy
    _shot(page, "trades")


def test_summary_page_and_pdf(page: Page, monitor_url: str) -> None:
    _open(page, monitor_url, "summary", "Session summary")
    expect(page.get_by_text("Daily P&L")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(2)  # equity, drawdown
    page.get_by_role("button", name="Build PDF report").click()
    with page.expect_download() as pdf_download:
        page.get_by_role("button", name="Download PDF").click()
    pdf_path = ARTIFACTS / "report.pdf"
    pdf_download.value.save_as(pdf_path)
    assert pdf_path.read_bytes().startswith(b"%PDF-")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "2", str(pdf_path),
         str(ARTIFACTS / "report-title")],
        check=True,
    )  # fmt: skip
    assert (ARTIFACTS / "report-title-1.png").stat().st_size > 10_000  # the title page
    assert (ARTIFACTS / "report-title-2.png").stat().st_size > 10_000  # strategy parameters
    pages = pypdf.PdfReader(pdf_path).pages
    title, params = pages[0].extract_text(), pages[1].extract_text()
    assert "Accounts: asha (capital Rs" in title
    assert "Regime model: rf-" in title
    assert "Strategy parameters" in params
    _shot(page, "summary")


def test_risk_page(page: Page, monitor_url: str) -> None:
    _open(page, monitor_url, "risk", "Risk")
    state = _table(page, "kill switch")
    expect(state.locator("tbody tr")).to_have_count(2)  # bala tripped, chitra reset
    expect(state.locator("tbody")).to_contain_text("DRAWDOWN: 5.1% of capital")
    expect(page.locator("code", has_text="scalpflow risk reset --account bala")).to_be_visible()
    resets = _table(page, "event").filter(has_text="OPERATOR_RESET")
    expect(resets.locator("tbody")).to_contain_text("07 Jul 2026 09:50:00")
    _shot(page, "risk")


def test_accounts_page(page: Page, monitor_url: str) -> None:
    _open(page, monitor_url, "accounts", "Accounts")
    board = _table(page, "return %")
    expect(board.locator("tbody tr")).to_have_count(3)  # the demo's three accounts
    for name in ("asha", "bala", "chitra"):
        expect(board.locator("tbody")).to_contain_text(name)
    _shot(page, "accounts")
