"""Encode SmartWebSocketV2 binary frames for the fake server (independent of the parser).

Offsets follow DOMAIN.md literally with ``struct.pack_into`` at absolute positions, so a
mistake in the connector's parser is not mirrored here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

Level = tuple[int, int, int]  # (price paise, qty, orders)


def _header(
    buf: bytearray, mode: int, exchange_type: int, token: str, seq: int, ts_ms: int, ltp: int
) -> None:
    struct.pack_into("<B", buf, 0, mode)
    struct.pack_into("<B", buf, 1, exchange_type)
    raw = token.encode("ascii")
    buf[2 : 2 + len(raw)] = raw  # the rest of bytes 2..26 stays NUL
    struct.pack_into("<q", buf, 27, seq)
    struct.pack_into("<q", buf, 35, ts_ms)
    struct.pack_into("<q", buf, 43, ltp)


def ltp_packet(token: str, ltp: int, ts_ms: int, *, seq: int = 0, exchange_type: int = 2) -> bytes:
    buf = bytearray(51)
    _header(buf, 1, exchange_type, token, seq, ts_ms, ltp)
    return bytes(buf)


def _quote_fields(
    buf: bytearray,
    last_qty: int,
    avg: int,
    volume: int,
    tbq: float,
    tsq: float,
    ohlc: tuple[int, int, int, int],
) -> None:
    struct.pack_into("<q", buf, 51, last_qty)
    struct.pack_into("<q", buf, 59, avg)
    struct.pack_into("<q", buf, 67, volume)
    struct.pack_into("<d", buf, 75, tbq)
    struct.pack_into("<d", buf, 83, tsq)
    for i, value in enumerate(ohlc):
        struct.pack_into("<q", buf, 91 + 8 * i, value)


def quote_packet(
    token: str,
    ltp: int,
    ts_ms: int,
    *,
    seq: int = 0,
    exchange_type: int = 2,
    last_qty: int = 0,
    avg: int = 0,
    volume: int = 0,
    tbq: float = 0.0,
    tsq: float = 0.0,
    ohlc: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> bytes:
    buf = bytearray(123)
    _header(buf, 2, exchange_type, token, seq, ts_ms, ltp)
    _quote_fields(buf, last_qty, avg, volume, tbq, tsq, ohlc)
    return bytes(buf)


def snap_packet(
    token: str,
    ltp: int,
    ts_ms: int,
    *,
    ltt_ms: int = 0,
    oi: int = 0,
    bids: Sequence[Level] = (),
    asks: Sequence[Level] = (),
    asks_first: bool = True,
    upper: int = 0,
    lower: int = 0,
    **quote: Any,
) -> bytes:
    """A SNAP_QUOTE frame: a QUOTE frame (``quote`` takes ``quote_packet``'s keywords) with
    mode 3 and the depth block after it. ``asks_first`` puts the sell levels in the first five
    slots (and labels them with flag 1) to check that the parser decides sides by price, not
    position."""
    buf = bytearray(quote_packet(token, ltp, ts_ms, **quote)).ljust(379, b"\x00")
    struct.pack_into("<B", buf, 0, 3)
    struct.pack_into("<q", buf, 123, ltt_ms)
    struct.pack_into("<q", buf, 131, oi)
    struct.pack_into("<q", buf, 139, 0)
    sell, buy = (list(asks), 1), (list(bids), 0)
    groups = [sell, buy] if asks_first else [buy, sell]
    for g, (levels, flag) in enumerate(groups):
        for i in range(5):
            price, qty, orders = levels[i] if i < len(levels) else (0, 0, 0)
            offset = 147 + (g * 5 + i) * 20
            struct.pack_into("<H", buf, offset, flag)
            struct.pack_into("<q", buf, offset + 2, qty)
            struct.pack_into("<q", buf, offset + 10, price)
            struct.pack_into("<H", buf, offset + 18, orders)
    struct.pack_into("<q", buf, 347, upper)
    struct.pack_into("<q", buf, 355, lower)
    struct.pack_into("<q", buf, 363, 0)
    struct.pack_into("<q", buf, 371, 0)
    return bytes(buf)


def frame_token(frame: bytes) -> tuple[int, str] | None:
    """(exchange type, token) of a frame, or None if it is too short to say."""
    if len(frame) < 27:
        return None
    return frame[1], frame[2:27].split(b"\x00", 1)[0].decode("ascii", "replace")
