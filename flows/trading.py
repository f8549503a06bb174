"""Trading stage (placeholder until the strategy/risk/execution operators are wired)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bytewax.dataflow import Stream

from operators.events import Bar, Instrument, Tick


@dataclass
class TradingStreams:
    to_db: list[Stream[Any]] = field(default_factory=list)
    to_kafka: list[Stream[Any]] = field(default_factory=list)


def trading_stage(ticks: Stream[Tick], bars: Stream[Bar], instruments: Mapping[str, Instrument], config: Any) -> TradingStreams:
    return TradingStreams()
