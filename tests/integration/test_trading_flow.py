"""Issue 4/5 on the real services: orders and ticks through the whole flow over Kafka into
PostgreSQL and the trade.* / risk.events topics; a rerun leaves every journal table unchanged."""

from __future__ import annotations

import uuid
from datetime import date

import msgspec
import pytest

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from flows.pipeline import PipelineConfig, build_flow, kafka_source, run_flow
from tests.integration.helpers import (
    JOURNAL_ORDER,
    consume_all,
    create_topics,
    journal_queries,
    produce_market,
    unique_topics,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

JOURNAL = journal_queries(*JOURNAL_ORDER)  # every table


def snapshot(conn, run_id: str) -> dict[str, list]:
    return {name: conn.execute(sql, (run_id,)).fetchall() for name, sql in JOURNAL.items()}


def test_trading_flow_journals_orders_and_fills_and_rerun_is_idempotent(
    kafka_bootstrap, pg_dsn, pg_conn
) -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, date=date(2026, 7, 7), duration_minutes=30))
    topics = unique_topics("it-trade")
    create_topics(kafka_bootstrap, topics)
    produce_market(kafka_bootstrap, topics.ticks, market)
    run_id = f"it-{uuid.uuid4().hex[:8]}"
    config = PipelineConfig(
        run_id=run_id, pg_dsn=pg_dsn, kafka_bootstrap=kafka_bootstrap, topics=topics
    )
    instruments = {i.token: i for i in market.instruments()}

    def run() -> None:
        source = kafka_source(kafka_bootstrap, topics.ticks, tail=False)
        run_flow(build_flow(source, instruments, config, flow_id=f"trade-{run_id}"))

    run()
    first = snapshot(pg_conn, run_id)
    assert first["signals"], "the session produced no signal"
    assert first["fills"], "no order was filled"
    assert first["orders"]
    assert len(first["regimes"]) >= 1
    fills_topic = consume_all(kafka_bootstrap, topics.fills)
    assert len(fills_topic) == len(first["fills"])
    orders_topic = consume_all(kafka_bootstrap, topics.orders)
    kinds = {msgspec.json.decode(m.value())["type"] for m in orders_topic}
    assert {"OrderAccepted", "OrderApproved"} <= kinds
    assert consume_all(kafka_bootstrap, topics.regime)

    run()
    assert snapshot(pg_conn, run_id) == first
