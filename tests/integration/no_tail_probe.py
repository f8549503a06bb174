"""``python -m tests.integration.no_tail_probe BOOTSTRAP TICKS CONTROL OUT``: the ``--no-tail``
inputs of a run (``kafka_source`` and ``control_source`` with ``tail=False``) through a
Bytewax flow in this process; writes each record's ``[topic, partition, offset]`` to OUT as
JSON when the flow has ended. A child process, so that a test can bound how long it waits."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink

from flows.pipeline import kafka_source, run_flow
from flows.sources.controls import control_source


def main(bootstrap: str, ticks: str, control: str, out: str) -> None:
    flow = Dataflow("no-tail-probe")
    a = op.input("ticks", flow, kafka_source(bootstrap, ticks, tail=False, batch_size=50))
    b = op.input("ctl", flow, control_source(bootstrap, control, tail=False))
    seen: list[Any] = []

    def where(m: Any) -> tuple[str, int, int]:
        msg = getattr(m, "msg", m)  # a KafkaError carries its message
        return (msg.topic, msg.partition, msg.offset)

    op.output("out", op.map("where", op.merge("both", a, b), where), TestingSink(seen))
    run_flow(flow)
    Path(out).write_text(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:5])
