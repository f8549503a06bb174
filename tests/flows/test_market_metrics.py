"""The market stage counts ticks into Prometheus only when the process serves metrics."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from connectors.kafka.replay import ReplayRecord
from connectors.kafka.serde import encode
from flows.market import parse_batch
from operators.events import DeadLetter, Tick


def _ticks_total() -> float:
    return REGISTRY.get_sample_value("scalpflow_ticks_total") or 0.0


def test_parse_batch_observes_metrics_only_when_asked() -> None:
    t0 = datetime(2026, 7, 8, 4, 0, tzinfo=UTC)
    tick = Tick(ts_event=t0, ts_recv=t0, token="1", exchange="NSE", ltp=100, cum_volume=1, seq=1)
    records = [
        ReplayRecord(b"1", encode(tick), 0, 0, 0, "md.ticks"),
        ReplayRecord(b"1", b"{", 0, 1, 0),
    ]
    before = _ticks_total()
    quiet = parse_batch(records, None, observe=False)
    assert _ticks_total() == before
    counted = parse_batch(records, None, observe=True)
    assert _ticks_total() == before + 1
    assert quiet == counted
    assert isinstance(counted[0], Tick)
    assert isinstance(counted[1], DeadLetter)
    assert counted[1].source_offset == 1
    assert counted[1].reason.startswith("INVALID_JSON")
