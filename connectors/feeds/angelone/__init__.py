"""Angel One SmartAPI connector: login, instrument master, live feed to Kafka, backfill.

Import the SDK only through ``connectors.feeds.angelone._sdk.load_sdk`` (it neutralises the SDK's
import-time network call and its ``logs/`` directory in the working directory).
"""

from connectors.feeds.angelone.backfill import backfill_candles, chunk_range
from connectors.feeds.angelone.errors import (
    AngelOneError,
    AuthenticationError,
    BrokerUnavailableError,
    CredentialsError,
    InstrumentNotFoundError,
    InvalidTotpError,
    PacketDecodeError,
    RateLimitedError,
    RequestRejectedError,
)
from connectors.feeds.angelone.feed import AngelOneFeed, FeedAuth, FeedConfig, Subscription
from connectors.feeds.angelone.instruments import InstrumentMaster, exchange_type
from connectors.feeds.angelone.packets import packet_to_tick, parse_packet
from connectors.feeds.angelone.publisher import FeedPublisher
from connectors.feeds.angelone.session import AngelOneSession, SessionTokens
from connectors.feeds.angelone.settings import AngelOneCredentials, AngelOneSettings

__all__ = [
    "AngelOneCredentials",
    "AngelOneError",
    "AngelOneFeed",
    "AngelOneSession",
    "AngelOneSettings",
    "AuthenticationError",
    "BrokerUnavailableError",
    "CredentialsError",
    "FeedAuth",
    "FeedConfig",
    "FeedPublisher",
    "InstrumentMaster",
    "InstrumentNotFoundError",
    "InvalidTotpError",
    "PacketDecodeError",
    "RateLimitedError",
    "RequestRejectedError",
    "SessionTokens",
    "Subscription",
    "backfill_candles",
    "chunk_range",
    "exchange_type",
    "packet_to_tick",
    "parse_packet",
]
