"""Commands end by saying what they wrote and what to run next."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from connectors.kafka.admin import topic_summary
from flows.cli.app import app
from tests.topics import topic_name

pytestmark = pytest.mark.kafka


def test_feed_says_how_many_messages_went_where_and_what_next(kafka_bootstrap: str) -> None:
    topic = topic_name("feed-summary")
    env = {
        "SCALPFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SCALPFLOW_TOPIC_TICKS": topic,
        "SCALPFLOW_PG_DSN": "",
    }
    done = CliRunner().invoke(
        app, ["feed", "synthetic", "--minutes", "1", "--strikes", "1"], env=env
    )
    assert done.exit_code == 0, done.output
    on_topic = sum(p.end - p.begin for p in topic_summary(kafka_bootstrap, [topic])[topic])
    assert on_topic > 0
    assert f"produced {on_topic} messages" in done.output
    assert f"to {topic}" in done.output
    assert done.output.rstrip().endswith(
        "next: scalpflow run --no-tail  (the flows over it); scalpflow topics"
    )
