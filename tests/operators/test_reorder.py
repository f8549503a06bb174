"""Reordering by event time: any arrival order within the lateness gives the same output."""

from __future__ import annotations

import copy
import heapq
import pickle
import random
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.stages.reorder import ReorderBuffer, ReorderState

T0 = datetime(2026, 7, 7, 4, 0, tzinfo=UTC)


def drain(items, lateness_s: float):
    buf: ReorderBuffer[str] = ReorderBuffer(timedelta(seconds=lateness_s))
    state: ReorderState = ReorderState()
    out = []
    for ts, tie, name in items:
        out += buf.push(state, ts, tie, name)
    return out + buf.flush(state), state


def test_releases_only_behind_the_watermark() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(timedelta(seconds=2))
    state: ReorderState = ReorderState()
    assert buf.push(state, T0, (0,), "a") == []
    assert buf.push(state, T0 + timedelta(seconds=1), (0,), "b") == []
    assert buf.push(state, T0 + timedelta(seconds=2), (0,), "c") == ["a"]
    assert buf.flush(state) == ["b", "c"]


def test_ties_break_on_the_sort_key_not_on_arrival() -> None:
    items = [(T0, (1, "x"), "tick"), (T0, (0, "y"), "bar")]
    out, _ = drain(items, 1)
    assert out == ["bar", "tick"]


def test_item_later_than_lateness_is_released_at_once_and_counted() -> None:
    items = [(T0 + timedelta(seconds=s), (0,), f"t{s}") for s in range(10)]
    items.append((T0, (1,), "late"))
    out, state = drain(items, 2)
    assert state.late == 1
    assert out.index("late") == 8  # after t0..t7 were released, before the flush of t8, t9


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 600), st.integers(0, 3)), min_size=1, max_size=60, unique=True
    ),
    st.randoms(use_true_random=False),
)
def test_any_shuffle_within_lateness_gives_sorted_output(raw, rnd: random.Random) -> None:
    items = [(T0 + timedelta(milliseconds=ms), (tie,), f"{ms}:{tie}") for ms, tie in raw]
    expected = [name for _, _, name in sorted(items, key=lambda x: (x[0], x[1]))]
    # displace each item by at most 0.5 s from its sorted position: within a 1 s lateness
    jittered = sorted(items, key=lambda x: x[0] + timedelta(milliseconds=rnd.randint(0, 500)))
    out, state = drain(jittered, 1)
    assert state.late == 0
    assert out == expected


# ------------------------------------------------------------ queue fast path vs one heap
@dataclass
class _HeapOnly:
    """The buffer as it was before the in-order queue: every held item in one heap."""

    lateness: timedelta
    heap: list[tuple[datetime, Any, int, str]] = field(default_factory=list)
    max_ts: datetime | None = None
    released_ts: datetime | None = None
    arrivals: int = 0
    late: int = 0

    def push(self, ts: datetime, tie: Any, item: str) -> list[str]:
        if self.released_ts is not None and ts < self.released_ts:
            self.late += 1
            return [item]
        self.arrivals += 1
        heapq.heappush(self.heap, (ts, tie, self.arrivals, item))
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
        return self.advance(self.max_ts - self.lateness)

    def advance(self, watermark: datetime) -> list[str]:
        out = []
        while self.heap and self.heap[0][0] <= watermark:
            ts, _, _, item = heapq.heappop(self.heap)
            self.released_ts = ts
            out.append(item)
        return out

    def flush(self) -> list[str]:
        out = [e[3] for e in sorted(self.heap, key=lambda e: (e[0], e[1], e[2]))]
        self.heap.clear()
        if out and self.max_ts is not None:
            self.released_ts = self.max_ts
        return out


