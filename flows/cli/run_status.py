"""What ``scalpflow run`` says while its flow processes work, and when they are done.

The processes count ticks in their Prometheus registry (``connectors.metrics``); the CLI
scrapes each process's ``/metrics`` every few seconds and prints one status line on stderr:
ticks consumed, ticks/s over the last interval, the event time reached, and the lag (messages
on the ticks topic not yet consumed by this run). Wall-clock time is fine here: this is the
CLI, not the dataflow, and nothing it measures reaches the journal.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from operators.market.sessions import IST

TICKS = "scalpflow_ticks_total"
DEAD = "scalpflow_dead_letters_total"
EVENT_TIME = "scalpflow_event_time_seconds"


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free right now on 127.0.0.1 (for the processes' /metrics)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class Scrape:
    ticks: float = 0.0
    dead_letters: float = 0.0
    event_time: float = 0.0  # epoch seconds, 0 = none yet


def parse_metrics(text: str) -> Scrape:
    """The three figures the status line needs from a Prometheus text exposition."""
    ticks = dead = event = 0.0
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        if base == TICKS:
            ticks += float(value)
        elif base == DEAD:
            dead += float(value)
        elif base == EVENT_TIME:
            event = max(event, float(value))
    return Scrape(ticks, dead, event)


def scrape(port: int, timeout: float = 1.0) -> Scrape | None:
    """One process's figures, or None while it does not answer (starting, or gone)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            return parse_metrics(r.read().decode())
    except OSError:
        return None


def status_line(total: Scrape, rate: float, lag: int | None) -> str:
    """``[run] 120,000 ticks · 8,400 ticks/s · event time 10:02:13 IST · lag 1,200 msgs``."""
    parts = [f"[run] {int(total.ticks):,} ticks", f"{rate:,.0f} ticks/s"]
    if total.event_time:
        at = datetime.fromtimestamp(total.event_time, UTC).astimezone(IST)
        parts.append(f"event time {at:%Y-%m-%d %H:%M:%S} IST")
    if total.dead_letters:
        parts.append(f"{int(total.dead_letters):,} dead letters")
    parts.append("lag ?" if lag is None else f"lag {lag:,} msgs")
    return " · ".join(parts)


class TopicEnd:
    """Messages on a topic (end − begin offsets, all partitions), with one open consumer."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._consumer: Any = None  # a kafka-python KafkaConsumer, opened on first use

    def messages(self) -> int | None:
        from kafka import KafkaConsumer, TopicPartition

        try:
            if self._consumer is None:
                self._consumer = KafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    request_timeout_ms=5000,
                    enable_auto_commit=False,
                )
            consumer = self._consumer
            parts = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            if not tps:
                return None
            begin = consumer.beginning_offsets(tps)
            end = consumer.end_offsets(tps)
            return sum(end[tp] - begin[tp] for tp in tps)
        except Exception:
            return None

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class StatusTicker:
    """Scrapes the processes' ``/metrics`` and emits a status line each ``interval`` seconds,
    from a thread of its own while ``running()`` (the supervisor owns the processes, which
    come and go across restarts)."""

    def __init__(
        self,
        ports: Sequence[int],
        topic_end: TopicEnd | None,
        emit: Callable[[str], None],
        interval: float = 5.0,
    ) -> None:
        self.ports = list(ports)
        self.topic_end = topic_end
        self.emit = emit
        self.interval = interval
        self._last_ticks, self._last_at = 0.0, time.monotonic()
        self._done = threading.Event()

    def once(self) -> None:
        """One status line, if any process answers."""
        scrapes = [s for s in (scrape(port) for port in self.ports) if s is not None]
        if not scrapes:
            return
        total = Scrape(
            ticks=sum(s.ticks for s in scrapes),
            dead_letters=sum(s.dead_letters for s in scrapes),
            event_time=max(s.event_time for s in scrapes),
        )
        now = time.monotonic()
        rate = (total.ticks - self._last_ticks) / max(now - self._last_at, 1e-9)
        self._last_ticks, self._last_at = total.ticks, now
        on_topic = self.topic_end.messages() if self.topic_end is not None else None
        lag = None if on_topic is None else max(0, on_topic - int(total.ticks + total.dead_letters))
        self.emit(status_line(total, rate, lag))

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self._loop, name="run-status", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._done.set()
            thread.join(timeout=self.interval + 1)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.once()


def watch(
    procs: Sequence[subprocess.Popen[bytes]],
    ports: Sequence[int],
    topic_end: TopicEnd | None,
    emit: Callable[[str], None],
    interval: float = 5.0,
) -> list[int]:
    """Wait for ``procs``, emitting a status line every ``interval`` seconds; exit codes."""
    ticker = StatusTicker(ports, topic_end, emit, interval)
    while True:
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.2)
        if all(p.poll() is not None for p in procs):
            return [int(p.returncode) for p in procs]
        ticker.once()
