"""Shared helpers for integration tests on the real Kafka broker and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import timedelta

from confluent_kafka import Consumer, TopicPartition

from connectors.feeds.synthetic import SyntheticMarket
from connectors.kafka.admin import BoundedProducer, ensure_topics
from flows.config.settings import Topics
from tests.topics import topic_name

#: How each journal table of a run is read back to compare runs: ordered by its natural key.
JOURNAL_ORDER = {
    "orders": "order_id",
    "fills": "fill_id",
    "trades": "trade_id",
    "positions": "1, 2, 3, 4",
    "risk_decisions": "order_id",
    "signals": "signal_id",
    "regimes": "ts",
}


def journal_queries(*tables: str) -> dict[str, str]:
    """``SELECT *`` of one run's rows of each of ``tables``, in ``JOURNAL_ORDER``."""
    return {t: f"SELECT * FROM {t} WHERE run_id = %s ORDER BY {JOURNAL_ORDER[t]}" for t in tables}


def unique_topics(prefix: str) -> Topics:
    tag = topic_name(prefix)
    return Topics(
        ticks=f"{tag}.md.ticks",
        dlq=f"{tag}.md.dlq",
        bars=f"{tag}.md.bars",
        regime=f"{tag}.ai.regime",
        ai_state=f"{tag}.ai.state",
        signals=f"{tag}.trade.signals",
        orders=f"{tag}.trade.orders",
        fills=f"{tag}.trade.fills",
        risk=f"{tag}.risk.events",
        control=f"{tag}.ctl.risk",
    )


def create_topics(bootstrap: str, topics: Topics, tick_partitions: int = 3) -> None:
    spec = {name: 1 for name in topics.model_dump().values()}
    spec[topics.ticks] = tick_partitions
    ensure_topics(bootstrap, spec)


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes, int]]) -> int:
    producer = BoundedProducer(bootstrap)
    n = 0
    for key, value, ts_ms in messages:
        producer.produce(topic, value, key=key, timestamp_ms=ts_ms)
        n += 1
    producer.flush()
    return n


def produce_market(bootstrap: str, topic: str, market: SyntheticMarket) -> int:
    """Every wire message of a synthetic session, stamped with its event time."""
    return produce(
        bootstrap, topic, ((m.key, m.value, m.timestamp_ms) for m in market.raw_messages())
    )


def cli_env(pg_dsn: str, kafka_bootstrap: str, topics: Topics) -> dict[str, str]:
    """The environment a ``scalpflow`` subprocess reads its database, broker and topics from."""
    return {
        **os.environ,
        "SCALPFLOW_PG_DSN": pg_dsn,
        "SCALPFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        **{f"SCALPFLOW_TOPIC_{k.upper()}": v for k, v in topics.model_dump().items()},
    }


def consume_all(bootstrap: str, topic: str, timeout: timedelta = timedelta(seconds=20)) -> list:
    """Every record of ``topic`` from the beginning to its current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    out = []
    for p in sorted(meta.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high <= low:
            continue
        consumer.assign([TopicPartition(topic, p, low)])
        got = 0
        while got < high - low:
            msg = consumer.poll(timeout.total_seconds())
            assert msg is not None, f"timed out reading {topic}[{p}]"
            assert msg.error() is None, msg.error()
            out.append(msg)
            got += 1
    consumer.close()
    return out
