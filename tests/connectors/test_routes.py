"""The event registry: every event the operators define has a route, and routes agree with
the tables the sink writes and the topics the flows publish to."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime

import operators
from connectors.postgres import rows
from connectors.routes import ROUTES, kafka_message, route
from flows.config.settings import Topics
from operators.events import Event, RiskEvent, Tick
from operators.trading.orders import OrderCommandRejected, OrderFilled

# inputs and commands (imperative names): what the flows consume, not what they emit
NOT_EMITTED = {"Tick", "Candle", "SubmitOrder", "CancelOrder", "ModifyOrder", "FlattenAccount"}
# shared-field bases that are never emitted themselves (their subclasses are)
FIELD_BASES = {"RiskDecision"}
T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def _event_types() -> set[type]:
    for info in pkgutil.walk_packages(operators.__path__, "operators."):
        importlib.import_module(info.name)
    found: set[type] = set()
    todo = [Event]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def test_every_event_type_has_a_route() -> None:
    events = {
        t
        for t in _event_types()
        if t.__name__ not in NOT_EMITTED | FIELD_BASES and not issubclass(t, Tick)
    }
    assert len(events) > 20  # the walk found the events (not just a few)
    missing = sorted(t.__name__ for t in events if route(t) is None)
    assert missing == []


def test_routes_name_real_topics_and_tables() -> None:
    topic_names = set(Topics.model_fields)
    for kind, r in ROUTES.items():
        assert r.topic is None or r.topic in topic_names, kind
    assert rows.SQL.keys() >= {"candles", "fills", "orders", "orders.status", "quotes"}


def test_subclasses_take_their_base_route_and_inputs_have_none() -> None:
    assert route(OrderFilled) is route(OrderFilled.__mro__[1])  # FillEvent's
    assert route(OrderCommandRejected) is ROUTES[OrderCommandRejected.__mro__[1]]
    assert route(Tick) is None  # a tick in the outputs must fail loudly, not be republished


def test_kafka_message_uses_the_route_topic_and_key() -> None:
    topics = Topics(risk="t.risk")
    ev = RiskEvent(ts_event=T0, ts_recv=T0, account="acct-1", kind="HALT", detail="x")
    msg = kafka_message(topics, ev)
    assert msg is not None
    assert (msg.topic, msg.key) == ("t.risk", b"acct-1")
