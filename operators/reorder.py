"""Event-time reordering for stages that merge several streams (DESIGN invariant 8).

Items are held in a heap and released in ``(ts_event, tie-break)`` order once a data-driven
watermark — the largest event time seen minus a bounded lateness — has passed them. Which
worker or partition delivered an item first therefore no longer matters, as long as no item is
later than the lateness; an item that is (its time is before what was already released) is
released at once and counted in ``late`` so the monitor can show it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

T = TypeVar("T")
SortKey = tuple[Any, ...]


@dataclass
class ReorderState(Generic[T]):
    heap: list[tuple[datetime, SortKey, int, T]] = field(default_factory=list)
    max_ts: datetime | None = None
    released_ts: datetime | None = None
    arrivals: int = 0
    late: int = 0


class ReorderBuffer(Generic[T]):
    """``push`` returns the items the watermark releases; ``flush`` returns the rest."""

    def __init__(self, lateness: timedelta) -> None:
        self.lateness = lateness

    def push(self, state: ReorderState[T], ts: datetime, tie: SortKey, item: T) -> list[T]:
        if state.released_ts is not None and ts < state.released_ts:
            state.late += 1
            return [item]
        state.arrivals += 1
        # The arrival counter only keeps the heap from comparing items; equal (ts, tie) keys
        # must describe interchangeable items for the output to be order-independent.
        heapq.heappush(state.heap, (ts, tie, state.arrivals, item))
        if state.max_ts is None or ts > state.max_ts:
            state.max_ts = ts
        return self._release(state, state.max_ts - self.lateness)

    def advance(self, state: ReorderState[T], watermark: datetime) -> list[T]:
        """Release everything up to ``watermark`` (e.g. a heartbeat in live mode)."""
        return self._release(state, watermark)

    def flush(self, state: ReorderState[T]) -> list[T]:
        out = [entry[3] for entry in sorted(state.heap, key=lambda e: (e[0], e[1], e[2]))]
        state.heap.clear()
        if out and state.max_ts is not None:
            state.released_ts = state.max_ts
        return out

    @staticmethod
    def _release(state: ReorderState[T], watermark: datetime) -> list[T]:
        out: list[T] = []
        heap = state.heap
        while heap and heap[0][0] <= watermark:
            ts, _, _, item = heapq.heappop(heap)
            state.released_ts = ts
            out.append(item)
        return out
