"""Issue 13 item 5 on real Kafka and PostgreSQL: a feed gap trips the kill switch, the account
trades nothing until `scalpflow risk reset` (a command on the control topic, journaled as
OPERATOR_RESET), then trades again; a replay of the same topics gives the same journal."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from typer.testing import CliRunner

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.postgres.backtest_store import journal_hashes
from flows.cli.app import app
from flows.pipeline import PipelineConfig, build_flow, control_source, kafka_source, run_flow
from operators.market.sessions import IST
from tests.integration.helpers import create_topics, produce, unique_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

DAY = date(2026, 7, 7)
GAP = (datetime(2026, 7, 7, 9, 20, tzinfo=IST), datetime(2026, 7, 7, 9, 20, 40, tzinfo=IST))
RESET_AT = datetime(2026, 7, 7, 9, 22, tzinfo=IST)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def test_reset_re_arms_a_killed_account_and_replays_identically(
    kafka_bootstrap, pg_dsn, pg_conn, monkeypatch
) -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, date=DAY, duration_minutes=30))
    topics = unique_topics("it-reset")
    create_topics(kafka_bootstrap, topics)
    lo, hi = _ms(GAP[0]), _ms(GAP[1])
    produce(  # a 40 s silence of the whole feed: FEED_STALLED, then the kill switch
        kafka_bootstrap,
        topics.ticks,
        ((m.key, m.value, m.timestamp_ms) for m in market.raw_messages()
         if not lo <= m.timestamp_ms < hi),
    )  # fmt: skip
    monkeypatch.setenv("SCALPFLOW_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("SCALPFLOW_TOPIC_CONTROL", topics.control)
    result = CliRunner().invoke(
        app,
        ["risk", "reset", "--account", "paper", "--reason", "feed is back",
         "--at", RESET_AT.isoformat()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    instruments = {i.token: i for i in market.instruments()}

    def run(run_id: str) -> None:
        config = PipelineConfig(
            run_id=run_id, pg_dsn=pg_dsn, kafka_bootstrap=kafka_bootstrap, topics=topics
        )
        source = kafka_source(kafka_bootstrap, topics.ticks, tail=False)
        controls = control_source(kafka_bootstrap, topics.control, tail=False)
        run_flow(build_flow(source, instruments, config, f"reset-{run_id}", controls=controls))

    first, replay = f"it-{uuid.uuid4().hex[:8]}", f"it-{uuid.uuid4().hex[:8]}"
    run(first)
    events = pg_conn.execute(
        "SELECT ts, kind, detail FROM risk_events WHERE run_id = %s AND account = 'paper'"
        " ORDER BY ts, kind",
        (first,),
    ).fetchall()
    kills = [ts for ts, kind, _ in events if kind == "KILL_SWITCH"]
    resets = [(ts, detail) for ts, kind, detail in events if kind == "OPERATOR_RESET"]
    assert kills, f"no kill switch: {sorted({k for _, k, _ in events})}"
    assert kills[0] < RESET_AT
    assert len(resets) == 1
    assert resets[0][0] == RESET_AT.astimezone(UTC)
    assert resets[0][1].endswith(": feed is back")
    approved = pg_conn.execute(
        "SELECT min(ts), count(*) FROM risk_decisions WHERE run_id = %s AND decision = 'APPROVED'"
        " AND ts > %s AND ts < %s",
        (first, kills[0], RESET_AT),
    ).fetchone()
    assert approved is not None
    assert approved[1] == 0  # halted between the kill and the reset
    fills_after = pg_conn.execute(
        "SELECT count(*) FROM fills WHERE run_id = %s AND ts > %s", (first, RESET_AT)
    ).fetchone()
    assert fills_after is not None
    assert fills_after[0] > 0, "no trade after the reset"

    run(replay)
    assert journal_hashes(pg_dsn, replay) == journal_hashes(pg_dsn, first)
