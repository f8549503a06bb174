"""The synthetic sessions tests run on, one call each instead of a nested config literal."""

from __future__ import annotations

from datetime import date

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.feeds.synthetic.config import FaultConfig

#: The Wednesday most sessions are generated for (a weekly-expiry week's mid-day).
WEDNESDAY = date(2026, 7, 8)


def synthetic_market(
    seed: int,
    *,
    day: date = WEDNESDAY,
    minutes: int | None = None,
    strikes: int = 10,
    rate: float = 1.0,
    index_rate: float | None = None,
    faults: FaultConfig | None = None,
) -> SyntheticMarket:
    """A synthetic session of ``seed`` on ``day``: ``minutes`` from the open (``None``: to the
    close), ATM ± ``strikes``, ticks at ``rate``× (``index_rate``× for the index when given)."""
    return SyntheticMarket(
        SyntheticConfig.session(seed, day, minutes, strikes, rate, index_rate, faults)
    )
