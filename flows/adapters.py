"""Glue between pure ``operators`` logic and Bytewax's stateful operators.

A pure logic object owns no state: it is handed a state object per key. The adapter keeps that
state, feeds it whole batches, flushes at end of input, and snapshots a deep copy for recovery.

Live runs may add a heartbeat: every ``heartbeat`` of wall-clock time the logic's
``on_wall_clock(state, now)`` is called, so event-time buffers still release and a silent feed
is still noticed when no data arrives (DESIGN invariant 1: "live mode may add a bounded
wall-clock wait"). Given an ``ArrivalClock`` (``flows.arrivals``), the heartbeat also hands the
logic the input's current quiet spell: ``on_wall_clock(state, now, silence)``. Replays and
backtests run without it, so their output depends on data only.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import KeyedStream, StatefulBatchLogic

from flows.arrivals import ArrivalClock
from flows.runtime import stopping

S = TypeVar("S")
V = TypeVar("V")
W = TypeVar("W")
V_contra = TypeVar("V_contra", contravariant=True)
W_co = TypeVar("W_co", covariant=True)


class KeyedLogic(Protocol[S, V_contra, W_co]):
    """What a pure stage offers: a fresh state, a step per item, a flush at end of input.
    Optional: ``after_batch(state)``, ``on_wall_clock(state, now[, silence])`` and
    ``is_final(item)`` (true for an item after which the key's state is dropped)."""

    def new_state(self) -> S: ...

    def on_item(self, state: S, item: V_contra) -> Iterable[W_co]: ...

    def on_eof(self, state: S) -> Iterable[W_co]: ...


def _clock_offset() -> timedelta:
    """``SCALPFLOW_CLOCK_OFFSET_MS``: shift the live heartbeat's clock, so a benchmark can feed
    a session dated at market hours in real time whatever the hour (0 in production)."""
    return timedelta(milliseconds=float(os.environ.get("SCALPFLOW_CLOCK_OFFSET_MS", "0")))


CLOCK_OFFSET = _clock_offset()


def wall_now() -> datetime:
    """The heartbeat's clock: UTC now plus the configured offset."""
    return datetime.now(UTC) + CLOCK_OFFSET


class _Adapter(StatefulBatchLogic[V, W, S], Generic[S, V, W]):
    def __init__(
        self,
        logic: KeyedLogic[S, V, W],
        state: S,
        heartbeat: timedelta | None = None,
        arrivals: ArrivalClock | None = None,
    ) -> None:
        self.logic = logic
        self.state = state
        self.heartbeat = heartbeat
        self.arrivals = arrivals
        self._since = arrivals.now() if arrivals is not None else 0.0  # the last heartbeat
        self._wake = datetime.now(UTC) + heartbeat if heartbeat is not None else None

    def notify_at(self) -> datetime | None:
        if stopping.requested():  # a pending heartbeat would keep the stopped flow alive
            return None
        return self._wake

    def on_notify(self) -> tuple[Iterable[W], bool]:
        assert self.heartbeat is not None
        self._wake = datetime.now(UTC) + self.heartbeat  # Bytewax's clock: real UTC
        now = wall_now()
        tick = getattr(self.logic, "on_wall_clock", None)
        if tick is None:
            return [], StatefulBatchLogic.RETAIN
        arrivals = self.arrivals
        if arrivals is None:
            return list(tick(self.state, now)), StatefulBatchLogic.RETAIN
        silence = arrivals.silence(self._since)
        self._since = arrivals.now()
        return list(tick(self.state, now, silence)), StatefulBatchLogic.RETAIN

    def on_batch(self, values: list[V]) -> tuple[Iterable[W], bool]:
        out: list[W] = []
        extend, step, state = out.extend, self.logic.on_item, self.state  # hot loop: locals
        for value in values:
            extend(step(state, value))
        after = getattr(self.logic, "after_batch", None)  # e.g. a watermark marker
        if after is not None:
            extend(after(state))
        final = getattr(self.logic, "is_final", None)  # e.g. an instrument's expiry
        if final is not None and any(final(v) for v in values):
            return out, StatefulBatchLogic.DISCARD  # the key's state is dropped
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[W], bool]:
        if stopping.requested():  # not the end of the session: keep the state as it is
            return [], StatefulBatchLogic.RETAIN
        return list(self.logic.on_eof(self.state)), StatefulBatchLogic.RETAIN

    def snapshot(self) -> Any:
        """The state pickled once, as immutable bytes (Bytewax pickles a snapshot again and
        stores it later, so it must not share mutable parts with the live state).
        ``copy.deepcopy`` took 2-6x as long as this pickle (and Bytewax pickled the copy); at every
        epoch end of a live run it held the flow thread 1-2 s (issue 19)."""
        return _Snapshot(pickle.dumps(self.state, pickle.HIGHEST_PROTOCOL))


