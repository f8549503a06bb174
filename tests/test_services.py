"""The test services are real: a Kafka broker that round-trips a record, a migrated database."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from tests.topics import topic_name


def test_kafka_round_trip(kafka_bootstrap: str) -> None:
    topic = topic_name("services")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic, key=b"k", value=b"hello")
    assert producer.flush(15) == 0
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    got = None
    for _ in range(60):
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got = msg.value()
            break
    consumer.close()
    assert got == b"hello"


def test_migrations_applied(pg_conn) -> None:
    tables = {
        r[0] for r in pg_conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
    assert {"candles", "indicators", "signals", "risk_events", "runs"} <= tables
    versions = [r[0] for r in pg_conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions[0] == "001_core.sql"
