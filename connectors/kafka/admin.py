"""Kafka plumbing: topic creation, a bounded producer, and topic inspection.

confluent-kafka (librdkafka) is the data plane: it produces ticks and Bytewax consumes with it.
kafka-python, a pure-Python client, does the inspection commands (`scalpflow topics`), where
a dependency-free client that is easy to read matters more than speed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.errors import BrokerUnavailableError as BrokerUnavailableError

log = logging.getLogger(__name__)

# topic -> default partition count (market data is the parallel one).
DEFAULT_TOPICS: dict[str, int] = {
    "md.ticks": 3,
    "md.dlq": 1,
    "md.bars": 3,
    "ai.regime": 1,
    "ai.state": 1,
    "trade.signals": 1,
    "trade.orders": 1,
    "trade.fills": 1,
    "risk.events": 1,
    "ctl.risk": 1,
}


_RDKAFKA_LOG = logging.getLogger("librdkafka")


class _DebugLevelLog:
    """Takes librdkafka's own log lines at DEBUG level (``logging.getLogger("librdkafka")``).

    With a broker down librdkafka writes a line per connection attempt to stderr, hundreds in
    a short outage; our callers report what failed in one line of their own.
    """

    def log(self, level: int, msg: str, *args: object) -> None:
        del level
        _RDKAFKA_LOG.debug(msg, *args)


RDKAFKA_LOGGER = _DebugLevelLog()


def client_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """librdkafka settings every client of ours starts from (its own log at DEBUG level)."""
    return {"bootstrap.servers": bootstrap, "logger": RDKAFKA_LOGGER, **extra}


def check_broker(bootstrap: str, timeout: float = 10.0) -> None:
    try:
        AdminClient(client_config(bootstrap)).list_topics(timeout=timeout)
    except KafkaException as exc:
        reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        msg = (
            f"Kafka at {bootstrap} does not answer ({reason}); start one with "
            "`scalpflow infra up` or infra/kafka/kafka.sh start"
        )
        raise BrokerUnavailableError(msg) from exc


def ensure_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create missing topics with these partition counts; existing ones are left alone."""
    admin = AdminClient(client_config(bootstrap))
    existing = set(admin.list_topics(timeout=10).topics)
    # Record timestamps are market time: time-based retention would delete a replayed day at once.
    config = {"retention.ms": "-1"}
    new = [
        NewTopic(t, num_partitions=n, replication_factor=1, config=config)
        for t, n in topics.items()
        if t not in existing
    ]
    if not new:
        return
    for topic, future in admin.create_topics(new, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
        log.info("created topic %s", topic)


class BoundedProducer:
    """A producer whose local queue is bounded: when full, ``produce`` waits for deliveries.

    Delivery failures are counted and logged, never ignored: ``flush`` raises if any record
    was not acknowledged.
    """

    def __init__(self, bootstrap: str, *, max_queued: int = 200_000, linger_ms: int = 20) -> None:
        self._producer = Producer(
            client_config(
                bootstrap,
                **{
                    "linger.ms": linger_ms,
                    "batch.num.messages": 10_000,
                    "queue.buffering.max.messages": max_queued,
                    "compression.type": "lz4",
                    "enable.idempotence": True,
                },
            )
        )
        self.sent = 0
        self.failed = 0
        self.last_error = ""

    def _on_delivery(self, err: object, _msg: object) -> None:
        if err is not None:
            self.failed += 1
            self.last_error = str(err)
            log.error("Kafka delivery failed: %s", err)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        timestamp_ms: int = 0,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    timestamp=timestamp_ms,
                    headers=headers,
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.05)  # queue full: wait for the broker (backpressure)
        self.sent += 1
        if self.sent % 10_000 == 0:
            self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining or self.failed:
            msg = (
                f"Kafka did not acknowledge {remaining} queued and {self.failed} failed records"
                f" (last error: {self.last_error or 'timeout'})"
            )
            raise BrokerUnavailableError(msg)


@dataclass(frozen=True)
class PartitionSummary:
    partition: int
    begin: int
    end: int


def topic_summary(
    bootstrap: str, topics: Iterable[str] | None = None
) -> dict[str, list[PartitionSummary]]:
    """Begin/end offsets per partition, read with kafka-python (pure Python, no librdkafka)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        names = (
            sorted(topics)
            if topics is not None
            else sorted(t for t in consumer.topics() if not t.startswith("__"))
        )
        out: dict[str, list[PartitionSummary]] = {}
        for name in names:
            parts = sorted(consumer.partitions_for_topic(name) or [])
            tps = [TopicPartition(name, p) for p in parts]
            begin = consumer.beginning_offsets(tps) if tps else {}
            end = consumer.end_offsets(tps) if tps else {}
            out[name] = [PartitionSummary(tp.partition, begin[tp], end[tp]) for tp in tps]
        return out
    finally:
        consumer.close()
