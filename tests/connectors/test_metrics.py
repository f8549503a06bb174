"""The batch-fed lag histogram exposes exactly what prometheus_client's own Histogram would
for the same values (the reference), and the tick observer feeds it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors import metrics
from connectors.metrics import LAG_BUCKETS, BatchHistogram
from operators.events import Tick


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for s in family.samples:
                if s.name.endswith(("_bucket", "_count", "_sum")):
                    out[(s.name, s.labels.get("le", ""))] = s.value
    return out


def test_batch_histogram_matches_prometheus_client_histogram() -> None:
    rng = random.Random(5)
    # edges on purpose: values equal to bucket bounds (le is inclusive), zero, far outliers
    values = [*LAG_BUCKETS, 0.0, 50.0, *(rng.expovariate(3.0) for _ in range(2_000))]
    reference_registry, ours_registry = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("lag_seconds", "doc", buckets=LAG_BUCKETS, registry=reference_registry)
    for v in values:
        reference.observe(v)
    ours = BatchHistogram("lag_seconds", "doc", LAG_BUCKETS)
    ours_registry.register(ours)
    for start in range(0, len(values), 333):
        ours.observe_many(values[start : start + 333])
    expected = _samples(reference_registry, "lag_seconds")
    got = _samples(ours_registry, "lag_seconds")
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key
    assert got[("lag_seconds_bucket", "+Inf")] == len(values)


def test_observe_ticks_counts_lags_into_the_histogram() -> None:
    t0 = datetime(2026, 7, 8, 4, 0, tzinfo=UTC)
    lags_ms = [5, 30, 700]
    ticks = [
        Tick(
            ts_event=t0,
            ts_recv=t0 + timedelta(milliseconds=ms),
            token=f"t{i}",
            exchange="NFO",
            ltp=100,
            cum_volume=1,
            seq=i,
        )
        for i, ms in enumerate(lags_ms)
    ]
    name = "scalpflow_feed_lag_seconds"
    before = _samples(REGISTRY, name)
    metrics.observe_ticks(ticks)
    after = _samples(REGISTRY, name)

    def added(le: str) -> float:
        return after[(f"{name}_bucket", le)] - before[(f"{name}_bucket", le)]

    assert (added("0.01"), added("0.05"), added("1.0"), added("+Inf")) == (1, 2, 3, 3)
    assert REGISTRY.get_sample_value("scalpflow_feed_lag_ms", {"token": "t2"}) == 700.0
