"""Event-time reordering for stages that merge several streams (DESIGN invariant 8).

Items are held back and released in ``(ts_event, tie-break)`` order once a data-driven
watermark has passed them. Which worker or partition delivered an item first therefore no
longer matters; an item that comes after its place was released is released at once and
counted in ``late`` so the monitor can show it.

Two watermarks (issue 19):
- **Input watermarks** (a buffer built with ``inputs``): the stage knows its inputs (Kafka
  partitions of the source, the upstream stage's keys) and each input is in event-time order,
  so once every input has reported, everything *before* the minimum over inputs of their
  progress is released: no input can still send anything earlier, so the release order is
  exactly the sorted order and no fixed delay is added. ``push_from``/``progress`` report an
  input's progress (an item's time, or a marker from an input with nothing for this key). A
  live heartbeat (``beat``) counts heartbeats without arrivals per input: an input quiet for
  ``idle_beats`` of them is idle and no longer holds the others back (its next item rejoins
  it, possibly late). Until every non-idle input has reported, items are held.
- **Bounded lateness** (no ``inputs``: replays, offline use): the largest event time seen
  minus ``lateness``; an item later than that is late.

Arrivals are almost always already in order (a replay merges partitions by event time, a live
feed is nearly monotone), so an item at or after the newest held one is appended to a queue
(O(1) in and out); only an item that overtakes it goes into a heap. Releases take the smaller
head of the two by the full key ``(ts_event, tie-break, arrival number)`` — exactly the order
a single heap of all items would give.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable, Sequence
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
    #: input watermarks only: each input's progress (its next item is at or after it)
    progress: dict[Any, datetime] = field(default_factory=dict)
    #: input watermarks only: heartbeats since each input's last arrival
    quiet: dict[Any, int] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots pickled before ``queue``/``progress`` existed restore with empty ones."""
        state.setdefault("queue", deque())
        state.setdefault("progress", {})
        state.setdefault("quiet", {})
        _native.restore(self, state)


@mypyc_attr(allow_interpreted_subclasses=True)
class ReorderBuffer(Generic[T]):
    """``push`` returns the items the watermark releases; ``flush`` returns the rest."""

    def __init__(
        self, lateness: timedelta, inputs: Sequence[Hashable] = (), idle_beats: int = 2
    ) -> None:
        """``inputs`` (e.g. source partitions): use input watermarks (module doc); empty:
        bounded lateness only."""
        self.lateness = lateness
        self.inputs = tuple(inputs)
        self.idle_beats = idle_beats

    def push(self, state: ReorderState, ts: datetime, tie: SortKey, item: T) -> list[T]:
        held = self._hold(state, ts, tie, item)
        if held is not None:
            return held
        max_ts = state.max_ts
        assert max_ts is not None
        return self._release(state, max_ts - self.lateness)

    def push_from(
        self,
        state: ReorderState,
        source: Hashable,
        ts: datetime,
        tie: SortKey,
        item: T,
        advance: bool = True,
    ) -> list[T]:
        """``push`` an item of input ``source`` (input watermarks): that input is at ``ts``
        (``advance`` off: an input whose items are not in order, whose progress comes from
        ``progress`` markers only)."""
        if not self.inputs:
            return self.push(state, ts, tie, item)
        if advance:
            progress = state.progress
            last = progress.get(source)
            if last is None or ts > last:
                progress[source] = ts
        state.quiet[source] = 0
        held = self._hold(state, ts, tie, item)
        if held is not None:
            return held
        return self._release_inputs(state)

    def progress(self, state: ReorderState, source: Hashable, ts: datetime) -> list[T]:
        """Input ``source`` will send nothing before ``ts`` (a marker, not an item)."""
        progress = state.progress
        last = progress.get(source)
        if last is None or ts > last:
            progress[source] = ts
        state.quiet[source] = 0
        return self._release_inputs(state)

    def beat(self, state: ReorderState) -> list[T]:
        """A live heartbeat (input watermarks): count it against every input, then release
        what the inputs that are not idle allow."""
        quiet = state.quiet
        for source in self.inputs:
            quiet[source] = quiet.get(source, 0) + 1
        return self._release_inputs(state)

    def floor(self, state: ReorderState) -> datetime | None:
        """Input watermarks: the time before which everything is released and nothing more
        will come (None: not every input has reported yet)."""
        quiet, progress, idle = state.quiet, state.progress, self.idle_beats
        mark: datetime | None = None
        active = False
        for source in self.inputs:
            if quiet.get(source, 0) >= idle:
                continue
            active = True
            at = progress.get(source)
            if at is None:
                return None
            if mark is None or at < mark:
                mark = at
        if not active:  # every input idle: nothing holds the buffer back
            return state.max_ts + _MICRO if state.max_ts is not None else None
        return mark

    def _release_inputs(self, state: ReorderState) -> list[T]:
        mark = self.floor(state)
        if mark is None:
            return []
        return self._release(state, mark - _MICRO)  # strictly before: ties may still come

    def _hold(self, state: ReorderState, ts: datetime, tie: SortKey, item: T) -> list[T] | None:
        """Queue ``item``; a late one is returned at once (in a list), else None."""
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
            state.max_ts = ts
        return None

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


_MICRO = timedelta(microseconds=1)

_native.picklable(ReorderState, ReorderBuffer)
