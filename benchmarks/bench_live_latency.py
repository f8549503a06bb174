"""Tick → signal and tick → fill wall-clock latency of a live ``scalpflow run --tail`` (issue 19).

    SCALPFLOW_PG_DSN=postgresql://scalpflow@127.0.0.1:54339/scalpflow \
        .venv/bin/python -m benchmarks.bench_live_latency --minutes 5 --rate 5000

A synthetic session is produced *in real time* (paced by its event times, about ``--rate``
ticks/s) into a fresh ticks topic while ``scalpflow run --tail`` trades it into a scratch
database and run-scoped output topics. A consumer here reads the signals and fills topics as
they are written; each record's latency is the wall time it arrived here minus the wall time
its causing tick was produced (a signal's and a fill's event time is its tick's event time,
and the producer records when it sent each event-time millisecond). So the figure covers the
whole path: broker in, flow, broker out.

The session is dated at market hours (09:15 IST) whatever the hour the benchmark runs, so the
flow's live heartbeat clock is shifted by the same offset (``SCALPFLOW_CLOCK_OFFSET_MS``): its
stall detection and wall-clock release then see the feed as real time, as they would live.
The flow's own tick → signal/fill histograms (``/metrics``) are printed too.
"""

from __future__ import annotations

import argparse
import heapq
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as dtime

import msgspec
import numpy as np
from confluent_kafka import Consumer

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.kafka.admin import BoundedProducer, ensure_topics
from connectors.postgres.db import connect, scratch_database
from connectors.postgres.instruments import save_instruments

TOPICS = ("dlq", "bars", "regime", "ai_state", "signals", "orders", "fills", "risk")
# Three underlyings (one synthetic chain holds at most ~1,750 ticks/s): (name, index token,
# opening level, strike step)
UNDERLYINGS = (
    ("NIFTY", "26000", 26000.0, 50),
    ("BANKNIFTY", "26009", 56000.0, 100),
    ("FINNIFTY", "26037", 26500.0, 50),
)
STRIKES = 40


def _chain(i: int, minutes: int, scale: float, seed: int) -> SyntheticMarket:
    name, token, level, step = UNDERLYINGS[i]
    return SyntheticMarket(
        SyntheticConfig(
            seed=seed + i,
            date=date(2026, 7, 7),
            start_time=dtime(9, 15),
            duration_minutes=minutes,
            strikes_each_side=STRIKES,
            tick_rate_scale=scale,
            index_tick_rate_scale=1.0,  # the index ticks about once a second, as live
            underlying=name,
            index_token=token,
            opening_level=level,
            strike_step=step,
        )
    )


def _markets(minutes: int, rate: float, seed: int) -> list[SyntheticMarket]:
    """Three chains whose ticks add up to about ``rate`` per second."""
    probe = sum(_chain(i, 1, 1.0, seed).raw_count for i in range(len(UNDERLYINGS))) / 60
    scale = min(10.0, rate / probe)
    return [_chain(i, minutes, scale, seed) for i in range(len(UNDERLYINGS))]


