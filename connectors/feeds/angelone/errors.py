"""Errors of the Angel One connector: one root, short subclasses, never a secret in a message.

``BrokerUnavailableError`` (Angel One unreachable or answering nonsense) is the connectors'
one class for any broker, Kafka's too: re-exported here, it is not an ``AngelOneError``.
"""

from __future__ import annotations

from connectors.errors import BrokerUnavailableError, ConnectorError

__all__ = [
    "AngelOneError",
    "AuthenticationError",
    "BrokerUnavailableError",
    "CredentialsError",
    "InstrumentNotFoundError",
    "InvalidTotpError",
    "PacketDecodeError",
    "RateLimitedError",
    "RequestRejectedError",
]


class AngelOneError(ConnectorError, RuntimeError):
    """Root of every Angel One connector error."""


class CredentialsError(AngelOneError):
    """Credentials are missing, malformed, or the encrypted file cannot be opened."""


class AuthenticationError(AngelOneError):
    """The broker refused the login (wrong client code, MPIN or API key). Do not retry blindly."""

    def __init__(self, message: str, *, errorcode: str = "") -> None:
        super().__init__(message)
        self.errorcode = errorcode


class InvalidTotpError(AuthenticationError):
    """The broker refused the TOTP: the secret is wrong or this machine's clock is off."""


class RateLimitedError(AngelOneError):
    """The broker answered HTTP 403 "exceeding access rate" and retries ran out."""


class InstrumentNotFoundError(AngelOneError, LookupError):
    """No instrument in the master matches the lookup."""


class PacketDecodeError(ValueError):
    """A websocket frame does not follow the documented binary layout (it goes to the DLQ)."""


class RequestRejectedError(AngelOneError):
    """The broker understood the request and refused it (bad parameters, no data); no retry."""
