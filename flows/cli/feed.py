"""``scalpflow feed synthetic``: a synthetic session into Kafka, its instruments into PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from flows.cli.app import _fail, _setup_logging, console, feed_app
from flows.cli.options import Day, Minutes, Rate, Seed, Strikes, _market, _progress
from flows.config.settings import Settings


@feed_app.command("synthetic")
def feed_synthetic(
    seed: Seed = 7,
    day: Day = "2026-07-08",
    minutes: Minutes = 60,
    strikes: Strikes = 10,
    speed: Annotated[
        float, typer.Option(min=0.0, help="0 = as fast as possible; N = N× market time.")
    ] = 0.0,
    rate: Rate = 1.0,
    faults: Annotated[
        float, typer.Option(min=0.0, max=0.2, help="Per-tick rate of each injected fault kind.")
    ] = 0.0,
    partitions: Annotated[
        int, typer.Option(min=1, help="Partitions of the ticks topic if it is created.")
    ] = 3,
    verbose: bool = False,
) -> None:
    """Produce a synthetic session to Kafka (and its instrument master to PostgreSQL)."""
    _setup_logging(verbose)
    settings = Settings()
    from connectors.feeds.publish import produce_synthetic
    from connectors.kafka.admin import BrokerUnavailableError, check_broker
    from connectors.postgres.instruments import save_instruments

    market = _market(seed, date.fromisoformat(day), minutes, strikes, rate, faults)
    try:
        check_broker(settings.kafka_bootstrap)
    except BrokerUnavailableError as exc:
        _fail(str(exc))
    dsn = settings.dsn()
    if dsn:
        from connectors.postgres.db import migrate

        migrate(dsn)
        save_instruments(dsn, market.instruments())
    else:
        console.print("[yellow]SCALPFLOW_PG_DSN unset: instrument master not stored[/]")
    total = market.raw_count
    with _progress() as progress:
        task = progress.add_task(f"producing to {settings.topics.ticks}", total=total)
        count = produce_synthetic(
            market,
            settings.kafka_bootstrap,
            settings.topics.ticks,
            partitions=partitions,
            speed=speed,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"produced {count} messages ({len(market.instruments())} instruments)"
        f" to {settings.topics.ticks}"
    )
    console.print("next: scalpflow run --no-tail  (the flows over it); scalpflow topics")
