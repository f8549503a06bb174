"""Typed, frozen, schema-versioned events shared by every stage.

Conventions (see DESIGN.md):
- every event carries ``ts_event`` (exchange or decision time) and ``ts_recv`` (when this
  process saw it), both timezone-aware UTC datetimes;
- every price on an event is an integer number of **paise** (₹1 = 100 paise), so money is
  exact; indicator values (``IndicatorSnapshot``) and Greeks are floats in rupees;
- quantities are in units (contracts × lot size), never lots.

Events are ``msgspec.Struct`` classes: typed, validated when decoded, and cheap on the hot
path (about 0.7 µs to decode a tick, see BYTEWAX_NOTES.md). Each has a ``type`` tag so a
topic can carry several kinds and be decoded into the right class.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import msgspec

SCHEMA_VERSION = 1
PAISE_PER_RUPEE = 100

Side = Literal["BUY", "SELL"]
InstrumentKind = Literal["INDEX", "FUT", "CE", "PE"]
Interval = Literal["1s", "1m"]
Regime = Literal["TRENDING", "RANGING", "HIGH_VOL"]
RiskEventKind = Literal[
    "HALT",
    "RESUME",
    "COOLDOWN",
    "KILL_SWITCH",
    "FEED_STALLED",
    "FEED_RECOVERED",
    "FEED_LAGGING",
    "SQUARE_OFF",
    "CANCEL_ALL",
    "STRATEGY_FAILED",
    "STRATEGY_SLOW",
    "OPERATOR_RESET",  # `scalpflow risk reset`: an operator re-armed the kill switch / halt
]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Base of every event: schema version plus event and receive times (UTC-aware)."""

    schema_version: int = SCHEMA_VERSION
    ts_event: datetime
    ts_recv: datetime


class Tick(Event, frozen=True, kw_only=True):
    """One market-data update for one instrument, as the exchange reported it.

    Index ticks have no book: ``bid``/``ask`` and their quantities are 0.
    """

    token: str
    exchange: str
    ltp: int
    last_qty: int = 0
    cum_volume: int = 0
    bid: int = 0
    ask: int = 0
    bid_qty: int = 0
    ask_qty: int = 0
    oi: int = 0
    seq: int = 0

    @property
    def has_book(self) -> bool:
        """True when both sides of the book are quoted."""
        return self.bid > 0 and self.ask > 0

    @property
    def mid(self) -> float:
        """Mid price in paise (LTP when there is no two-sided book)."""
        return (self.bid + self.ask) / 2 if self.has_book else float(self.ltp)


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """Static description of a tradable or reference instrument (from the instrument master)."""

    token: str
    symbol: str
    underlying: str
    kind: InstrumentKind
    exchange: str = "NFO"
    strike: int = 0
    expiry: date | None = None
    lot_size: int = 1
    tick_size: int = 5

    @property
    def is_option(self) -> bool:
        return self.kind in ("CE", "PE")


class Candle(Event, frozen=True, kw_only=True):
    """OHLCV candle closed by event time. ``ts_event`` is the window end (exclusive)."""

    token: str
    interval: Interval
    start: datetime
    open: int
    high: int
    low: int
    close: int
    volume: int
    vwap: float
    ticks: int


class IndicatorSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Indicator values after a candle closed, in rupees; ``None`` while warming up."""

    ema9: float | None = None
    ema21: float | None = None
    vwap: float | None = None
    rsi14: float | None = None
    atr14: float | None = None
    bb_upper: float | None = None
    bb_middle: float | None = None
    bb_lower: float | None = None
    supertrend: float | None = None
    supertrend_dir: int | None = None
    adx14: float | None = None
    plus_di14: float | None = None
    minus_di14: float | None = None
    vol_avg20: float | None = None


class Bar(Event, frozen=True, kw_only=True):
    """A closed candle together with the indicator snapshot computed from it."""

    candle: Candle
    indicators: IndicatorSnapshot


class OptionAnalytics(Event, frozen=True, kw_only=True):
    """Implied volatility and Greeks of one option at one tick (``iv`` None: no solution)."""

    token: str
    underlying: str
    price: float
    underlying_price: float
    forward: float
    strike: float
    t_years: float
    iv: float | None
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None
    iv_percentile: float | None = None


class RegimeClassified(Event, frozen=True, kw_only=True):
    """The market regime of an underlying for the minute ending at ``ts_event``.

    ``probabilities`` (regime → class probability) comes from a trained model only; the rules
    have none, and an unset field is left out of the encoding, so a rules-only event encodes
    exactly as it did before the field existed (pinned output fingerprints hold).
    """

    underlying: str
    regime: Regime
    features: dict[str, float]
    model_version: str
    probabilities: dict[str, float] | msgspec.UnsetType = msgspec.UNSET


class SignalGenerated(Event, frozen=True, kw_only=True):
    """A strategy's decision to enter or exit, with the reason a human can audit."""

    strategy: str
    underlying: str
    instrument: str
    side: Side
    action: Literal["ENTRY", "EXIT"]
    reason: str
    strength: float = 1.0
    signal_id: str = ""
    # Context the account stage sizes with (filled in by the strategy stage).
    underlying_price: int = 0
    atr: float | None = None
    delta: float | None = None


class RiskEvent(Event, frozen=True, kw_only=True):
    """Halts, cooldowns, kill switch, feed health, square-offs: every risk step, journaled."""

    account: str
    kind: RiskEventKind
    detail: str
    strategy: str = ""
    instrument: str = ""


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message the pipeline could not use, kept whole with the reason it was refused."""

    reason: str
    raw: bytes
    source_topic: str = ""
    source_partition: int = -1
    source_offset: int = -1
    key: bytes | None = None


def to_paise(rupees: float) -> int:
    """Round a rupee amount to the nearest paisa."""
    return round(rupees * PAISE_PER_RUPEE)


def to_rupees(paise: int | float) -> float:
    return paise / PAISE_PER_RUPEE
