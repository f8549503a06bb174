"""Decode SmartWebSocketV2 binary frames into ``Tick`` events (our parser, not the SDK's).

Layout (little-endian, prices int64 paise), see DOMAIN.md:
LTP = 51 bytes, QUOTE = 123 bytes, SNAP_QUOTE = 379 bytes. The SDK's own parser raises on a
short frame (which then triggers its reconnect) and its buy/sell labels for the best-5 levels
are disputed, so this module decides the sides by price and turns every structural problem
into a ``PacketDecodeError`` that the feed routes to the DLQ.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import msgspec

from connectors.feeds.angelone.errors import PacketDecodeError
from operators.events import Tick

MODE_LTP = 1
MODE_QUOTE = 2
MODE_SNAP_QUOTE = 3
MODE_NAMES = {MODE_LTP: "LTP", MODE_QUOTE: "QUOTE", MODE_SNAP_QUOTE: "SNAP_QUOTE"}
PACKET_LENGTH = {MODE_LTP: 51, MODE_QUOTE: 123, MODE_SNAP_QUOTE: 379}

# Exchange type byte → exchange segment name as used by the instrument master (exch_seg).
EXCHANGE_BY_TYPE = {1: "NSE", 2: "NFO", 3: "BSE", 4: "BFO", 5: "MCX", 7: "NCX", 13: "CDS"}
EXCHANGE_TYPE_BY_SEGMENT = {name: code for code, name in EXCHANGE_BY_TYPE.items()}

_HEADER = struct.Struct("<BB25sqqq")  # mode, exchange, token, seq, exchange ts ms, ltp
_QUOTE = struct.Struct("<qqqddqqqq")  # ltq, atp, volume, tbq, tsq, open, high, low, close
_SNAP = struct.Struct("<qqq")  # last traded ts, oi, oi change %
_LEVEL = struct.Struct("<HqqH")  # flag, qty, price, orders
_LIMITS = struct.Struct("<qq")  # upper circuit, lower circuit (52w high/low follow, unused)
# The ``Packet`` field each value of the QUOTE and SNAP blocks goes to, in layout order.
_QUOTE_FIELDS = (
    "last_qty",
    "avg_price",
    "cum_volume",
    "total_buy_qty",
    "total_sell_qty",
    "open",
    "high",
    "low",
    "close",
)
_SNAP_FIELDS = ("last_traded_ts_ms", "oi", "oi_change_pct")
_LIMITS_FIELDS = ("upper_circuit", "lower_circuit")
_DEPTH_OFFSET = 147
_LIMITS_OFFSET = 347
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DepthLevel(NamedTuple):
    price: int
    qty: int
    orders: int
    flag: int


class Packet(msgspec.Struct, frozen=True, kw_only=True):
    """Every field of one frame, prices in paise; QUOTE/SNAP fields are 0 for lighter modes."""

    mode: int
    exchange_type: int
    token: str
    seq: int
    exchange_ts_ms: int
    ltp: int
    last_qty: int = 0
    avg_price: int = 0
    cum_volume: int = 0
    total_buy_qty: float = 0.0
    total_sell_qty: float = 0.0
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    last_traded_ts_ms: int = 0
    oi: int = 0
    oi_change_pct: int = 0
    bids: tuple[DepthLevel, ...] = ()
    asks: tuple[DepthLevel, ...] = ()
    upper_circuit: int = 0
    lower_circuit: int = 0

    @property
    def exchange(self) -> str:
        return EXCHANGE_BY_TYPE[self.exchange_type]


def peek_token(frame: bytes) -> str | None:
    """Best-effort token of a (possibly broken) frame, for the DLQ record key."""
    raw = frame[2:27].split(b"\x00", 1)[0]
    try:
        token = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return token if token.isprintable() and token else None


def parse_packet(frame: bytes) -> Packet:
    """Decode one binary frame; raise ``PacketDecodeError`` with a short reason if malformed."""
    if len(frame) < _HEADER.size:
        msg = f"short packet: {len(frame)} bytes, a header needs {_HEADER.size}"
        raise PacketDecodeError(msg)
    mode, exchange_type, raw_token, seq, ts_ms, ltp = _HEADER.unpack_from(frame, 0)
    if mode not in PACKET_LENGTH:
        msg = f"unsupported subscription mode {mode}"
        raise PacketDecodeError(msg)
    need = PACKET_LENGTH[mode]
    if len(frame) < need:
        msg = f"short packet: {len(frame)} bytes, {MODE_NAMES[mode]} needs {need}"
        raise PacketDecodeError(msg)
    if exchange_type not in EXCHANGE_BY_TYPE:
        msg = f"unknown exchange type {exchange_type}"
        raise PacketDecodeError(msg)
    token = _decode_token(raw_token)
    if ts_ms <= 0:
        msg = f"exchange timestamp {ts_ms} is not a positive epoch-ms value"
        raise PacketDecodeError(msg)
    fields: dict[str, object] = {
        "mode": mode,
        "exchange_type": exchange_type,
        "token": token,
        "seq": seq,
        "exchange_ts_ms": ts_ms,
        "ltp": ltp,
    }
    if mode >= MODE_QUOTE:
        fields.update(zip(_QUOTE_FIELDS, _QUOTE.unpack_from(frame, _HEADER.size), strict=True))
    if mode == MODE_SNAP_QUOTE:
        snap = _SNAP.unpack_from(frame, PACKET_LENGTH[MODE_QUOTE])
        fields.update(zip(_SNAP_FIELDS, snap, strict=True))
        fields.update(zip(_LIMITS_FIELDS, _LIMITS.unpack_from(frame, _LIMITS_OFFSET), strict=True))
        levels = [
            DepthLevel(price=p, qty=q, orders=n, flag=f)
            for f, q, p, n in (
                _LEVEL.unpack_from(frame, _DEPTH_OFFSET + i * _LEVEL.size) for i in range(10)
            )
        ]
        fields["bids"], fields["asks"] = split_depth(levels, ltp)
    return Packet(**fields)  # type: ignore[arg-type]


def _decode_token(raw: bytes) -> str:
    text = raw.split(b"\x00", 1)[0]
    try:
        token = text.decode("ascii")
    except UnicodeDecodeError as exc:
        msg = "token is not ASCII"
        raise PacketDecodeError(msg) from exc
    if not token or not token.isprintable():
        msg = "token is empty or not printable"
        raise PacketDecodeError(msg)
    return token


def split_depth(
    levels: list[DepthLevel], ltp: int
) -> tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]]:
    """Return (bids best-first, asks best-first), deciding the sides by price, not by label.

    The packet carries two groups of five levels. The group quoted lower is the bid side.
    With only one group quoted, it is the ask side when it sits above the LTP and the bid
    side otherwise (with no LTP either, the SDK's flag decides: non-zero = buy).
    """
    first = [lv for lv in levels[:5] if lv.price > 0 and lv.qty > 0]
    second = [lv for lv in levels[5:] if lv.price > 0 and lv.qty > 0]
    if first and second:
        if _mean(first) <= _mean(second):
            bids, asks = first, second
        else:
            bids, asks = second, first
    elif first or second:
        group = first or second
        if ltp > 0:
            is_ask = _mean(group) > ltp
        else:
            is_ask = group[0].flag == 0
        bids, asks = ([], group) if is_ask else (group, [])
    else:
        bids, asks = [], []
    return (
        tuple(sorted(bids, key=lambda lv: -lv.price)),
        tuple(sorted(asks, key=lambda lv: lv.price)),
    )


def _mean(levels: list[DepthLevel]) -> float:
    return sum(lv.price for lv in levels) / len(levels)


def exchange_time(ms: int) -> datetime:
    """Epoch milliseconds → aware UTC datetime (exact, no float rounding)."""
    return _EPOCH + timedelta(milliseconds=ms)


def packet_to_tick(packet: Packet, ts_recv: datetime) -> Tick:
    """Build the ``Tick`` event for a decoded packet; the book is the best level of each side."""
    bid = packet.bids[0] if packet.bids else None
    ask = packet.asks[0] if packet.asks else None
    return Tick(
        ts_event=exchange_time(packet.exchange_ts_ms),
        ts_recv=ts_recv,
        token=packet.token,
        exchange=packet.exchange,
        ltp=packet.ltp,
        last_qty=packet.last_qty,
        cum_volume=packet.cum_volume,
        bid=bid.price if bid else 0,
        ask=ask.price if ask else 0,
        bid_qty=bid.qty if bid else 0,
        ask_qty=ask.qty if ask else 0,
        oi=packet.oi,
        seq=packet.seq,
    )
