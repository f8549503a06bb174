"""Frozen configuration of the synthetic market: what to generate and which faults to inject.

Every knob that shapes the generated day lives here so a run can be reproduced from
``(seed, date, config)`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from operators.market.sessions import IST, SESSION_CLOSE, SESSION_OPEN

RateRange = tuple[float, float]
Day = date  # inside SyntheticConfig the field ``date`` shadows the type

#: Fault kinds whose ticks cannot be a valid ``Tick`` downstream: they only appear on the wire
#: (``raw_messages``) and must end up in the DLQ.
CORRUPT_KINDS: tuple[str, ...] = (
    "crossed",
    "off_grid",
    "negative_price",
    "unknown_token",
    "invalid_json",
    "missing_field",
)
_VALID_PER_TICK: tuple[str, ...] = ("late", "out_of_order", "duplicate")
#: Fault kinds that leave a valid ``Tick`` (delivered by ``ticks()`` too).
VALID_FAULT_KINDS: tuple[str, ...] = (*_VALID_PER_TICK, "spread_blowout")
#: Fault kinds drawn tick by tick, each at its ``FaultConfig.<kind>_rate``.
PER_TICK_KINDS: tuple[str, ...] = (*CORRUPT_KINDS, *_VALID_PER_TICK)
#: Fault kinds that remove ticks (recorded in the fault log, never on the wire).
GAP_KIND = "feed_gap"
FAULT_KINDS: tuple[str, ...] = (*CORRUPT_KINDS, *VALID_FAULT_KINDS, GAP_KIND)


@dataclass(frozen=True)
class FaultConfig:
    """Faults to inject; all off by default.

    ``*_rate`` fields are the fraction of generated ticks hit by that fault; ``feed_gaps`` and
    ``spread_blowouts`` are counts of windows per session.
    """

    feed_gaps: int = 0
    gap_seconds: RateRange = (20.0, 90.0)
    spread_blowouts: int = 0
    blowout_seconds: RateRange = (30.0, 180.0)
    blowout_factor: float = 15.0
    crossed_rate: float = 0.0
    off_grid_rate: float = 0.0
    negative_price_rate: float = 0.0
    unknown_token_rate: float = 0.0
    invalid_json_rate: float = 0.0
    missing_field_rate: float = 0.0
    late_rate: float = 0.0
    late_delay_seconds: RateRange = (10.0, 120.0)
    out_of_order_rate: float = 0.0
    out_of_order_delay_seconds: RateRange = (0.2, 2.0)
    duplicate_rate: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate") and not 0.0 <= value <= 0.2:
                msg = f"FaultConfig.{f.name} must be in [0, 0.2], got {value}"
                raise ValueError(msg)
            if isinstance(value, tuple) and not 0.0 < value[0] <= value[1]:
                msg = f"FaultConfig.{f.name} must be an increasing positive range, got {value}"
                raise ValueError(msg)
        if self.feed_gaps < 0 or self.spread_blowouts < 0:
            msg = "FaultConfig window counts must be >= 0"
            raise ValueError(msg)
        if self.blowout_factor < 1.0:
            msg = f"FaultConfig.blowout_factor must be >= 1, got {self.blowout_factor}"
            raise ValueError(msg)
        if self.per_tick_total() > 0.5:
            msg = f"FaultConfig per-tick rates sum to {self.per_tick_total():.2f} > 0.5"
            raise ValueError(msg)

    def per_tick_total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self) if f.name.endswith("_rate"))

    @property
    def enabled(self) -> bool:
        return self.per_tick_total() > 0 or self.feed_gaps > 0 or self.spread_blowouts > 0

    @classmethod
    def every_kind(cls, rate: float = 0.005, windows: int = 2) -> FaultConfig:
        """Every fault kind at ``rate`` per tick, and ``windows`` gaps and blow-outs."""
        rates: dict[str, Any] = {f"{kind}_rate": rate for kind in PER_TICK_KINDS}
        return replace(cls(feed_gaps=windows, spread_blowouts=windows), **rates)


@dataclass(frozen=True)
class SyntheticConfig:
    """What day to generate and how.

    ``duration_minutes=None`` runs to the 15:30 IST close. ``tick_rate_scale`` multiplies every
    instrument's tick rate (use < 1 for fast tests); ``index_tick_rate_scale``, when set,
    replaces it for the index alone (a thin chain with a ~1/s index keeps 1-minute bars closing
    promptly, as the live feed does). ``index_volume`` gives the index a proxy
    traded volume (the real NSE index has none) so volume-confirmed index strategies can fire.
    """

    seed: int = 0
    date: date = date(2026, 1, 5)
    start_time: time = SESSION_OPEN
    duration_minutes: int | None = None
    strikes_each_side: int = 10
    tick_rate_scale: float = 1.0
    index_tick_rate_scale: float | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    underlying: str = "NIFTY"
    index_token: str = "26000"
    opening_level: float = 26000.0
    strike_step: int = 50
    lot_size: int = 65
    base_iv: float = 0.12
    annual_vol: float = 0.12
    rate: float = 0.065
    latency_ms: RateRange = (5.0, 80.0)
    index_volume: bool = True

    def __post_init__(self) -> None:
        if self.seed < 0:
            msg = f"seed must be >= 0, got {self.seed}"
            raise ValueError(msg)
        if self.start_time.second or self.start_time.microsecond:
            msg = f"start_time must be on a whole minute, got {self.start_time}"
            raise ValueError(msg)
        if not SESSION_OPEN <= self.start_time < SESSION_CLOSE:
            msg = f"start_time {self.start_time} is outside the 09:15-15:30 IST session"
            raise ValueError(msg)
        if self.duration_minutes is not None and not 1 <= self.duration_minutes:
            msg = f"duration_minutes must be >= 1, got {self.duration_minutes}"
            raise ValueError(msg)
        if self.end_ist > datetime.combine(self.date, SESSION_CLOSE, IST):
            msg = f"session from {self.start_time} for {self.duration_minutes} min ends after close"
            raise ValueError(msg)
        if not 0 <= self.strikes_each_side <= 40:
            msg = f"strikes_each_side must be in [0, 40], got {self.strikes_each_side}"
            raise ValueError(msg)
        for name in ("tick_rate_scale", "index_tick_rate_scale"):
            scale = getattr(self, name)
            if scale is not None and not 0.0 < scale <= 10.0:
                msg = f"{name} must be in (0, 10], got {scale}"
                raise ValueError(msg)
        if self.opening_level <= self.strike_step * (self.strikes_each_side + 1):
            msg = f"opening_level {self.opening_level} too low for the strike ladder"
            raise ValueError(msg)
        if not 0.01 <= self.base_iv <= 2.0 or not 0.01 <= self.annual_vol <= 2.0:
            msg = "base_iv and annual_vol must be in [0.01, 2]"
            raise ValueError(msg)
        if not 0.0 <= self.latency_ms[0] <= self.latency_ms[1]:
            msg = f"latency_ms must be an increasing range, got {self.latency_ms}"
            raise ValueError(msg)

    @classmethod
    def session(
        cls,
        seed: int,
        day: Day,
        minutes: int | None,
        strikes: int = 10,
        rate: float = 1.0,
        index_rate: float | None = None,
        faults: FaultConfig | None = None,
    ) -> SyntheticConfig:
        """The knobs the CLI, the demo, tests and benchmarks turn, by their short names:
        ``minutes`` from the open (``None``: to the close), ATM ± ``strikes``, ticks at
        ``rate``× (``index_rate``× for the index when given)."""
        return cls(
            seed=seed,
            date=day,
            duration_minutes=minutes,
            strikes_each_side=strikes,
            tick_rate_scale=rate,
            index_tick_rate_scale=index_rate,
            faults=faults or FaultConfig(),
        )

    @property
    def index_rate_scale(self) -> float:
        """Tick-rate multiplier of the index."""
        if self.index_tick_rate_scale is None:
            return self.tick_rate_scale
        return self.index_tick_rate_scale

    @property
    def start_ist(self) -> datetime:
        return datetime.combine(self.date, self.start_time, IST)

    @property
    def end_ist(self) -> datetime:
        if self.duration_minutes is None:
            return datetime.combine(self.date, SESSION_CLOSE, IST)
        return self.start_ist + timedelta(minutes=self.duration_minutes)

    @property
    def minutes(self) -> int:
        """Number of whole minutes in the generated session."""
        return int((self.end_ist - self.start_ist).total_seconds()) // 60
