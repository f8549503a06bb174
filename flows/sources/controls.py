"""Operator commands on the control topic (``ctl.risk``): ``scalpflow risk reset``.

A reset is a ``RiskEvent`` of kind ``OPERATOR_RESET`` published to the control topic, keyed by
account. The flow reads the topic as a second input and hands each command to its account's
stage, which orders it by event time with the ticks and signals (``operators.stages.account``),
re-arms the kill switch or lifts the halt, and journals the command as a risk event. The
command lives in Kafka like the ticks, so a replay of the same topics resets at the same
instant and gives the same journal.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

import bytewax.operators as op
import msgspec
from bytewax.connectors.kafka import OFFSET_BEGINNING, KafkaSource
from bytewax.dataflow import Stream
from bytewax.inputs import Source

from connectors.kafka.serde import encode, ts_millis
from operators.events import RiskEvent

if TYPE_CHECKING:
    from flows.trading import AccountItem

log = logging.getLogger(__name__)

RESET: Final = "OPERATOR_RESET"


def reset_command(account: str, reason: str, at: datetime | None = None) -> RiskEvent:
    """The journaled form of a reset: who asked, why, and when (event time ``at``, default
    now: a reset of a replayed or synthetic session names an instant in that session)."""
    ts = at or datetime.now(UTC)
    who = getpass.getuser()
    return RiskEvent(
        ts_event=ts,
        ts_recv=ts,
        account=account,
        kind="OPERATOR_RESET",
        detail=f"by {who}: {reason}",
    )


def publish(bootstrap: str, topic: str, command: RiskEvent) -> None:
    """Send one command and wait for the broker's ack (an operator wants to know it landed)."""
    from connectors.kafka.admin import BoundedProducer

    producer = BoundedProducer(bootstrap, linger_ms=0)
    producer.produce(
        topic, encode(command), key=command.account.encode(), timestamp_ms=ts_millis(command)
    )
    producer.flush()


def control_source(bootstrap: str, topic: str, *, tail: bool) -> Source[Any]:
    """The control topic from its beginning (a command is part of the run's input); without
    ``tail``, up to the end it had when the run started (``flows.sources.bounded_kafka``)."""
    from connectors.kafka.admin import RDKAFKA_LOGGER
    from flows.sources.bounded_kafka import BoundedKafkaSource

    add_config: dict[str, Any] = {"logger": RDKAFKA_LOGGER}
    if not tail:
        return BoundedKafkaSource(bootstrap, topic, add_config=add_config)
    return KafkaSource(
        brokers=[bootstrap],
        topics=[topic],
        tail=True,
        starting_offset=OFFSET_BEGINNING,
        raise_on_errors=False,
        add_config=cast("dict[str, str]", add_config),
    )


def _decode(raw: bytes | None) -> RiskEvent | None:
    if raw is None:
        return None
    try:
        ev = msgspec.json.decode(raw, type=RiskEvent)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        log.warning("ignoring a malformed control message: %s", exc)
        return None
    return ev if ev.kind == RESET else None


CONTROL_INPUT = "ctl"


def control_commands(
    flow: Any,
    source: Source[Any],
    accounts: Collection[str],
    key_of: Callable[[str], str] = str,
) -> Stream[Any]:
    """Reset commands for this run's accounts as ``(account key, [account item])``, the shape
    of the account stage's other inputs (``key_of``: the account's stage key, see
    ``flows.placement``); commands for other accounts are dropped."""
    known = frozenset(accounts)
    raw = op.input("controls_in", flow, source)

    def keyed(msg: Any) -> list[tuple[str, list[AccountItem]]]:
        value = getattr(msg, "value", None)
        ev = _decode(value)
        if ev is None or ev.account not in known:
            return []
        # an account item of an input of its own: not one of the
        # account stage's watermark inputs, so it only waits for the data to pass its time
        return [(key_of(ev.account), [(ev.account, CONTROL_INPUT, ev, 0.0)])]

    return op.flat_map("controls_keyed", raw, keyed)
