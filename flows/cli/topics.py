"""``scalpflow topics``: partitions and offsets of Kafka topics."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.cli.app import _fail, app
from flows.config.settings import Settings


@app.command("topics")
def topics(
    names: Annotated[list[str] | None, typer.Argument(help="Topics (default: all).")] = None,
) -> None:
    """Partitions and offsets of Kafka topics (read with kafka-python)."""
    from connectors.kafka.admin import BrokerUnavailableError, check_broker, topic_summary

    settings = Settings()
    try:
        check_broker(settings.kafka_bootstrap, timeout=5.0)
    except BrokerUnavailableError as exc:
        _fail(str(exc))
    table = Table("topic", "partition", "begin", "end", "messages")
    for topic, parts in topic_summary(settings.kafka_bootstrap, names).items():
        for p in parts:
            table.add_row(topic, str(p.partition), str(p.begin), str(p.end), str(p.end - p.begin))
    Console().print(table)