# (ms offset, tie, heartbeat after it?) — few distinct times and ties, so equal keys, runs of
# in-order arrivals, overtaking items and items later than the lateness all occur.
_arrivals = st.lists(
    st.tuples(st.integers(0, 40).map(lambda x: x * 100), st.integers(0, 2), st.booleans()),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(_arrivals, st.integers(0, 1500), st.integers(0, 10_000), st.booleans())
def test_queue_and_heap_release_exactly_like_a_single_heap(
    raw, lateness_ms: int, beat_shift_ms: int, snapshot: bool
) -> None:
    lateness = timedelta(milliseconds=lateness_ms)
    buf: ReorderBuffer[str] = ReorderBuffer(lateness)
    state: ReorderState = ReorderState()
    ref = _HeapOnly(lateness)
    got: list[list[str]] = []
    want: list[list[str]] = []
    for i, (ms, tie, beat) in enumerate(raw):
        ts = T0 + timedelta(milliseconds=ms)
        name = f"{i}:{ms}:{tie}"
        got.append(buf.push(state, ts, (tie,), name))
        want.append(ref.push(ts, (tie,), name))
        if beat:  # a live heartbeat somewhere around the newest time
            mark = T0 + timedelta(milliseconds=ms + beat_shift_ms - 5_000)
            got.append(buf.advance(state, mark))
            want.append(ref.advance(mark))
        if snapshot and i == len(raw) // 2:
            state = pickle.loads(pickle.dumps(copy.deepcopy(state)))
        assert (state.late, state.arrivals, state.max_ts, state.released_ts) == (
            ref.late,
            ref.arrivals,
            ref.max_ts,
            ref.released_ts,
        )
        assert len(state.heap) + len(state.queue) == len(ref.heap)
    got.append(buf.flush(state))
    want.append(ref.flush())
    assert got == want
    assert state.released_ts == ref.released_ts
    assert not state.heap
    assert not state.queue


def test_in_order_arrivals_never_touch_the_heap() -> None:
    buf: ReorderBuffer[int] = ReorderBuffer(timedelta(seconds=1))
    state: ReorderState = ReorderState()
    out = []
    for i in range(100):
        out += buf.push(state, T0 + timedelta(milliseconds=250 * (i // 2)), (i % 2,), i)
        assert state.heap == []
    assert out + buf.flush(state) == list(range(100))
    # one overtaking item goes to the heap and is released in key order all the same
    buf.push(state, T0 + timedelta(seconds=30), (0,), 1000)
    buf.push(state, T0 + timedelta(seconds=30, milliseconds=500), (0,), 1002)
    buf.push(state, T0 + timedelta(seconds=30, milliseconds=200), (0,), 1001)
    assert len(state.heap) == 1
    assert buf.push(state, T0 + timedelta(seconds=32), (0,), 1003) == [1000, 1001, 1002]


def test_a_state_pickled_before_the_queue_existed_restores_with_an_empty_one() -> None:
    state: ReorderState = ReorderState()
    legacy = {f.name: getattr(state, f.name) for f in fields(state) if f.name != "queue"}
    restored = ReorderState.__new__(ReorderState)
    restored.__setstate__(dict(legacy))
    assert restored.queue == deque()
    buf: ReorderBuffer[str] = ReorderBuffer(timedelta(seconds=1))
    assert buf.push(restored, T0, (0,), "a") == []
    assert buf.flush(restored) == ["a"]


# ---------------------------------------------------------------- input watermarks (issue 19)
def _inputs_buffer(*inputs: str) -> ReorderBuffer[str]:
    return ReorderBuffer(timedelta(seconds=5), inputs=inputs)


def test_input_watermark_releases_before_the_slowest_input_without_waiting_lateness() -> None:
    buf, state = _inputs_buffer("p0", "p1"), ReorderState()
    s = timedelta(seconds=1)
    assert buf.push_from(state, "p0", T0, (0,), "a0") == []  # p1 has not reported yet
    assert buf.push_from(state, "p0", T0 + 60 * s, (0,), "a60") == []
    # p1 reports T0 + 1 s: everything of p0 strictly before that is released, not 5 s later
    assert buf.push_from(state, "p1", T0 + s, (0,), "b1") == ["a0"]
    assert buf.progress(state, "p1", T0 + 61 * s) == ["b1"]  # p0 may still send more at 60 s
    assert buf.progress(state, "p0", T0 + 61 * s) == ["a60"]
    assert state.late == 0


def test_input_watermark_holds_equal_times_until_every_input_is_past_them() -> None:
    buf, state = _inputs_buffer("p0", "p1"), ReorderState()
    assert buf.push_from(state, "p0", T0, (2,), "x") == []
    assert buf.push_from(state, "p1", T0, (3,), "y") == []  # both at T0: a tie may still come
    assert buf.push_from(state, "p0", T0, (1,), "w") == []
    assert buf.progress(state, "p0", T0 + timedelta(microseconds=1)) == []
    assert buf.progress(state, "p1", T0 + timedelta(microseconds=1)) == ["w", "x", "y"]


def test_an_idle_input_stops_holding_the_others_after_idle_beats() -> None:
    buf, state = _inputs_buffer("p0", "p1"), ReorderState()
    assert buf.push_from(state, "p0", T0, (0,), "a") == []
    assert buf.push_from(state, "p0", T0 + timedelta(seconds=1), (0,), "b") == []
    assert buf.beat(state) == []  # p1 never reported: quiet for one heartbeat
    buf.progress(state, "p0", T0 + timedelta(seconds=1))  # p0 is alive
    assert buf.beat(state) == ["a"]  # p1 quiet for two: idle; p0's watermark alone
    # p1 comes back behind what was released: late (released at once, counted)
    assert buf.push_from(state, "p1", T0 - timedelta(seconds=1), (0,), "old") == ["old"]
    assert state.late == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 400), st.integers(0, 3)),
        min_size=1,
        max_size=120,
    ),
    st.randoms(use_true_random=False),
)
def test_any_interleaving_of_in_order_inputs_gives_the_sorted_order(raw, rnd) -> None:
    """However far apart the inputs run (no lateness bound), the output is the sorted one."""
    per_input: dict[int, list[tuple[datetime, tuple[int, int], str]]] = {0: [], 1: [], 2: []}
    for n, (source, ms, tie) in enumerate(raw):
        per_input[source].append((T0 + timedelta(milliseconds=ms), (tie, n), f"{source}:{n}"))
    for items in per_input.values():
        items.sort()
    expected = [name for _, _, name in sorted(x for xs in per_input.values() for x in xs)]
    buf: ReorderBuffer[str] = ReorderBuffer(timedelta(0), inputs=(0, 1, 2))
    state = ReorderState()
    heads = {s: deque(xs) for s, xs in per_input.items()}
    out: list[str] = []
    while any(heads.values()):
        source = rnd.choice([s for s, q in heads.items() if q])
        ts, tie, name = heads[source].popleft()
        out += buf.push_from(state, source, ts, tie, name)
        if not heads[source]:  # an exhausted input: it reports it is past everything
            out += buf.progress(state, source, T0 + timedelta(days=1))
    assert out + buf.flush(state) == expected
    assert state.late == 0


def test_input_state_pickles_and_restores() -> None:
    buf, state = _inputs_buffer("p0", "p1"), ReorderState()
    buf.push_from(state, "p0", T0, (0,), "a")
    buf.progress(state, "p0", T0 + timedelta(seconds=2))
    restored = pickle.loads(pickle.dumps(state))
    assert buf.push_from(restored, "p1", T0 + timedelta(seconds=1), (0,), "b") == ["a"]
