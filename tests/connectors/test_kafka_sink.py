"""AsyncKafkaSink on the real broker: every record arrives in key order, refusals raise."""

from __future__ import annotations

import logging
import random

import bytewax.operators as op
import pytest
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main
from confluent_kafka.admin import AdminClient, NewTopic

from connectors import metrics
from connectors.kafka.admin import ensure_topics
from connectors.kafka.sink import AsyncKafkaSink, message_key
from flows.adapters import key_by
from tests.integration.helpers import consume_all
from tests.topics import topic_name


def _flow(messages: list[KafkaSinkMessage[bytes, bytes]], bootstrap: str) -> Dataflow:
    flow = Dataflow("kafka_sink_test")
    up = op.input("in", flow, TestingSource(messages, batch_size=7))
    op.output("out", key_by("keyed", up, message_key), AsyncKafkaSink(bootstrap))
    return flow


def _delete(bootstrap: str, *topics: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive its futures
    for future in admin.delete_topics(list(topics)).values():
        future.result()


def test_every_record_arrives_with_its_key_timestamp_and_headers(kafka_bootstrap: str) -> None:
    topic = topic_name("sink")
    ensure_topics(kafka_bootstrap, {topic: 3})
    messages = [
        KafkaSinkMessage(
            key=f"k{i % 5}".encode(),
            value=f"{i}".encode(),
            topic=topic,
            headers=[("n", str(i).encode())],
            timestamp=1_700_000_000_000 + i,
        )
        for i in range(1_000)
    ]
    try:
        run_main(_flow(messages, kafka_bootstrap))
        got = consume_all(kafka_bootstrap, topic)
        assert len(got) == len(messages)
        by_key: dict[bytes, list[int]] = {}
        for m in got:
            i = int(m.value())
            assert m.timestamp()[1] == 1_700_000_000_000 + i
            assert m.headers() == [("n", str(i).encode())]
            by_key.setdefault(m.key(), []).append(i)
        assert sorted(by_key) == [f"k{j}".encode() for j in range(5)]
        for ids in by_key.values():
            assert ids == sorted(ids)  # one key's records leave in order
    finally:
        _delete(kafka_bootstrap, topic)


def test_a_refused_record_is_logged_and_counted_and_the_rest_delivered(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker refuses a record larger than the topic's max.message.bytes (after the
    producer accepted it locally; random bytes, so lz4 cannot shrink it). The broker refuses
    the whole record batch it travels in, so neighbours may go with it: every record is
    either delivered or reported with its reason and counted, none vanishes."""
    topic = topic_name("sink.small")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    spec = NewTopic(topic, 1, 1, config={"max.message.bytes": "2000"})
    for future in admin.create_topics([spec]).values():
        future.result()
    messages = [
        KafkaSinkMessage(key=b"a", value=b"first", topic=topic),
        KafkaSinkMessage(key=b"b", value=random.Random(0).randbytes(50_000), topic=topic),
        KafkaSinkMessage(key=b"c", value=b"last", topic=topic),
    ]
    counter = metrics.KAFKA_REFUSED.labels(topic=topic)
    try:
        with caplog.at_level(logging.ERROR, logger="connectors.kafka.sink"):
            run_main(_flow(messages, kafka_bootstrap))
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert any("key b'b'" in line for line in refusals)
        assert all("too large" in line.lower() for line in refusals)
        assert counter._value.get() == len(refusals)
        delivered = {m.key() for m in consume_all(kafka_bootstrap, topic)}
        refused = {key for key in (b"a", b"b", b"c") if any(f"key {key!r}" in r for r in refusals)}
        assert b"b" not in delivered
        assert delivered | refused == {b"a", b"b", b"c"}
        assert not delivered & refused
    finally:
        _delete(kafka_bootstrap, topic)


def test_message_key_routes_missing_keys_together() -> None:
    assert message_key(KafkaSinkMessage(key=None, value=b"", topic="t")) == ""
    assert message_key(KafkaSinkMessage(key=b"26000", value=b"", topic="t")) == "26000"
