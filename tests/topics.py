"""Names for the Kafka topics tests create, so that each test session deletes its own.

Every name starts with this pytest process's tag; the session fixture in ``tests/conftest.py``
deletes the topics carrying it when the session ends. Sessions running side by side on one
broker never touch each other's topics.
"""

from __future__ import annotations

import os
import uuid

SESSION_TAG = f"pytest-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def topic_name(name: str) -> str:
    """A fresh topic name: ``<session tag>.<name>.<random>``."""
    return f"{SESSION_TAG}.{name}.{uuid.uuid4().hex[:8]}"
