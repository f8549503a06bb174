"""Event-time reordering for stages that merge several streams (DESIGN invariant 8).

Items are held back and released in ``(ts_event, tie-break)`` order once a data-driven
watermark — the largest event time seen minus a bounded lateness — has passed them. Which
worker or partition delivered an item first therefore no longer matters, as long as no item is
later than the lateness; an item that is (its time is before what was already released) is
released at once and counted in ``late`` so the monitor can show it.

Arrivals are almost always already in order (a replay merges partitions by event time, a live
feed is nearly monotone), so an item at or after the newest held one is appended to a queue
(O(1) in and out); only an item that overtakes it goes into a heap. Releases take the smaller
head of the two by the full key ``(ts_event, tie-break, arrival number)`` — exactly the order
a single heap of all items would give.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from mypy_extensions import mypyc_attr

from operators import _native

T = TypeVar("T")
SortKey = tuple[Any, ...]
Entry = tuple[datetime, SortKey, int, T]


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class ReorderState:
    """What a ``ReorderBuffer`` holds for one key (not generic: mypyc compiles no generic
    dataclasses; the buffer's methods carry the item type)."""

    #: held items that arrived before a newer held one (out of order)
    heap: list[Entry[Any]] = field(default_factory=list)
    max_ts: datetime | None = None
    released_ts: datetime | None = None
    arrivals: int = 0
    late: int = 0
    #: held items that arrived in order: ascending by (ts, tie, arrival)
    queue: deque[Entry[Any]] = field(default_factory=deque)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots pickled before ``queue`` existed restore with an empty one."""
        state.setdefault("queue", deque())
        _native.restore(self, state)


@mypyc_attr(allow_interpreted_subclasses=True)
class ReorderBuffer(Generic[T]):
    """``push`` returns the items the watermark releases; ``flush`` returns the rest."""

    def __init__(self, lateness: timedelta) -> None:
        self.lateness = lateness

    def push(self, state: ReorderState, ts: datetime, tie: SortKey, item: T) -> list[T]:
        released = state.released_ts
        if released is not None and ts < released:
            state.late += 1
            return [item]
        state.arrivals += 1
        # The arrival counter only keeps entries from comparing items; equal (ts, tie) keys
        # must describe interchangeable items for the output to be order-independent.
        entry = (ts, tie, state.arrivals, item)
        queue = state.queue
        if queue:
            last = queue[-1]
            last_ts = last[0]
            if ts > last_ts or (ts == last_ts and tie >= last[1]):
                queue.append(entry)
            else:
                heapq.heappush(state.heap, entry)
        else:
            queue.append(entry)
        max_ts = state.max_ts
        if max_ts is None or ts > max_ts:
            state.max_ts = max_ts = ts
        return self._release(state, max_ts - self.lateness)

    def advance(self, state: ReorderState, watermark: datetime) -> list[T]:
        """Release everything up to ``watermark`` (e.g. a heartbeat in live mode)."""
        return self._release(state, watermark)

    def flush(self, state: ReorderState) -> list[T]:
        held = [*state.heap, *state.queue]
        out = [entry[3] for entry in sorted(held, key=lambda e: (e[0], e[1], e[2]))]
        state.heap.clear()
        state.queue.clear()
        if out and state.max_ts is not None:
            state.released_ts = state.max_ts
        return out

    @staticmethod
    def _release(state: ReorderState, watermark: datetime) -> list[T]:
        out: list[T] = []
        queue, heap = state.queue, state.heap
        if not heap:  # the common case: everything held arrived in order
            if queue and queue[0][0] <= watermark:
                entry = queue.popleft()
                out.append(entry[3])
                while queue and queue[0][0] <= watermark:
                    entry = queue.popleft()
                    out.append(entry[3])
                state.released_ts = entry[0]
            return out
        while True:
            if queue and (not heap or queue[0] < heap[0]):
                if queue[0][0] > watermark:
                    break
                entry = queue.popleft()
            elif heap:
                if heap[0][0] > watermark:
                    break
                entry = heapq.heappop(heap)
            else:
                break
            state.released_ts = entry[0]
            out.append(entry[3])
        return out


_native.picklable(ReorderState, ReorderBuffer)
