"""A local fake of Angel One SmartAPI (REST + SmartWebSocketV2) for tests and developers."""

from tests.fake_angelone.packets import ltp_packet, quote_packet, snap_packet
from tests.fake_angelone.server import (
    Close,
    FakeAngelOne,
    FakeCredentials,
    Send,
    SendRaw,
    Silent,
    Sleep,
    Stream,
    fake_candle,
    sample_master,
)

__all__ = [
    "Close",
    "FakeAngelOne",
    "FakeCredentials",
    "Send",
    "SendRaw",
    "Silent",
    "Sleep",
    "Stream",
    "fake_candle",
    "ltp_packet",
    "quote_packet",
    "sample_master",
    "snap_packet",
]
