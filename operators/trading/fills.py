"""Swappable latency, slippage and fill-rule models for the execution simulator.

Separate small classes, as in nautilus_trader's ``backtest/models``: the engine asks the
latency model when an order may first trade, the slippage model how far a market order pays
through the touch, and the fill model whether a resting limit trades on a tick and how much
of the tick's volume it may take. "Random" models are seeded and draw from a hash of
``(seed, order_id)``, so they need no RNG state: a snapshot/restore or a replay draws the same.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, Protocol

import msgspec

from operators.events import Side


def seeded_unit(seed: int, key: str) -> float:
    """A deterministic number in [0, 1) from ``seed`` and ``key``."""
    digest = hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class LatencyModel(Protocol):
    def delay(self, order_id: str) -> timedelta:
        """Time from an order's event time until it reaches the (simulated) exchange."""
        ...


class FixedLatency(msgspec.Struct, frozen=True, kw_only=True):
    """The same delay for every order (default 50 ms)."""

    ms: int = 50

    def __post_init__(self) -> None:
        if self.ms < 0:
            msg = f"latency must be >= 0 ms, got {self.ms}"
            raise ValueError(msg)

    def delay(self, order_id: str) -> timedelta:
        return timedelta(milliseconds=self.ms)


class JitterLatency(msgspec.Struct, frozen=True, kw_only=True):
    """``base_ms`` plus a seeded, per-order jitter in ``[0, jitter_ms]`` whole milliseconds."""

    base_ms: int = 50
    jitter_ms: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.base_ms < 0 or self.jitter_ms < 0:
            msg = f"latency parts must be >= 0 ms, got {self.base_ms}/{self.jitter_ms}"
            raise ValueError(msg)

    def delay(self, order_id: str) -> timedelta:
        extra = int(seeded_unit(self.seed, order_id) * (self.jitter_ms + 1))
        return timedelta(milliseconds=self.base_ms + extra)


class SlippageModel(Protocol):
    def slippage(self, spread: int, tick_size: int, order_id: str) -> int:
        """Paise a market order pays beyond the touch (a multiple of ``tick_size``, >= 0)."""
        ...


def round_to_ticks(amount: Decimal, tick_size: int) -> int:
    """Round a paise amount half up to the nearest multiple of ``tick_size``."""
    ticks = (amount / tick_size).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(ticks) * tick_size


class SpreadSlippage(msgspec.Struct, frozen=True, kw_only=True):
    """Slippage = ``fraction`` × spread, rounded half up to the tick grid (deterministic)."""

    fraction: Decimal = Decimal("0.5")

    def __post_init__(self) -> None:
        if self.fraction < 0:
            msg = f"slippage fraction must be >= 0, got {self.fraction}"
            raise ValueError(msg)

    def slippage(self, spread: int, tick_size: int, order_id: str) -> int:
        return round_to_ticks(Decimal(max(spread, 0)) * self.fraction, tick_size)


class RandomSpreadSlippage(msgspec.Struct, frozen=True, kw_only=True):
    """Seeded slippage: a per-order uniform fraction in ``[0, max_fraction]`` of the spread."""

    max_fraction: Decimal = Decimal(1)
    seed: int = 0

    def slippage(self, spread: int, tick_size: int, order_id: str) -> int:
        u = Decimal(repr(seeded_unit(self.seed, order_id)))
        return round_to_ticks(Decimal(max(spread, 0)) * self.max_fraction * u, tick_size)


LimitMode = Literal["touch", "penetration"]


class FillModel(msgspec.Struct, frozen=True, kw_only=True):
    """When a resting limit trades, and how much of a tick's traded volume orders may take.

    - ``touch``: a resting BUY at L fills once the ask is at or below L (SELL: bid >= L);
    - ``penetration``: the book must trade through L by ``penetration_ticks`` ticks
      (BUY: ask <= L − n·tick), the queue-aware, less optimistic mode;
    - per tick, all orders on an instrument together take at most
      ``floor(Δcum_volume × participation)`` units, allocated in priority (time) order.
    """

    mode: LimitMode = "touch"
    penetration_ticks: int = 1
    participation: Decimal = Decimal("0.25")
    # This account's share of each tick's cap when several accounts trade the same market
    # (flows.config.accounts): below 1, the unused fraction is carried to the next tick while
    # orders wait, at most one lot, so a small share fills slowly instead of never.
    share: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if self.penetration_ticks < 0:
            msg = f"penetration_ticks must be >= 0, got {self.penetration_ticks}"
            raise ValueError(msg)
        if not Decimal(0) < self.participation <= Decimal(1):
            msg = f"participation must be in (0, 1], got {self.participation}"
            raise ValueError(msg)
        if not Decimal(0) < self.share <= Decimal(1):
            msg = f"share must be in (0, 1], got {self.share}"
            raise ValueError(msg)

    def volume_cap(self, traded: int) -> int:
        """Units the orders on one instrument may take from ``traded`` units of volume."""
        return int(Decimal(max(traded, 0)) * self.participation)

    def shared_cap(self, traded: int, carried: Decimal) -> Decimal:
        """This account's share of the cap, plus what it carried from earlier ticks."""
        return Decimal(max(traded, 0)) * self.participation * self.share + carried

    def passive_crosses(
        self, side: Side, limit: int, bid: int, ask: int, ltp: int, tick_size: int
    ) -> bool:
        """Whether a resting limit at ``limit`` trades on this book (LTP when no book)."""
        through = self.penetration_ticks * tick_size if self.mode == "penetration" else 0
        if side == "BUY":
            px = ask if ask > 0 else ltp
            return px > 0 and px <= limit - through
        px = bid if bid > 0 else ltp
        return px > 0 and px >= limit + through
