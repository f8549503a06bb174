"""One fuzz session on the real services (issue 12): a short synthetic trading session with
seeded bad records mixed in (``connectors.feeds.synthetic.bad_records``), run through the whole
flow, and what came out of it. Shared by tests/integration/test_bad_input.py and
benchmarks/fuzz_ticks.py."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg

from connectors.feeds.synthetic import SyntheticMarket
from connectors.feeds.synthetic.bad_records import Record, mix
from connectors.kafka.admin import BoundedProducer
from flows.config.settings import Topics
from flows.pipeline import PipelineConfig, build_flow, kafka_source, run_flow
from operators.events import Instrument
from operators.market.validation import ValidationConfig
from tests.integration.helpers import consume_all, create_topics
from tests.markets import synthetic_market

VALIDATION = ValidationConfig(strict=True)
FILLS = "SELECT (to_jsonb(f) - 'run_id')::text FROM fills f WHERE run_id = %s ORDER BY 1"


def session_market(minutes: int = 30) -> SyntheticMarket:
    """30 minutes, ATM ± 2, 0.3× tick rate: ~42k ticks, and gamma_scalp trades its opening
    window (as tests/flows/test_backtest.py's session)."""
    return synthetic_market(7, minutes=minutes, strikes=2, rate=0.3)


def session_records(market: SyntheticMarket, bad: int, seed: int) -> list[Record]:
    return mix(((m.key, m.value, m.timestamp_ms) for m in market.raw_messages()), bad, seed)


@dataclass(frozen=True)
class Outcome:
    run_id: str
    dlq: Counter[str]  # dead letters on the DLQ topic by reason code
    dlq_rows: int  # dead_letters rows of this run's tick topic
    candle_ticks: int  # sum of ticks over the run's 1-minute candles
    fills: list[str]


def run_session(
    bootstrap: str,
    dsn: str,
    conn: psycopg.Connection[Any],
    topics: Topics,
    records: list[Record],
    instruments: dict[str, Instrument],
) -> Outcome:
    """Produce ``records`` (3 tick partitions), run the trading flow over them to the end of
    the topic, and read back dead letters, candles and fills. An exception here is the flow
    stopping."""
    create_topics(bootstrap, topics, tick_partitions=3)
    producer = BoundedProducer(bootstrap)
    for r in records:
        producer.produce(topics.ticks, r.value, key=r.key, timestamp_ms=r.timestamp_ms)  # type: ignore[arg-type]
    producer.flush()
    run_id = f"fuzz-{uuid.uuid4().hex[:8]}"
    config = PipelineConfig(
        run_id=run_id,
        pg_dsn=dsn,
        kafka_bootstrap=bootstrap,
        topics=topics,
        validation=VALIDATION,
    )
    source = kafka_source(bootstrap, topics.ticks, tail=False)
    run_flow(build_flow(source, instruments, config, flow_id=f"fuzz-{run_id}"))
    dlq = Counter(
        dict(m.headers())["reason"].decode().split(":", 1)[0]
        for m in consume_all(bootstrap, topics.dlq)
    )
    row = conn.execute(
        "SELECT count(*) FROM dead_letters WHERE run_id = %s AND source_topic = %s",
        (run_id, topics.ticks),
    ).fetchone()
    ticks = conn.execute(
        "SELECT coalesce(sum(ticks), 0) FROM candles WHERE run_id = %s AND interval = '1m'",
        (run_id,),
    ).fetchone()
    fills = [r[0] for r in conn.execute(FILLS, (run_id,)).fetchall()]
    assert row is not None
    assert ticks is not None
    return Outcome(run_id, dlq, int(row[0]), int(ticks[0]), fills)
