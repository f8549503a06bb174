"""A Kafka sink for Bytewax that does not wait for the broker on every batch.

Bytewax 0.21.1's ``KafkaSink`` calls ``producer.flush()`` after each batch, so the flow thread
blocks on broker acknowledgements once per batch (21 % of a live run's main thread, profiled).
Here ``write_batch`` only queues records in librdkafka (which sends them in the background)
and serves delivery reports; the sink waits for acknowledgements only where recovery needs
them: at every epoch end (``snapshot``, before Bytewax may record the epoch as done) and at
``close``. A record the broker refused is never dropped quietly: the next ``write_batch``,
``snapshot`` or ``close`` raises ``KafkaDeliveryError`` naming how many and why.

While the broker is unreachable, ``snapshot`` keeps waiting (logging every ``warn_every``
seconds) for up to ``outage_budget``: the epoch cannot complete, so the flow stops pulling
input (backpressure) instead of losing output. librdkafka reconnects by itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import KafkaError, Message, Producer

from connectors import metrics
from connectors.kafka.admin import BrokerUnavailableError, client_config

log = logging.getLogger(__name__)


class KafkaDeliveryError(BrokerUnavailableError):
    """The broker refused records, or did not acknowledge them within the outage budget."""


@dataclass(frozen=True)
class KafkaSinkConfig:
    """Producer tuning; the defaults favour throughput with idempotent, ordered delivery."""

    linger_ms: int = 5
    max_queued: int = 500_000
    outage_budget_s: float = 600.0
    warn_every_s: float = 10.0


class _Partition(StatefulSinkPartition[KafkaSinkMessage[Any, Any], None]):
    def __init__(
        self,
        bootstrap: str,
        config: KafkaSinkConfig,
        name: str,
        on_outage: Callable[[KafkaDeliveryError], None] | None = None,
    ) -> None:
        self._config = config
        self._name = name
        self._on_outage = on_outage
        self._producer = Producer(
            client_config(
                bootstrap,
                **{
                    "linger.ms": config.linger_ms,
                    "queue.buffering.max.messages": config.max_queued,
                    # retries never duplicate or reorder a key's records
                    "enable.idempotence": True,
                    "compression.type": "lz4",
                    "message.timeout.ms": int(config.outage_budget_s * 1000),
                },
            )
        )
        self.sent = 0
        self.refused = 0
        self._timed_out = 0
        self._last_timeout = ""

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        if err.code() == KafkaError._MSG_TIMED_OUT:
            self._timed_out += 1  # the outage outlasted the budget: raised by _wait_for_acks
            self._last_timeout = str(err)
            return
        self.refused += 1
        topic = msg.topic() or "?"
        metrics.KAFKA_REFUSED.labels(topic=topic).inc()
        log.error(
            "Kafka refused a record for %s (key %r, %d bytes): %s",
            topic,
            msg.key(),
            len(msg.value() or b""),
            err.str(),
        )

    def _raise_timed_out(self) -> None:
        if self._timed_out:
            msg = (
                f"Kafka did not acknowledge {self._timed_out} record(s) from {self._name} "
                f"within {self._config.outage_budget_s:.0f} s ({self._last_timeout}); "
                "is the broker up?"
            )
            raise KafkaDeliveryError(msg)

    def write_batch(self, values: list[KafkaSinkMessage[Any, Any]]) -> None:
        produce = self._producer.produce
        on_delivery = self._on_delivery
        for m in values:
            if m.topic is None:
                msg = f"no topic for a record of {self._name} (key {m.key!r}): a routing bug"
                raise ValueError(msg)
            headers: Any = m.headers or None
            while True:
                try:
                    produce(
                        m.topic,
                        m.value,
                        m.key,
                        -1 if m.partition is None else m.partition,
                        headers=headers,
                        timestamp=m.timestamp,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:  # local queue full: wait for the broker (backpressure)
                    self._producer.poll(0.05)
        self.sent += len(values)
        self._producer.poll(0)  # serve delivery reports without waiting

    def _wait_for_acks(self) -> None:
        start = time.monotonic()
        last_warn = start
        while True:
            remaining = self._producer.flush(1.0)
            self._raise_timed_out()
            if remaining == 0:
                return
            now = time.monotonic()
            if now - start > self._config.outage_budget_s:
                msg = (
                    f"Kafka did not acknowledge {remaining} record(s) from {self._name} "
                    f"within {self._config.outage_budget_s:.0f} s; is the broker up?"
                )
                error = KafkaDeliveryError(msg)
                if self._on_outage is not None:
                    self._on_outage(error)  # e.g. a clear stop of the run process
                raise error
            if now - last_warn >= self._config.warn_every_s:
                last_warn = now
                log.warning(
                    "Kafka unreachable for %.0f s: %d record(s) from %s wait for the broker",
                    now - start,
                    remaining,
                    self._name,
                )

    def snapshot(self) -> None:
        self._wait_for_acks()

    def close(self) -> None:
        self._wait_for_acks()


@dataclass(frozen=True)
class AsyncKafkaSink(FixedPartitionedSink[KafkaSinkMessage[Any, Any], None]):
    """Takes ``(key, KafkaSinkMessage)`` pairs (each message names its topic).

    Route by the record key so that one key's records leave through one producer, in order;
    use one partition per Bytewax process, as for ``PostgresSink``.
    """

    bootstrap: str
    _: KW_ONLY
    partitions: int = 1
    config: KafkaSinkConfig = field(default_factory=KafkaSinkConfig)
    on_outage: Callable[[KafkaDeliveryError], None] | None = None

    def __post_init__(self) -> None:
        if self.partitions < 1:
            msg = f"partitions must be >= 1, got {self.partitions}"
            raise ValueError(msg)

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(self.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Partition:
        name = f"{step_id}-kafka-{for_part}"
        return _Partition(self.bootstrap, self.config, name, self.on_outage)


def message_key(message: KafkaSinkMessage[Any, Any]) -> str:
    """Sink routing key: the record key (dead letters without one share a route)."""
    key = message.key
    if key is None:
        return ""
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
