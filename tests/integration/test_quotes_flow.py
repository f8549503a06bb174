"""The market flow stores each option's per-minute quote: on real Kafka and PostgreSQL, the
``quotes`` rows equal ``operators.market.quotes`` run straight over the ticks, and a rerun keeps
them."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import msgspec
import pytest

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from flows.pipeline import PipelineConfig, build_flow, kafka_source, run_flow
from operators.events import Tick
from operators.market.quotes import Quote, QuoteLogic, QuoteState
from tests.integration.helpers import create_topics, produce, unique_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROWS = (
    "SELECT token, minute, ts, ltp, bid, ask, bid_qty, ask_qty, oi, open_oi FROM quotes"
    " WHERE run_id = %s ORDER BY token, minute"
)


def test_the_flow_stores_every_options_minute_quote(kafka_bootstrap, pg_dsn, pg_conn) -> None:
    market = SyntheticMarket(
        SyntheticConfig(seed=13, date=date(2026, 7, 7), duration_minutes=3, strikes_each_side=1)
    )
    messages = list(market.raw_messages())
    topics = unique_topics("it-quotes")
    create_topics(kafka_bootstrap, topics, tick_partitions=2)
    produce(kafka_bootstrap, topics.ticks, ((m.key, m.value, m.timestamp_ms) for m in messages))
    run_id = f"it-{uuid.uuid4().hex[:8]}"
    config = PipelineConfig(
        run_id=run_id, pg_dsn=pg_dsn, kafka_bootstrap=kafka_bootstrap, topics=topics, trading=False
    )
    instruments = {i.token: i for i in market.instruments()}

    def run() -> None:
        source = kafka_source(kafka_bootstrap, topics.ticks, tail=False)
        run_flow(build_flow(source, instruments, config, flow_id=f"quotes-{run_id}"))

    run()
    logic = QuoteLogic()
    states: dict[str, QuoteState] = {}
    expected: list[Quote] = []
    for m in messages:  # per token in produced order: the order each partition keeps
        tick = msgspec.json.decode(m.value, type=Tick)
        expected += logic.on_tick(states.setdefault(tick.token, QuoteState()), tick)
    for state in states.values():
        expected += logic.flush(state)
    want = sorted(
        (q.token, q.minute, q.ts_event, Decimal(q.ltp) / 100, Decimal(q.bid) / 100,
         Decimal(q.ask) / 100, q.bid_qty, q.ask_qty, q.oi, q.open_oi)
        for q in expected
    )  # fmt: skip
    got = pg_conn.execute(ROWS, (run_id,)).fetchall()
    options = [t for t, i in instruments.items() if i.is_option]
    assert {r[0] for r in got} == set(options)  # every option quoted, the index not
    assert len(got) >= 3 * len(options)
    assert got == want
    run()  # the same input again: at-least-once output leaves the rows as they were
    assert pg_conn.execute(ROWS, (run_id,)).fetchall() == want
