"""Prometheus metrics of the Angel One feed (process-wide; ticks/s = rate(ticks_total))."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TICKS = Counter("scalpflow_angelone_ticks", "Ticks decoded and handed to Kafka", ["mode"])
DEAD_LETTERS = Counter(
    "scalpflow_angelone_dead_letters", "Undecodable websocket frames sent to the DLQ"
)
RECONNECTS = Counter("scalpflow_angelone_reconnects", "Websocket reconnection attempts")
STALLS = Counter("scalpflow_angelone_stalls", "Feed stalls detected by the data-timeout watchdog")
CONNECTED = Gauge("scalpflow_angelone_connected", "1 while the websocket is open")
DELIVERY_ERRORS = Counter(
    "scalpflow_angelone_delivery_errors", "Kafka records the producer failed to deliver"
)
PRODUCER_FULL = Counter(
    "scalpflow_angelone_producer_full",
    "Times the bounded producer queue was full and the feed waited (backpressure)",
)
LAG = Histogram(
    "scalpflow_angelone_tick_lag_seconds",
    "ts_recv - ts_event of each tick (exchange to this process)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
