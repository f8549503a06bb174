"""Seeded bad records mixed into a real synthetic session, each tagged with the dead-letter
reason code the flow must give it (issue 12's fuzz harness: tests/integration/test_bad_input.py,
benchmarks/fuzz_ticks.py).

Every bad record is derived from the good message it follows (same token, times and prices,
then broken one way), so it looks like what a buggy feed or an attacker would send mid-session:
invalid JSON, non-UTF-8 bytes, wrong types, missing fields or ``type``, unknown fields (strict
mode), NaN/inf/negative/zero/huge prices, huge or negative quantities, crossed books, absurd
and skewed times, stale (out-of-order) ticks, oversize payloads, unknown tokens, exact
duplicates, null keys and tombstones. The expected codes assume the flow's default
``ValidationConfig`` with ``strict=True``. A good message keeps ``expect=None``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from connectors.feeds.synthetic.market import UNKNOWN_TOKEN
from operators.events import Tick

Obj = dict[str, object]


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    expect: str | None  # the dead-letter reason code; None: a good tick
    kind: str = "good"


def _enc(obj: object) -> bytes:
    return msgspec.json.encode(obj)


def _with(obj: Obj, **changes: object) -> bytes:
    return _enc({**obj, **changes})


def _without(obj: Obj, name: str) -> bytes:
    return _enc({k: v for k, v in obj.items() if k != name})


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def _shift(obj: Obj, tick: Tick, delta: timedelta) -> bytes:
    return _with(obj, ts_event=_iso(tick.ts_event + delta))


@dataclass(frozen=True)
class _Ctx:
    raw: bytes
    obj: Obj
    tick: Tick
    first_price: int  # the token's first good price of the session (its band reference)
    rng: random.Random


_NOT_UTF8 = b'"exchange":"\xff\xfe'

# kind -> (expected code, how to break the good message). Keys stay the token unless noted.
_Breaker = Callable[[_Ctx], bytes | None]
KINDS: dict[str, tuple[str, _Breaker]] = {
    "truncated_json": ("INVALID_JSON", lambda c: c.raw[: c.rng.randrange(1, len(c.raw) - 1)]),
    "not_json": ("INVALID_JSON", lambda c: b"ltp=" + c.raw),
    "empty_bytes": ("INVALID_JSON", lambda c: b""),
    "nan_price": ("INVALID_JSON", lambda c: c.raw.replace(b'"ltp":', b'"ltp":NaN,"x":', 1)),
    "non_utf8": (
        "INVALID_JSON",
        lambda c: c.raw.replace(b'"exchange":"', b'"exchange":"\xff\xfe', 1),
    ),
    "array": ("SCHEMA", lambda c: b"[" + c.raw + b"]"),
    "null_json": ("SCHEMA", lambda c: b"null"),
    "deep_nesting": ("SCHEMA", lambda c: b"[" * 5000),
    "string_price": ("SCHEMA", lambda c: _with(c.obj, ltp=str(c.tick.ltp))),
    "float_price": ("SCHEMA", lambda c: _with(c.obj, ltp=c.tick.ltp + 0.5)),
    "inf_price": ("SCHEMA", lambda c: c.raw.replace(b'"ltp":', b'"ltp":1e400,"x":', 1)),
    "int_token": (
        "SCHEMA",
        lambda c: _with(c.obj, token=int(c.tick.token) if c.tick.token.isdigit() else 1),
    ),
    "epoch_number_time": ("SCHEMA", lambda c: _with(c.obj, ts_event=1_700_000_000)),
    "missing_ltp": ("SCHEMA", lambda c: _without(c.obj, "ltp")),
    "missing_token": ("SCHEMA", lambda c: _without(c.obj, "token")),
    "missing_ts": ("SCHEMA", lambda c: _without(c.obj, "ts_event")),
    "missing_type": ("MISSING_TYPE", lambda c: _without(c.obj, "type")),
    "other_type": ("SCHEMA", lambda c: _with(c.obj, type="Bar")),
    "unknown_field": ("UNKNOWN_FIELD", lambda c: _with(c.obj, padding="x" * 64)),
    "oversize": ("PAYLOAD_TOO_LARGE", lambda c: _with(c.obj, padding="x" * 20_000)),
    "unknown_token": ("UNKNOWN_TOKEN", lambda c: _with(c.obj, token=UNKNOWN_TOKEN)),
    "negative_price": ("NEGATIVE_PRICE", lambda c: _with(c.obj, ltp=-c.tick.ltp)),
    "zero_price": ("ZERO_PRICE", lambda c: _with(c.obj, ltp=0)),
    "price_1e15": ("PRICE_LIMIT", lambda c: _with(c.obj, ltp=10**15)),
    "price_2p63": ("PRICE_LIMIT", lambda c: _with(c.obj, ltp=2**63 - 3)),
    "price_1e30": ("PRICE_LIMIT", lambda c: _with(c.obj, ltp=10**30)),
    "huge_ask": ("PRICE_LIMIT", lambda c: _with(c.obj, ask=10**16)),
    # beyond both the ×20 band and its ₹200 slack (ValidationConfig), on the tick grid
    "price_band": ("PRICE_BAND", lambda c: _with(c.obj, ltp=c.first_price * 100 + 4_000_000)),
    "huge_volume": ("QUANTITY_LIMIT", lambda c: _with(c.obj, cum_volume=2**63 - 3)),
    "negative_volume": ("NEGATIVE_QUANTITY", lambda c: _with(c.obj, cum_volume=-1)),
    "off_grid": ("OFF_GRID_PRICE", lambda c: _with(c.obj, ltp=c.tick.ltp + 1)),
    "crossed_book": ("CROSSED_BOOK", lambda c: _with(c.obj, bid=c.tick.ask + 5, ask=c.tick.ask)),
    "time_1970": ("TIME_RANGE", lambda c: _with(c.obj, ts_event="1970-01-01T00:00:00Z")),
    "time_2100": ("TIME_RANGE", lambda c: _with(c.obj, ts_event="2100-01-01T04:00:00Z")),
    "time_both_2100": (
        "TIME_RANGE",
        lambda c: _with(c.obj, ts_event="2100-01-01T04:00:00Z", ts_recv="2100-01-01T04:00:00Z"),
    ),
    "naive_time": ("SCHEMA", lambda c: _with(c.obj, ts_event="2026-07-08T04:00:00")),
    "future_skew": ("TIME_SKEW", lambda c: _shift(c.obj, c.tick, timedelta(hours=1))),
    "stale_out_of_order": ("TIME_SKEW", lambda c: _shift(c.obj, c.tick, -timedelta(minutes=15))),
    "duplicate": ("DUPLICATE", lambda c: c.raw),
    "resent_duplicate": (
        "DUPLICATE",
        lambda c: _with(c.obj, ts_recv=_iso(c.tick.ts_recv + timedelta(milliseconds=3)), seq=0),
    ),
    "tombstone": ("EMPTY_MESSAGE", lambda c: None),
}
#: Kinds sent with a null Kafka key (the rest keep the token as key).
NULL_KEY = frozenset({"tombstone", "null_json", "not_json", "deep_nesting"})
#: Kinds only an instrument with a two-sided book can have.
BOOK_ONLY = frozenset({"crossed_book"})


def mix(messages: Iterable[tuple[bytes | None, bytes, int]], bad: int, seed: int) -> list[Record]:
    """The good ``(key, value, timestamp_ms)`` messages in order with ``bad`` bad records, each
    right after the good message it was made from (Kafka timestamp: that message's)."""
    good = list(messages)
    rng = random.Random(seed)
    slots = sorted(rng.choices(range(len(good)), k=bad))
    kinds = sorted(KINDS)
    out: list[Record] = []
    first_price: dict[str, int] = {}
    decoder = msgspec.json.Decoder(Tick)
    at = 0
    for i, (key, value, ts_ms) in enumerate(good):
        out.append(Record(key, value, ts_ms, None))
        tick = decoder.decode(value)
        first_price.setdefault(tick.token, tick.ltp)
        obj = msgspec.json.decode(value)
        ctx = _Ctx(value, obj, tick, first_price[tick.token], rng)
        while at < len(slots) and slots[at] == i:
            at += 1
            kind = rng.choice(kinds)
            if kind in BOOK_ONLY and not tick.has_book:
                kind = "negative_price"
            expect, breaker = KINDS[kind]
            record_key = None if kind in NULL_KEY else key
            out.append(Record(record_key, breaker(ctx), ts_ms, expect, kind))
    return out


def expected_codes(records: Iterable[Record]) -> Iterator[str]:
    return (r.expect for r in records if r.expect is not None)
