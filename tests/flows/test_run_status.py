"""`scalpflow run`'s status line: figures scraped from a real Prometheus endpoint."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from flows.cli.run_status import Scrape, free_ports, parse_metrics, scrape, status_line


def _registry(ticks: int, dead: dict[str, int], event: datetime) -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("scalpflow_ticks_total", "ticks", registry=registry).inc(ticks)
    letters = Counter("scalpflow_dead_letters_total", "dead", ["reason"], registry=registry)
    for reason, n in dead.items():
        letters.labels(reason).inc(n)
    Gauge("scalpflow_event_time_seconds", "t", registry=registry).set(event.timestamp())
    return registry


def test_scrape_reads_ticks_dead_letters_and_event_time_from_a_live_endpoint() -> None:
    event = datetime(2026, 7, 8, 4, 32, 15, tzinfo=UTC)  # 10:02:15 IST
    (port,) = free_ports(1)
    start_http_server(port, registry=_registry(1234, {"BAD_PRICE": 3, "LATE": 2}, event))
    got = scrape(port)
    assert got == Scrape(ticks=1234.0, dead_letters=5.0, event_time=event.timestamp())
    line = status_line(got, rate=617.0, lag=40)
    assert line == (
        "[run] 1,234 ticks · 617 ticks/s · event time 2026-07-08 10:02:15 IST"
        " · 5 dead letters · lag 40 msgs"
    )


def test_a_process_not_answering_yet_is_no_figures_not_an_error() -> None:
    (port,) = free_ports(1)
    assert scrape(port, timeout=0.5) is None
    assert status_line(Scrape(), rate=0.0, lag=None) == "[run] 0 ticks · 0 ticks/s · lag ?"


def test_created_samples_and_comments_are_not_counted() -> None:
    text = (
        "# HELP scalpflow_ticks_total ticks\n"
        "scalpflow_ticks_total 10.0\n"
        "scalpflow_ticks_created 1.7e+09\n"
        'scalpflow_dead_letters_total{reason="X"} 1.0\n'
    )
    assert parse_metrics(text) == Scrape(ticks=10.0, dead_letters=1.0, event_time=0.0)
