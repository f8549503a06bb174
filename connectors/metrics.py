"""Prometheus metrics of a flow process (scraped from ``--metrics-port``; see infra/prometheus).

Metrics observe; they never feed a decision (decisions use event time only).
"""

from __future__ import annotations

import logging
import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import REGISTRY, Counter, Gauge, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from operators.events import DeadLetter, Tick

log = logging.getLogger(__name__)
TICKS = Counter("scalpflow_ticks_total", "Valid ticks processed by the market stage")
DEAD_LETTERS = Counter(
    "scalpflow_dead_letters_total", "Messages sent to the dead-letter topic", ["reason"]
)
KAFKA_REFUSED = Counter(
    "scalpflow_kafka_refused_records_total",
    "Output records the broker refused (logged with their reason; the flow goes on)",
    ["topic"],
)
SINK_REJECTED = Counter(
    "scalpflow_sink_rejected_rows_total",
    "Events PostgreSQL refused for a data reason, kept in dead_letters (the epoch goes on)",
    ["table"],
)
FLOW_RESTARTS = Counter(
    "scalpflow_flow_restarts_total",
    "Restarts of the flow's worker processes by the `scalpflow run` supervisor (each logged)",
)
FEED_LAG = Gauge("scalpflow_feed_lag_ms", "ts_recv - ts_event of the last tick", ["token"])
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


class BatchHistogram:
    """A Prometheus histogram fed a batch at a time.

    ``prometheus_client.Histogram.observe`` takes a lock and walks the buckets in Python for
    every value: at every tick that was ~4% of a replay. This counts a batch into local bins
    (one ``bisect`` per value) and adds them under one lock; the exposition is the standard
    ``_bucket{le=...}``/``_count``/``_sum`` series (``le`` is inclusive, as in Prometheus).
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self.bounds) + 1)  # the last bin is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Iterable[float]) -> None:
        bins = [0] * len(self._counts)
        total = 0.0
        bounds = self.bounds
        for value in values:
            bins[bisect_left(bounds, value)] += 1
            total += value
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, bins, strict=True)]
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)


FEED_LAG_HIST = BatchHistogram(
    "scalpflow_feed_lag_seconds", "ts_recv - ts_event per tick", LAG_BUCKETS
)
REGISTRY.register(FEED_LAG_HIST)  # a Collector by protocol (``collect``)
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
)
TICK_TO_SIGNAL = BatchHistogram(
    "scalpflow_tick_to_signal_seconds",
    "Wall clock from consuming a tick to the strategy stage emitting the signal it caused",
    LATENCY_BUCKETS,
)
TICK_TO_FILL = BatchHistogram(
    "scalpflow_tick_to_fill_seconds",
    "Wall clock from consuming a tick to the account stage emitting the fill made on it",
    LATENCY_BUCKETS,
)
REGISTRY.register(TICK_TO_SIGNAL)
REGISTRY.register(TICK_TO_FILL)
EVENT_TIME = Gauge("scalpflow_event_time_seconds", "Latest ts_event seen (epoch seconds)")


def observe_ticks(ticks: Sequence[Tick]) -> None:
    """Count a source batch of ticks, their feed lag (histogram, and the last lag per token
    as a gauge) and the latest event time."""
    if not ticks:
        return
    TICKS.inc(len(ticks))
    last_lag: dict[str, float] = {}
    lags = []
    for tick in ticks:
        lag = (tick.ts_recv - tick.ts_event).total_seconds()
        last_lag[tick.token] = lag
        lags.append(lag if lag > 0.0 else 0.0)
    FEED_LAG_HIST.observe_many(lags)
    for token, lag in last_lag.items():
        FEED_LAG.labels(token).set(lag * 1000)
    EVENT_TIME.set(ticks[-1].ts_event.timestamp())


def observe_dead_letter(dead: DeadLetter) -> None:
    DEAD_LETTERS.labels(dead.reason.split(":", 1)[0]).inc()


def serve(port: int, address: str = "127.0.0.1") -> tuple[str, int] | None:
    """Expose /metrics on ``address:port`` (0 = disabled); localhost unless told otherwise
    (``SCALPFLOW_BIND_ADDRESS``). Returns the address it listens on, or None: a port taken
    meanwhile only costs the endpoint (and ``scalpflow run``'s status line), never the run."""
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, addr=address)
    except OSError as exc:
        log.warning("no /metrics on %s:%d: %s", address, port, exc)
        return None
    host, bound = server.server_address[:2]
    return str(host), int(bound)
