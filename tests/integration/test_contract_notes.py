"""Issue 15 on the real services: a thinned full synthetic day through Kafka and the whole flow
into PostgreSQL, three strategies and many fills; the stored contract note equals the one
recomputed from the fills table, and the journal's net P&L for the day is gross P&L minus the
note's charges, to the paisa. The report command then writes the note as CSV and PDF."""

from __future__ import annotations

import csv
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.postgres.contract_notes import daily_pnl, ledger_fills, stored_note
from flows.cli.app import app
from flows.config.settings import Topics
from flows.pipeline import PipelineConfig, build_flow, kafka_source, run_flow
from operators.market.sessions import session_close
from operators.trading.cost_ledger import note_from_fills
from tests.integration.helpers import create_topics, produce_market, unique_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

DAY = date(2026, 7, 7)


@pytest.fixture(scope="module")
def topics(kafka_bootstrap: str) -> Topics:
    """This module's topics (the session fixture deletes them: tests.topics)."""
    made = unique_topics("it-note")
    create_topics(kafka_bootstrap, made)
    return made


@pytest.fixture(scope="module")
def session(kafka_bootstrap: str, pg_dsn: str, topics: Topics) -> str:
    """The day traded through the flow; returns its run id."""
    market = SyntheticMarket(
        SyntheticConfig(seed=7, date=DAY, tick_rate_scale=0.05, index_tick_rate_scale=0.3)
    )
    produce_market(kafka_bootstrap, topics.ticks, market)
    run_id = f"it-note-{uuid.uuid4().hex[:8]}"
    config = PipelineConfig(
        run_id=run_id, pg_dsn=pg_dsn, kafka_bootstrap=kafka_bootstrap, topics=topics
    )
    instruments = {i.token: i for i in market.instruments()}
    source = kafka_source(kafka_bootstrap, topics.ticks, tail=False)
    run_flow(build_flow(source, instruments, config, flow_id=f"note-{run_id}"))
    return run_id


def test_journal_net_for_the_day_is_gross_minus_the_contract_note(session, pg_conn) -> None:
    run_id = session
    strategies = pg_conn.execute(
        "SELECT count(DISTINCT strategy), count(*), count(DISTINCT order_id) FROM fills"
        " WHERE run_id = %s",
        (run_id,),
    ).fetchone()
    assert strategies[0] >= 2, "a multi-strategy session"
    assert strategies[1] > strategies[2], "some orders filled in several pieces"
    note = stored_note(pg_conn, run_id, "paper", DAY)
    assert note is not None, "the flow wrote no contract note at session close"
    assert note.ts_event == session_close(DAY)
    assert len(note.lines) >= 2

    # the note again, independently, from the fills table (paise read back from rupees)
    fills = ledger_fills(pg_conn, run_id, "paper", DAY)
    recomputed = note_from_fills("paper", DAY, fills, note.ts_event)
    assert [
        (x.token, x.buy_value, x.sell_value, x.orders, x.charges, x.estimated)
        for x in recomputed.lines
    ] == [
        (x.token, x.buy_value, x.sell_value, x.orders, x.charges, x.estimated) for x in note.lines
    ]
    for line in note.lines:
        assert line.stt % 100 == 0  # STT to the rupee per scrip

    # the intraday square-off leaves the day flat, so gross = sell value − buy value
    (open_qty,) = pg_conn.execute(
        "SELECT coalesce(sum(abs(qty)), 0) FROM positions WHERE run_id = %s", (run_id,)
    ).fetchone()
    assert open_qty == 0
    gross = sum(f.qty * f.price * (1 if f.side == "SELL" else -1) for f in fills)
    pnl = daily_pnl(pg_conn, run_id, "paper", DAY)
    assert pnl.gross == gross
    assert pnl.estimated == sum(f.estimated for f in fills) == note.estimated
    assert pnl.true_up == note.true_up
    assert pnl.net == gross - note.charges  # to the paisa
    (trade_net,) = pg_conn.execute(
        "SELECT sum(net) FROM trades WHERE run_id = %s", (run_id,)
    ).fetchone()
    assert trade_net - Decimal(note.true_up) / 100 == Decimal(gross - note.charges) / 100


def test_report_command_writes_the_note_as_csv_and_pdf(
    session, pg_dsn, pg_conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALPFLOW_PG_DSN", pg_dsn)
    csv_path, pdf_path = tmp_path / "note.csv", tmp_path / "note.pdf"
    args = ["report", "contract-note", "--account", "paper", "--date", DAY.isoformat()]
    args += ["--run", session, "--csv", str(csv_path), "--pdf", str(pdf_path)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert pdf_path.read_bytes()[:5] == b"%PDF-"
    rows = list(csv.reader(csv_path.open()))
    header = rows.index(next(r for r in rows if r and r[0] == "Scrip"))
    total = next(r for r in rows if r and r[0] == "Total")
    note = stored_note(pg_conn, session, "paper", DAY)
    assert note is not None
    assert len(rows[header + 1 : rows.index(total)]) == len(note.lines)
    charges = dict(zip(rows[header], total, strict=True))["Total charges"]
    assert Decimal(charges.replace(",", "")) == Decimal(note.charges) / 100
    bad = CliRunner().invoke(app, ["report", "contract-note", "--account", "nobody",
                                   "--date", DAY.isoformat()])  # fmt: skip
    assert bad.exit_code == 1
    assert "has no fills" in bad.output
    assert "Traceback" not in bad.output
