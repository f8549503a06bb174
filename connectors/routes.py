"""Where every event goes: one table of event type → Kafka topic and key, PostgreSQL rows.

Adding an event type means one line in ``ROUTES``: its Kafka topic (an attribute of
``flows.config.settings.Topics``, None when it lives in PostgreSQL only) and message key, its row
function (``connectors.postgres.rows``; None when it is not stored) and whether it belongs to the
trade journal (rows carry the event's own ``run_id`` and are written in the journal's table
order). The PostgreSQL sink, the dead-letter splitter, the trade journal and every Kafka
producer of the flows read it; a type with no route is a programming error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bytewax.connectors.kafka import KafkaSinkMessage

from connectors.kafka.serde import encode, ts_millis
from connectors.postgres import contract_notes, journal, quotes, rows
from connectors.postgres.rows import RowFn
from operators.ai.adaptive import AdaptiveStateChanged
from operators.events import (
    Bar,
    DeadLetter,
    Instrument,
    OptionAnalytics,
    RegimeClassified,
    RiskEvent,
    SignalGenerated,
)
from operators.market.quotes import Quote
from operators.trading.cost_ledger import ContractNote
from operators.trading.orders import (
    FillEvent,
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderExpired,
    OrderModified,
    OrderRejected,
    OrderTriggered,
)
from operators.trading.portfolio import PositionChanged, TradeClosed
from operators.trading.risk_limits import OrderApproved, OrderDenied

Message = KafkaSinkMessage[Any, bytes]


def _event_message(topic: str, key: str, event: Any) -> Message:
    return KafkaSinkMessage(
        key=key.encode(), value=encode(event), topic=topic, timestamp=ts_millis(event)
    )


def _dead_letter_message(topic: str, _key: str, d: DeadLetter) -> Message:
    """The raw payload as it arrived, with why and where from in the headers."""
    source = f"{d.source_topic}/{d.source_partition}/{d.source_offset}"
    return KafkaSinkMessage(
        key=d.key,
        value=d.raw,
        topic=topic,
        headers=[("reason", d.reason.encode()), ("source", source.encode())],
    )


def _account(event: Any) -> str:
    return str(event.account)


def _underlying(event: Any) -> str:
    return str(event.underlying)


@dataclass(frozen=True)
class Route:
    """Where one event type goes (see the module docstring)."""

    topic: str | None = None
    key: Callable[[Any], str] = _account
    rows: RowFn | None = None
    journal: bool = False
    message: Callable[[str, str, Any], Message] = _event_message


ROUTES: dict[type, Route] = {
    Bar: Route("bars", lambda b: str(b.candle.token), rows.bar_rows),
    DeadLetter: Route("dlq", lambda _d: "", rows.dead_letter_rows, message=_dead_letter_message),
    Instrument: Route(None, rows=rows.instrument_rows),
    OptionAnalytics: Route(None, rows=rows.analytics_rows),
    Quote: Route(None, rows=quotes.quote_rows),
    RegimeClassified: Route("regime", _underlying, rows.regime_rows),
    SignalGenerated: Route("signals", _underlying, rows.signal_rows),
    AdaptiveStateChanged: Route("ai_state", rows=rows.adaptive_rows),
    RiskEvent: Route("risk", rows=rows.risk_rows),
    OrderApproved: Route("orders", rows=rows.approval_rows),
    OrderDenied: Route("orders", rows=rows.denial_rows),
    ContractNote: Route(None, rows=contract_notes.contract_note_rows),
    # the trade journal
    OrderAccepted: Route("orders", rows=journal.order_terms_rows, journal=True),
    OrderRejected: Route("orders", rows=journal.order_terms_rows, journal=True),
    OrderModified: Route("orders", rows=journal.order_terms_rows, journal=True),
    OrderTriggered: Route("orders", rows=journal.order_status_rows, journal=True),
    OrderCancelled: Route("orders", rows=journal.order_status_rows, journal=True),
    OrderExpired: Route("orders", rows=journal.order_status_rows, journal=True),
    FillEvent: Route("fills", rows=journal.fill_rows, journal=True),  # partial and complete
    OrderEvent: Route("orders", journal=True),  # any other order event: published, not stored
    PositionChanged: Route(None, rows=journal.position_rows, journal=True),
    TradeClosed: Route(None, rows=journal.trade_rows, journal=True),
}

_resolved: dict[type, Route | None] = {}


def route(kind: type) -> Route | None:
    """The route of an event type: its own, else its nearest base class's (``OrderFilled``
    goes where ``FillEvent`` goes)."""
    try:
        return _resolved[kind]
    except KeyError:
        found = next((ROUTES[c] for c in kind.__mro__ if c in ROUTES), None)
        _resolved[kind] = found
        return found


def kafka_message(topics: Any, event: Any) -> Message | None:
    """The Kafka message for ``event`` on its topic (``topics``: a
    ``flows.config.settings.Topics``), or None for an event that lives in PostgreSQL only."""
    r = route(type(event))
    if r is None or r.topic is None:
        return None
    return r.message(getattr(topics, r.topic), r.key(event), event)
