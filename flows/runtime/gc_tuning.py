"""Garbage-collector thresholds for a streaming process.

A replay allocates tens of millions of short-lived container objects (source batches, keyed
``(key, value)`` pairs, output lists); almost all are freed by reference counting, but with
CPython's default thresholds (700, 10, 10) each 700 of them start a generation-0 pass and
every hundredth pass a full one over the whole heap. Measured on a 60-minute synthetic replay
(425k ticks): 2,796 collections took 2.7 s of a 13.7 s run, the longest pause 118 ms. With
``STREAMING_THRESHOLDS`` the same run made 7 collections, 0.08 s in all, longest 18 ms
(``benchmarks/RESULTS.md``). Cycles are still collected, so memory stays bounded; they are
simply looked for less often.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

STREAMING_THRESHOLDS = (50_000, 20, 100)


def tune_for_streaming() -> None:
    """Use the streaming thresholds for the rest of this process (a flow worker process)."""
    gc.set_threshold(*STREAMING_THRESHOLDS)


@contextmanager
def streaming_gc() -> Iterator[None]:
    """The streaming thresholds while a flow runs in this process; the old ones afterwards."""
    previous = gc.get_threshold()
    gc.set_threshold(*STREAMING_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
