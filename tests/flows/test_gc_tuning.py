"""The streaming GC thresholds apply while a flow runs and are restored afterwards."""

from __future__ import annotations

import gc

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource

from flows.pipeline import run_flow
from flows.runtime.gc_tuning import STREAMING_THRESHOLDS


def test_run_flow_uses_streaming_thresholds_and_restores_the_previous_ones() -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    flow = Dataflow("gc-probe")
    stream = op.input("in", flow, TestingSource([1, 2, 3]))

    def probe(x: int) -> int:
        seen.append(gc.get_threshold())
        return x

    probed = op.map("probe", stream, probe)
    out: list[int] = []
    op.output("out", probed, TestingSink(out))
    run_flow(flow)
    assert out == [1, 2, 3]
    assert seen == [STREAMING_THRESHOLDS] * 3
    assert gc.get_threshold() == before
    assert before != STREAMING_THRESHOLDS
