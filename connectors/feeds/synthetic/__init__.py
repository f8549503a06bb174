"""Synthetic NSE market: a seeded NIFTY index and weekly option chain that knows its truth.

It emits the same ``Tick`` events the Angel One connector will, plants the conditions every
built-in strategy waits for, records the true regime per minute, and injects feed faults on
demand so the DLQ, kill switch and late-data policy are tested with the generator the demo uses.

>>> from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
>>> market = SyntheticMarket(SyntheticConfig(seed=7, duration_minutes=2, strikes_each_side=1))
>>> len(market.instruments())
7
"""

from connectors.feeds.synthetic.config import (
    CORRUPT_KINDS,
    FAULT_KINDS,
    VALID_FAULT_KINDS,
    FaultConfig,
    SyntheticConfig,
)
from connectors.feeds.synthetic.market import (
    UNKNOWN_TOKEN,
    FaultRecord,
    RawMessage,
    ScenarioTimes,
    SyntheticMarket,
)

__all__ = [
    "CORRUPT_KINDS",
    "FAULT_KINDS",
    "UNKNOWN_TOKEN",
    "VALID_FAULT_KINDS",
    "FaultConfig",
    "FaultRecord",
    "RawMessage",
    "ScenarioTimes",
    "SyntheticConfig",
    "SyntheticMarket",
]
