"""Prometheus metrics of a flow process (scraped from ``--metrics-port``; see infra/prometheus).

Metrics observe; they never feed a decision (decisions use event time only).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from operators.events import DeadLetter, Tick

TICKS = Counter("scalpflow_ticks_total", "Valid ticks processed by the market stage")
DEAD_LETTERS = Counter(
    "scalpflow_dead_letters_total", "Messages sent to the dead-letter topic", ["reason"]
)
FEED_LAG = Gauge("scalpflow_feed_lag_ms", "ts_recv - ts_event of the last tick", ["token"])
FEED_LAG_HIST = Histogram(
    "scalpflow_feed_lag_seconds",
    "ts_recv - ts_event per tick",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
EVENT_TIME = Gauge("scalpflow_event_time_seconds", "Latest ts_event seen (epoch seconds)")


def observe_tick(tick: Tick) -> None:
    lag = (tick.ts_recv - tick.ts_event).total_seconds()
    TICKS.inc()
    FEED_LAG.labels(tick.token).set(lag * 1000)
    FEED_LAG_HIST.observe(max(lag, 0.0))
    EVENT_TIME.set(tick.ts_event.timestamp())


def observe_ticks(ticks: Sequence[Tick]) -> None:
    """``observe_tick`` for a whole source batch: one counter update and one lag gauge per
    token per batch (the gauge holds the batch's last lag for that token, as before)."""
    if not ticks:
        return
    TICKS.inc(len(ticks))
    last_lag: dict[str, float] = {}
    observe = FEED_LAG_HIST.observe
    for tick in ticks:
        lag = (tick.ts_recv - tick.ts_event).total_seconds()
        last_lag[tick.token] = lag
        observe(lag if lag > 0.0 else 0.0)
    for token, lag in last_lag.items():
        FEED_LAG.labels(token).set(lag * 1000)
    EVENT_TIME.set(ticks[-1].ts_event.timestamp())


def observe_dead_letter(dead: DeadLetter) -> None:
    DEAD_LETTERS.labels(dead.reason.split(":", 1)[0]).inc()


def serve(port: int) -> None:
    """Expose /metrics on ``port`` (0 = disabled)."""
    if port:
        start_http_server(port)
