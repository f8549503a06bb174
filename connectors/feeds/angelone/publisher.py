"""Kafka output of the feed: ticks, dead letters and feed-health risk events.

The producer queue is bounded (``queue.buffering.max.messages``). When it is full,
``produce`` raises ``BufferError``; we then serve delivery callbacks with ``poll`` and try
again, so a slow broker slows the websocket reader (TCP backpressure) instead of growing
memory without bound. Record timestamps are event time (DESIGN invariant 9).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

import msgspec
from confluent_kafka import KafkaError, Message, Producer

from connectors.feeds.angelone import metrics
from operators.events import RiskEvent, Tick

log = logging.getLogger(__name__)


def epoch_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


class FeedPublisher:
    """Produce feed output to Kafka with a bounded queue (thread-safe)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        ticks_topic: str = "md.ticks",
        dlq_topic: str = "md.dlq",
        risk_topic: str = "risk.events",
        max_buffered_messages: int = 100_000,
        source: str = "angelone",
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        if max_buffered_messages <= 0:
            msg = f"max_buffered_messages must be positive, got {max_buffered_messages}"
            raise ValueError(msg)
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "queue.buffering.max.messages": max_buffered_messages,
            "linger.ms": 5,
            "enable.idempotence": True,
            "acks": "all",
            "client.id": f"scalpflow-{source}-feed",
        }
        config.update(extra_config or {})
        self._producer = Producer(config)
        self.ticks_topic = ticks_topic
        self.dlq_topic = dlq_topic
        self.risk_topic = risk_topic
        self.source = source
        self._encoder = msgspec.json.Encoder()
        self._lock = threading.Lock()
        self.delivery_errors = 0

    def publish_tick(self, tick: Tick) -> None:
        self._publish_event(self.ticks_topic, tick.token, tick)

    def publish_dead_letter(
        self, raw: bytes, reason: str, key: str | None, ts_ms: int | None = None
    ) -> None:
        headers = [("reason", reason.encode()), ("source", self.source.encode())]
        self._produce(self.dlq_topic, key.encode() if key else None, raw, ts_ms, headers)

    def publish_risk(self, event: RiskEvent) -> None:
        self._publish_event(self.risk_topic, event.account, event)

    def _publish_event(self, topic: str, key: str, event: Tick | RiskEvent) -> None:
        """An event as JSON under ``key``, stamped with its event time."""
        self._produce(
            topic, key.encode(), self._encoder.encode(event), epoch_ms(event.ts_event), None
        )

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for outstanding deliveries; returns how many are still queued."""
        return int(self._producer.flush(timeout))

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        ts_ms: int | None,
        headers: list[tuple[str, bytes]] | None,
    ) -> None:
        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": self._delivered}
        if ts_ms is not None:
            kwargs["timestamp"] = ts_ms
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                break
            except BufferError:
                metrics.PRODUCER_FULL.inc()
                self._producer.poll(0.1)
        self._producer.poll(0)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.delivery_errors += 1
            metrics.DELIVERY_ERRORS.inc()
            log.error("Kafka delivery to %s failed: %s", msg.topic(), err)
