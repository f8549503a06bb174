"""The connectors' error family (I/O to Kafka, PostgreSQL, brokers, files)."""

from __future__ import annotations

from operators.errors import ScalpflowError


class ConnectorError(ScalpflowError):
    """An outside system or file could not be used; the message says which and what to do."""


class BrokerUnavailableError(ConnectorError, RuntimeError):
    """A broker did not answer or answered something unusable: Kafka (the message says where
    it looked and how to start one) or Angel One (retried, then raised)."""
