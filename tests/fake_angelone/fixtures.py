"""Pytest fixtures and Kafka helpers for tests that use the fake Angel One.

Import the fixtures into a test module: ``from tests.fake_angelone.fixtures import *``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from connectors.feeds.angelone.session import AngelOneSession
from connectors.feeds.angelone.settings import AngelOneCredentials, AngelOneSettings
from tests.fake_angelone.server import FakeAngelOne
from tests.topics import topic_name

__all__ = [
    "consume",
    "credentials_of",
    "fake_angelone",
    "header",
    "logged_in",
    "make_topics",
    "settings_for",
    "value_of",
]


@pytest.fixture
def fake_angelone() -> Iterator[FakeAngelOne]:
    with FakeAngelOne() as fake:
        yield fake


def credentials_of(fake: FakeAngelOne) -> AngelOneCredentials:
    c = fake.creds
    return AngelOneCredentials(
        api_key=SecretStr(c.api_key),
        client_code=SecretStr(c.client_code),
        mpin=SecretStr(c.mpin),
        totp_secret=SecretStr(c.totp_secret),
    )


def settings_for(fake: FakeAngelOne, log_dir: Path, **overrides: object) -> AngelOneSettings:
    values: dict[str, object] = {
        "root_url": fake.root_url,
        "ws_url": fake.ws_url,
        "instrument_master_url": fake.master_url,
        "sdk_log_dir": log_dir,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05,
        "login_rate_per_s": 100.0,
        "http_timeout_s": 5.0,
    }
    values.update(overrides)
    return AngelOneSettings(**values)  # type: ignore[arg-type]


def logged_in(fake: FakeAngelOne, log_dir: Path, **overrides: object) -> AngelOneSession:
    session = AngelOneSession(settings_for(fake, log_dir, **overrides), credentials_of(fake))
    session.login()
    return session


def make_topics(bootstrap: str, *names: str) -> list[str]:
    """Create fresh single-partition topics with unique names (prefixes + random suffix)."""
    topics = [topic_name(name) for name in names]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=1, replication_factor=1) for t in topics]
    )
    for future in futures.values():
        future.result(30)
    return topics


def value_of(msg: Message) -> bytes:
    value = msg.value()
    assert isinstance(value, bytes)
    return value


def header(msg: Message, name: str) -> str:
    headers = msg.headers() or []
    pairs = list(headers.items()) if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == name and isinstance(value, bytes):
            return value.decode()
    return ""


def consume(
    bootstrap: str, topic: str, count: int, timeout: float = 20.0, settle: float = 0.0
) -> list[Message]:
    """Read ``count`` records from the start of ``topic`` (then ``settle`` s more for extras)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    # assign() instead of subscribe(): no consumer-group join, so reading starts at once
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])
    out: list[Message] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                out.append(msg)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                out.append(msg)
    finally:
        consumer.close()
    return out
