"""Plausibility checks on decoded ticks: what the market could not have sent.

A failed check returns a machine-readable reason (``NEGATIVE_PRICE: ltp=-5``); the flow sends
the raw message to the dead-letter topic with it. Nothing here raises.
"""

from __future__ import annotations

from collections.abc import Mapping

from operators.events import Instrument, Tick


def tick_problem(tick: Tick, instruments: Mapping[str, Instrument] | None) -> str | None:
    """Why ``tick`` is unusable, or ``None`` when it is fine."""
    if instruments is not None and tick.token not in instruments:
        return f"UNKNOWN_TOKEN: token={tick.token!r}"
    if tick.ltp <= 0:
        return f"NEGATIVE_PRICE: ltp={tick.ltp}" if tick.ltp < 0 else f"ZERO_PRICE: ltp={tick.ltp}"
    if tick.bid < 0 or tick.ask < 0:
        return f"NEGATIVE_PRICE: bid={tick.bid} ask={tick.ask}"
    if tick.bid > 0 and tick.ask > 0 and tick.bid > tick.ask:
        return f"CROSSED_BOOK: bid={tick.bid} > ask={tick.ask}"
    if tick.cum_volume < 0 or tick.last_qty < 0 or tick.bid_qty < 0 or tick.ask_qty < 0:
        return "NEGATIVE_QUANTITY"
    if tick.ts_event.tzinfo is None:
        return "NAIVE_TIMESTAMP"
    if instruments is not None:
        step = instruments[tick.token].tick_size
        if step > 0 and (tick.ltp % step or tick.bid % step or tick.ask % step):
            return f"OFF_GRID_PRICE: ltp={tick.ltp} bid={tick.bid} ask={tick.ask} tick_size={step}"
    return None
