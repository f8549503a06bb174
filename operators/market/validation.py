"""Plausibility checks on decoded ticks: what the market could not have sent.

A failed check returns a machine-readable reason (``NEGATIVE_PRICE: ltp=-5``); the flow sends
the raw message to the dead-letter topic with it, and the code before the colon labels the
dead-letter metric. Nothing here raises, and every check runs before any stage state changes:
a tick that fails one never reaches a candle, a watermark or a strategy.

Two layers (DESIGN invariant 4, "bad input is data"):

- ``tick_problem``: stateless, per tick: unknown token, prices and quantities no market prints
  or the database columns (``numeric(14,2)`` rupees, ``bigint``) cannot hold, exchange times
  outside the calendar, off the day they were received or too far from ``ts_recv``;
- ``PlausibilityLogic``: per instrument (a ``PlausibilityState`` each, held per source
  partition in a ``PartitionPlausibility`` and snapshotted like every stage's state): the price
  band around the session's reference price and exact-duplicate suppression in a bounded
  event-time window.

Only event and receive times of the ticks themselves are used: a replay rejects exactly what
the live run rejected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from mypy_extensions import mypyc_attr

from operators import _native
from operators.events import Instrument, Tick
from operators.market.expiry import ExpiryCalendar
from operators.market.sessions import ist_date, session_close, session_open

#: Largest price the database can store: ``numeric(14,2)`` rupees = 10^12 - 0.01 ₹, in paise.
MAX_PRICE_PAISE = 10**14 - 1
#: Largest quantity (volume, open interest, sizes) accepted: far above any NSE contract's day,
#: and small enough that sums of thousands of them stay inside a signed 64-bit ``bigint``.
MAX_QUANTITY = 10**15
MAX_INT64 = 2**63 - 1

STATE_VERSION = 1


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class ValidationConfig:
    """What a tick must satisfy beyond its schema (all limits in event time).

    ``strict`` refuses fields the schema does not know (a producer bug or padding); off by
    default so a newer producer's extra field does not dead-letter a whole feed. The price band
    is ``[reference / band_factor, reference × band_factor]``, where the reference of an
    instrument's session day is its previous close (the last accepted price of its previous
    day in this run, else ``references``), else the session's first accepted price; ``bands``
    pins an explicit ``(low, high)`` in paise per token instead. The band reaches at least
    ``band_slack_paise`` either side of the reference: on expiry day a ₹0.10 option can rally
    to ₹2 and a ₹2.50 one fall to ₹0.10; ×20 alone refused such real ticks (and, as its
    reference is the first price since a restart, refused them in a run and not in its
    resumed twin).
    """

    max_payload_bytes: int = 16_384
    strict: bool = False
    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    latest: datetime = datetime(2100, 1, 1, tzinfo=UTC)
    max_lag: timedelta = timedelta(minutes=10)  # ts_recv - ts_event
    max_lead: timedelta = timedelta(seconds=30)  # ts_event - ts_recv (clock skew)
    session_margin: timedelta | None = None  # set: ts_event within session open/close ± this
    band_factor: int = 20
    band_slack_paise: int = 20_000  # ₹200
    references: Mapping[str, int] = field(default_factory=dict)
    bands: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    dedupe_window: timedelta = timedelta(seconds=60)
    dedupe_max: int = 4096  # per instrument


DEFAULT_CONFIG = ValidationConfig()


def _price_problem(tick: Tick) -> str | None:
    if tick.ltp <= 0:
        return f"NEGATIVE_PRICE: ltp={tick.ltp}" if tick.ltp < 0 else f"ZERO_PRICE: ltp={tick.ltp}"
    if tick.bid < 0 or tick.ask < 0:
        return f"NEGATIVE_PRICE: bid={tick.bid} ask={tick.ask}"
    if tick.ltp > MAX_PRICE_PAISE or tick.bid > MAX_PRICE_PAISE or tick.ask > MAX_PRICE_PAISE:
        return f"PRICE_LIMIT: ltp={tick.ltp} bid={tick.bid} ask={tick.ask} > {MAX_PRICE_PAISE}"
    if tick.bid > 0 and tick.ask > 0 and tick.bid > tick.ask:
        return f"CROSSED_BOOK: bid={tick.bid} > ask={tick.ask}"
    return None


def _quantity_problem(tick: Tick) -> str | None:
    if tick.cum_volume < 0 or tick.last_qty < 0 or tick.bid_qty < 0 or tick.ask_qty < 0:
        return "NEGATIVE_QUANTITY"
    if tick.oi < 0:
        return "NEGATIVE_QUANTITY: oi"
    if (
        tick.cum_volume > MAX_QUANTITY
        or tick.last_qty > MAX_QUANTITY
        or tick.bid_qty > MAX_QUANTITY
        or tick.ask_qty > MAX_QUANTITY
        or tick.oi > MAX_QUANTITY
    ):
        return f"QUANTITY_LIMIT: a quantity > {MAX_QUANTITY}"
    if not (-MAX_INT64 <= tick.seq <= MAX_INT64 and 0 <= tick.schema_version <= MAX_INT64):
        return "QUANTITY_LIMIT: seq or schema_version outside int64"
    return None


def _time_problem(tick: Tick, config: ValidationConfig) -> str | None:
    ts, recv = tick.ts_event, tick.ts_recv
    if ts.tzinfo is None or recv.tzinfo is None:
        return "NAIVE_TIMESTAMP"
    if not config.earliest <= ts < config.latest or not config.earliest <= recv < config.latest:
        return f"TIME_RANGE: ts_event={ts.isoformat()} ts_recv={recv.isoformat()}"
    lag = recv - ts
    if lag > config.max_lag or -lag > config.max_lead:
        return f"TIME_SKEW: ts_recv - ts_event = {lag.total_seconds():.3f}s"
    day = ist_date(ts)
    if day != ist_date(recv):
        return f"SESSION_DAY: ts_event on {day}, received on {ist_date(recv)}"
    margin = config.session_margin
    if margin is not None and not (session_open(day) - margin <= ts < session_close(day) + margin):
        return f"SESSION_DAY: ts_event={ts.isoformat()} outside the session of {day}"
    return None


def tick_problem(
    tick: Tick,
    instruments: Mapping[str, Instrument] | None,
    config: ValidationConfig = DEFAULT_CONFIG,
) -> str | None:
    """Why ``tick`` is unusable on its own, or ``None`` when it is fine."""
    if instruments is not None and tick.token not in instruments:
        return f"UNKNOWN_TOKEN: token={tick.token[:64]!r}"
    problem = _price_problem(tick) or _quantity_problem(tick) or _time_problem(tick, config)
    if problem is not None:
        return problem
    if instruments is not None:
        step = instruments[tick.token].tick_size
        if step > 0 and (tick.ltp % step or tick.bid % step or tick.ask % step):
            return f"OFF_GRID_PRICE: ltp={tick.ltp} bid={tick.bid} ask={tick.ask} tick_size={step}"
    return None


# --- per instrument: price band and duplicates ----------------------------------------------

DedupeKey = tuple[datetime, int, int, int, int]  # ts_event, ltp, cum_volume, bid, ask


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class PlausibilityState:
    """One instrument: its session day and reference price, the last accepted price, and the
    keys of recently accepted ticks (a set to look up, a deque in arrival order to evict: a
    dict emptied from the front makes every ``iter`` rescan its deleted slots)."""

    version: int = STATE_VERSION
    day: date | None = None
    reference: int = 0
    last: int = 0
    newest: datetime | None = None
    seen: set[DedupeKey] = field(default_factory=set)
    order: deque[DedupeKey] = field(default_factory=deque)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class PartitionPlausibility:
    """The ``PlausibilityState`` of every instrument one source partition carries (producers
    key ticks by token, so an instrument's ticks all come through one partition). Bounded:
    one entry per live instrument that had an accepted tick (expired ones are dropped when their
    expiry day is over, given an ``ExpiryCalendar``), each at most ``dedupe_max`` keys."""

    version: int = STATE_VERSION
    tokens: dict[str, PlausibilityState] = field(default_factory=dict)
    #: the next instant (event time) an option expires: a tick at or after it drops the
    #: states of the instruments whose expiry day is over (None: sweep on the next tick)
    sweep_at: datetime | None = None


@mypyc_attr(allow_interpreted_subclasses=True)
class PlausibilityLogic:
    """``check(state, tick)``: the reason to reject a (stateless-valid) tick, or None after
    recording it as accepted."""

    def __init__(
        self, config: ValidationConfig | None = None, expiries: ExpiryCalendar | None = None
    ) -> None:
        self.config = config if config is not None else DEFAULT_CONFIG
        self.expiries = expiries

    def check(self, state: PlausibilityState, tick: Tick) -> str | None:
        config = self.config
        day = ist_date(tick.ts_event)
        reference = state.reference
        new_day = state.day is None or day > state.day
        if new_day:  # a new session day: its reference is the previous close (or configured)
            reference = state.last or config.references.get(tick.token, 0)
        band = config.bands.get(tick.token)
        if band is not None:
            low, high = band
        elif reference > 0:
            slack = config.band_slack_paise
            low = max(0, min(reference // config.band_factor, reference - slack))
            high = max(reference * config.band_factor, reference + slack)
        else:
            low, high = 0, MAX_PRICE_PAISE  # the session's first price sets the reference
        if not low <= tick.ltp <= high or tick.bid > high or tick.ask > high:
            return (
                f"PRICE_BAND: ltp={tick.ltp} bid={tick.bid} ask={tick.ask} outside [{low}, {high}]"
            )
        ts = tick.ts_event
        key = (ts, tick.ltp, tick.cum_volume, tick.bid, tick.ask)
        seen = state.seen
        if key in seen:
            return f"DUPLICATE: ts_event={ts.isoformat()} ltp={tick.ltp} cum={tick.cum_volume}"
        # accepted: only now does the state change
        if new_day:
            state.day = day
        state.reference = reference or tick.ltp
        state.last = tick.ltp
        seen.add(key)
        order = state.order
        order.append(key)
        newest = state.newest
        if newest is None or ts > newest:
            newest = state.newest = ts
        horizon = newest - config.dedupe_window
        while order and (len(order) > config.dedupe_max or order[0][0] < horizon):
            seen.discard(order.popleft())
        return None

    def check_in(
        self, book: PartitionPlausibility, tick: Tick, dropped: list[str] | None = None
    ) -> str | None:
        """``check`` against the tick's instrument's state in ``book`` (made on its first
        accepted tick: a refused tick leaves no entry behind). First, once an expiry has
        passed, the states of the instruments whose expiry day is over are dropped (their
        tokens appended to ``dropped``)."""
        tokens = book.tokens
        expiries = self.expiries
        if expiries is not None:
            ts = tick.ts_event
            sweep = book.sweep_at
            if sweep is None or ts >= sweep:
                gone = expiries.drop(tokens, ts)
                if dropped is not None:
                    dropped.extend(gone)
                book.sweep_at = expiries.next_after(ts)
        state = tokens.get(tick.token)
        if state is not None:
            return self.check(state, tick)
        state = PlausibilityState()
        reason = self.check(state, tick)
        if reason is None:
            tokens[tick.token] = state
        return reason


_native.picklable(ValidationConfig, PlausibilityState, PartitionPlausibility, PlausibilityLogic)
