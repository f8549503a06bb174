"""Reordering by event time: any arrival order within the lateness gives the same output."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.reorder import ReorderBuffer, ReorderState

T0 = datetime(2026, 7, 7, 4, 0, tzinfo=UTC)


def drain(items, lateness_s: float):
    buf: ReorderBuffer[str] = ReorderBuffer(timedelta(seconds=lateness_s))
    state: ReorderState[str] = ReorderState()
    out = []
    for ts, tie, name in items:
        out += buf.push(state, ts, tie, name)
    return out + buf.flush(state), state


def test_releases_only_behind_the_watermark() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(timedelta(seconds=2))
    state: ReorderState[str] = ReorderState()
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