class _Outputs(threading.Thread):
    """Reads the signals and fills topics; keeps (topic, event ms, arrival wall time)."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-lat-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
            }
        )
        self.names = {v: k for k, v in topics.items()}
        self.consumer.subscribe(list(topics.values()))
        self.seen: list[tuple[str, int, float, bytes]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            msg = self.consumer.poll(0.05)
            now = time.time()
            if msg is None or msg.error():
                continue
            ts = msg.timestamp()[1]
            self.seen.append((self.names[msg.topic() or ""], ts, now, msg.value() or b""))
        self.consumer.close()


#: index token -> underlying: the strategy stage's driver, whose ticks close its 1-minute bars
DRIVERS = {token: name for name, token, _, _ in UNDERLYINGS}


def _produce(
    markets: list[SyntheticMarket],
    bootstrap: str,
    topic: str,
    sent: np.ndarray,
    progress: Callable[[int], None] | None = None,
    drivers: dict[str, list[tuple[int, float]]] | None = None,
) -> int:
    """Produce the markets merged and paced by event time; ``sent[ms - start]`` = wall time
    that event-time millisecond was sent; ``drivers[underlying]`` gets (event ms, wall time
    sent) of each driver (index) tick."""
    producer = BoundedProducer(bootstrap, linger_ms=1)
    start_ms = int(markets[0].start.timestamp() * 1000)
    wall0 = time.time()
    count = 0
    merged = heapq.merge(*(m.raw_messages() for m in markets), key=lambda m: m.timestamp_ms)
    report = wall0 + 30
    for msg in merged:
        if count % 1000 == 0 and time.time() >= report:
            report += 30
            if progress is not None:
                progress(count)
        due = wall0 + (msg.timestamp_ms - start_ms) / 1000
        lag = due - time.time()
        if lag > 0.0005:
            time.sleep(lag)
        producer.produce(topic, msg.value, key=msg.key, timestamp_ms=msg.timestamp_ms)
        i = msg.timestamp_ms - start_ms
        now = time.time()
        if 0 <= i < len(sent) and not sent[i]:  # the first tick of that millisecond
            sent[i] = now
        if drivers is not None:
            u = DRIVERS.get(msg.key.decode())
            if u is not None:
                drivers.setdefault(u, []).append((msg.timestamp_ms, now))
        count += 1
    producer.flush()
    return count


def _latencies(
    seen: list[tuple[str, int, float, bytes]],
    sent: np.ndarray,
    start_ms: int,
    drivers: dict[str, list[tuple[int, float]]],
) -> dict[str, list[float]]:
    """Latencies in seconds from the records seen and the producer's send times.

    A signal made on a tick (an exit on the driver's price) has that tick's time; one made
    on a closed 1-minute bar has the bar's end (a whole minute), and the strategy stage closes
    the bar as soon as the market reaches its end (the first tick at or after it, any token,
    or the input floor passing it), so its cause is the first tick *sent* at or after the end
    (a lower bound on when the bar could close: the floor needs every partition past the end).

    A fill's event time is the tick it filled on, which for an entry on a bar close can be a
    tick sent *before* the decision existed: ``fills_tick`` is measured from that tick;
    ``fills`` from the later of that tick and the cause of the fill's signal (the latest
    signal on the same instrument at or before the fill's time): the pipeline's own tick →
    fill latency."""
    out: dict[str, list[float]] = {"signals": [], "fills": [], "fills_tick": [], "regime": []}
    slowest: list[tuple[float, int, str]] = []  # (tick->fill, fill event ms, token)
    times = {u: np.array([t for t, _ in xs]) for u, xs in drivers.items()}
    causes: dict[str, list[tuple[int, float]]] = {}  # instrument -> (signal ts, cause sent)

    def first_sent(ms: int) -> float:
        i = ms - start_ms
        nz = np.flatnonzero(sent[max(i, 0) :])
        return float(sent[i + nz[0]]) if len(nz) and i >= 0 else 0.0

    for name, ts, arrived, value in seen:
        if name == "fills":
            continue
        record = msgspec.json.decode(value)
        underlying = record.get("underlying", "")
        ticks = drivers.get(underlying)
        if not ticks:
            continue
        if ts % 60_000 == 0:
            cause = first_sent(ts)
            if not cause:
                continue
        else:
            k = int(np.searchsorted(times[underlying], ts))
            if k >= len(ticks):
                continue
            cause = ticks[k][1]
        if name == "regime":  # once a minute per underlying, made on the bar close as well
            out["regime"].append(arrived - cause)
            continue
        out["signals"].append(arrived - cause)
        causes.setdefault(record.get("instrument", ""), []).append((ts, cause))
    for name, ts, arrived, value in seen:
        i = ts - start_ms
        if name != "fills" or not (0 <= i < len(sent) and sent[i] > 0):
            continue
        out["fills_tick"].append(arrived - sent[i])
        token = msgspec.json.decode(value).get("token", "")
        decided = [c for t, c in causes.get(token, []) if t <= ts]
        if decided:
            out["fills"].append(arrived - max(float(sent[i]), decided[-1]))
            slowest.append((out["fills"][-1], ts, token))
    for lag, ts, token in sorted(slowest, reverse=True)[:5]:
        at = datetime.fromtimestamp(ts / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
        print(f"  slow fill: {lag * 1000:.0f} ms, {token} at {at} UTC (event time)")
    return out


def _percentiles(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: none observed"
    a = np.array(values) * 1000
    return (
        f"{name}: n={len(a)} p50={np.percentile(a, 50):.0f} ms p99={np.percentile(a, 99):.0f} ms"
        f" max={a.max():.0f} ms"
    )


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text: str = r.read().decode()
            return text
    except OSError:
        return ""


def _histogram_quantile(text: str, name: str, q: float) -> float | None:
    """Prometheus-style quantile (upper bound of the bucket holding it) from /metrics text."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for bound, cum in buckets:
        if cum >= q * total:
            return bound
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--bootstrap", default=os.environ.get("SCALPFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    ap.add_argument("--minutes", type=int, default=5)
    ap.add_argument("--rate", type=float, default=5000.0, help="ticks/s of the feed")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--metrics-port", type=int, default=9419)
    ap.add_argument(
        "--lateness",
        action="store_true",
        help="baseline: release by bounded lateness (SCALPFLOW_INPUT_WATERMARKS=0), as before",
    )
    ap.add_argument(
        "--strategy", action="append", default=[], help="passed to scalpflow run (repeatable)"
    )
    ap.add_argument(
        "--params", action="append", default=[], help="passed to scalpflow run (repeatable)"
    )
    ap.add_argument(
        "--feed-lag-threshold-ms",
        type=int,
        default=None,
        help="SCALPFLOW_FEED_LAG_THRESHOLD_MS for the flow (a loaded box lags: keep the"
        " feed-health kill switch from denying every entry)",
    )
    args = ap.parse_args()
    server = os.environ.get("SCALPFLOW_PG_DSN")
    if not server:
        raise SystemExit("set SCALPFLOW_PG_DSN to a PostgreSQL server DSN (a scratch db is made)")
    print(f"generating {args.minutes} min at ~{args.rate:,.0f} ticks/s ...", flush=True)
    markets = _markets(args.minutes, args.rate, args.seed)
    market = markets[0]
    total = sum(m.raw_count for m in markets)
    run_id = f"lat-{uuid.uuid4().hex[:6]}"
    topics = {name: f"bench.{name}.{run_id}" for name in TOPICS} | {
        "ticks": f"bench.ticks.{run_id}"
    }
    ensure_topics(args.bootstrap, {topics["ticks"]: args.partitions})
    ensure_topics(args.bootstrap, {topics[n]: 1 for n in TOPICS})
    lead = 15.0  # seconds for the flow to start before the first tick
    offset_ms = (market.start - datetime.now(UTC)).total_seconds() * 1000 - lead * 1000
    with scratch_database(server, "bench_latency") as dsn:
        save_instruments(dsn, [i for m in markets for i in m.instruments()])
        env = {
            **os.environ,
            "SCALPFLOW_PG_DSN": dsn,
            "SCALPFLOW_KAFKA_BOOTSTRAP": args.bootstrap,
            "SCALPFLOW_CLOCK_OFFSET_MS": f"{offset_ms:.0f}",
            "SCALPFLOW_INPUT_WATERMARKS": "0" if args.lateness else "1",
            **{f"SCALPFLOW_TOPIC_{k.upper()}": v for k, v in topics.items()},
        }
        cmd = [  # this interpreter and this checkout's CLI (not an installed entry point)
            sys.executable, "-c", "from flows.cli.app import main; main()",
            "run", "--tail", "--run-id", run_id, "--processes", str(args.processes),
            "--metrics-port", str(args.metrics_port),
            *(x for name in args.strategy for x in ("--strategy", name)),
            *(x for kv in args.params for x in ("--params", kv)),
        ]  # fmt: skip
        if args.feed_lag_threshold_ms is not None:
            env["SCALPFLOW_FEED_LAG_THRESHOLD_MS"] = str(args.feed_lag_threshold_ms)
        flow = subprocess.Popen(cmd, env=env, start_new_session=True)
        outputs = _Outputs(args.bootstrap, {k: topics[k] for k in ("signals", "fills", "regime")})
        outputs.start()
        sent = np.zeros(args.minutes * 60_000 + 1000)
        drivers: dict[str, list[tuple[int, float]]] = {}
        try:
            deadline = time.time() + lead
            while time.time() < deadline and not _scrape(args.metrics_port):
                time.sleep(0.5)
            time.sleep(max(0.0, deadline - time.time()))
            t0 = time.time()

            def progress(count: int) -> None:
                text = "\n".join(_scrape(args.metrics_port + i) for i in range(args.processes))
                consumed = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("scalpflow_ticks_total ")
                )
                kinds = [name for name, *_ in outputs.seen]
                print(
                    f"  {time.time() - t0:5.0f}s: produced {count:,}, flow consumed"
                    f" {consumed:,.0f}; seen {kinds.count('signals')} signals,"
                    f" {kinds.count('fills')} fills",
                    flush=True,
                )

            produced = _produce(markets, args.bootstrap, topics["ticks"], sent, progress, drivers)
            dt = time.time() - t0
            time.sleep(3)  # the last outputs
            metrics = "\n".join(_scrape(args.metrics_port + i) for i in range(args.processes))
            with connect(dsn) as conn:
                decisions = conn.execute(
                    "SELECT split_part(reason, ':', 1), count(*) FROM risk_decisions"
                    " WHERE run_id = %s GROUP BY 1 ORDER BY 2 DESC",
                    (run_id,),
                ).fetchall()
                events = conn.execute(
                    "SELECT kind, count(*), min(detail) FROM risk_events WHERE run_id = %s"
                    " GROUP BY 1 ORDER BY 2 DESC",
                    (run_id,),
                ).fetchall()
            print(f"risk decisions by reason: {decisions}")
            for kind, n, detail in events:
                print(f"risk events {kind}: {n} (first detail: {detail[:160]})")
        finally:
            os.killpg(flow.pid, signal.SIGINT)
            try:
                flow.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(flow.pid, signal.SIGKILL)
                flow.wait()
            outputs.stop.set()
            outputs.join(10)
    start_ms = int(market.start.timestamp() * 1000)
    lat = _latencies(outputs.seen, sent, start_ms, drivers)
    print(
        f"produced {produced:,} of {total:,} ticks in {dt:.0f}s ({produced / dt:,.0f}/s);"
        f" {args.processes} process(es), {args.partitions} partitions,"
        f" {'bounded lateness' if args.lateness else 'input watermarks'};"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end"
    )
    print(_percentiles("tick->signal (causing tick, end to end via Kafka)", lat["signals"]))
    print(_percentiles("tick->fill   (causing tick, end to end via Kafka)", lat["fills"]))
    print(_percentiles("  fill's own tick->fill", lat["fills_tick"]))
    print(_percentiles("tick->regime (bar end's first tick, end to end via Kafka)", lat["regime"]))
    for metric in ("scalpflow_tick_to_signal_seconds", "scalpflow_tick_to_fill_seconds"):
        p50 = _histogram_quantile(metrics, metric, 0.5)
        p99 = _histogram_quantile(metrics, metric, 0.99)
        if p50 is not None:
            print(f"{metric} (flow's /metrics, bucket bounds): p50<={p50}s p99<={p99}s")


if __name__ == "__main__":
    main()