@dataclass(frozen=True)
class _Snapshot:
    """A keyed step's pickled state (a type of its own, so a resume state that is plain
    bytes can never be mistaken for one)."""

    data: bytes


def _resumed(resume: Any) -> Any:
    """The state a snapshot holds; a store written before ``_Snapshot`` holds the state
    object itself."""
    return pickle.loads(resume.data) if type(resume) is _Snapshot else resume


def run_keyed(
    step_id: str,
    up: KeyedStream[V],
    logic_for: Callable[[], KeyedLogic[S, V, W]],
    heartbeat: timedelta | None = None,
    arrivals: ArrivalClock | None = None,
) -> KeyedStream[W]:
    """Run a pure keyed logic as a Bytewax stateful step (state resumed from snapshots);
    ``heartbeat`` (live only) calls the logic's ``on_wall_clock`` that often, with the
    input's quiet spell when ``arrivals`` is given."""
    logic = logic_for()

    def builder(resume: S | None) -> _Adapter[S, V, W]:
        state = _resumed(resume) if resume is not None else logic.new_state()
        return _Adapter(logic, state, heartbeat, arrivals)

    return op.stateful_batch(step_id, up, builder)


# Batch-wise stream plumbing. Bytewax's per-item operators (map, filter, branch, key_on) call
# back into Python once per item through a generator shim; on the hot path (every tick
# crosses ~a dozen such steps) that overhead was ~10% of a replay. These do the same work
# with one call per batch and a list comprehension.


K = TypeVar("K")


def grouped(pairs: Iterable[tuple[K, V]]) -> list[tuple[K, list[V]]]:
    """``(key, value)`` pairs as one ``(key, values in order)`` per key, keys in order of first
    appearance: Bytewax routes and (across processes) pickles each item, so a list per key
    and batch costs one item."""
    groups: dict[K, list[V]] = {}
    for key, value in pairs:
        group = groups.get(key)
        if group is None:
            groups[key] = [value]
        else:
            group.append(value)
    return list(groups.items())


class OneByOne(Generic[S, V, W]):
    """A keyed stage whose items arrive as lists (``grouped``): ``on_item`` steps
    ``_on_one`` over each."""

    def on_item(self, state: S, items: list[V]) -> Iterable[W]:
        if len(items) == 1:
            return self._on_one(state, items[0])
        out: list[W] = []
        for item in items:
            out.extend(self._on_one(state, item))
        return out

    def _on_one(self, state: S, item: V) -> list[W]:
        raise NotImplementedError


def values(step_id: str, up: KeyedStream[W]) -> Stream[W]:
    """Drop the routing key after a keyed step."""
    return op.flat_map_batch(step_id, up, lambda kvs: [kv[1] for kv in kvs])


def of_type(step_id: str, up: Stream[Any], kind: type[W]) -> Stream[W]:
    """The items of ``up`` that are instances of ``kind``, in order."""
    return op.flat_map_batch(step_id, up, lambda xs: [x for x in xs if isinstance(x, kind)])


def key_by(step_id: str, up: Stream[V], key: Callable[[V], str]) -> KeyedStream[V]:
    """``op.key_on`` batch-wise."""
    keyed: Stream[tuple[str, V]] = op.flat_map_batch(
        step_id, up, lambda xs: [(key(x), x) for x in xs]
    )
    return keyed
