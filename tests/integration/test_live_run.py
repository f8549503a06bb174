"""`scalpflow run` in live (tail) mode on real Kafka and PostgreSQL: ticks stamped with the
current time flow into candles; when the feed goes silent the wall-clock heartbeat declares
it stalled and the kill switch fires, without any further tick arriving."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.kafka.admin import BoundedProducer
from connectors.kafka.serde import encode
from connectors.postgres.instruments import save_instruments
from operators.events import Tick
from tests.integration.helpers import cli_env, create_topics, unique_topics
from tests.processes import interrupt

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_live_run_detects_a_silent_feed_by_wall_clock(kafka_bootstrap, pg_dsn, pg_conn) -> None:
    instruments = SyntheticMarket(SyntheticConfig(seed=1, strikes_each_side=1)).instruments()
    save_instruments(pg_dsn, instruments)
    topics = unique_topics("it-live")
    create_topics(kafka_bootstrap, topics)
    run_id = f"live-{uuid.uuid4().hex[:8]}"
    env = cli_env(pg_dsn, kafka_bootstrap, topics)
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli.app", "run", "--tail", "--run-id", run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        producer = BoundedProducer(kafka_bootstrap)
        index = instruments[0]
        option = instruments[1]
        for i in range(60):  # ~6 s of a live feed, stamped now
            now = datetime.now(UTC)
            for inst, price in ((index, 2_600_000 + 5 * (i % 7)), (option, 12_000 + 5 * (i % 3))):
                book = {} if inst.kind == "INDEX" else {"bid": price - 10, "ask": price + 10}
                tick = Tick(ts_event=now, ts_recv=now, token=inst.token, exchange=inst.exchange,
                            ltp=price, cum_volume=100 * i, seq=i, **book)  # fmt: skip
                producer.produce(topics.ticks, encode(tick), key=inst.token.encode(),
                                 timestamp_ms=int(now.timestamp() * 1000))  # fmt: skip
            producer.flush()
            time.sleep(0.1)
        silent_since = time.monotonic()
        kinds: set[str] = set()
        while time.monotonic() - silent_since < 60 and not {"FEED_STALLED", "KILL_SWITCH"} <= kinds:
            time.sleep(1)
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            kinds = {r[0] for r in pg_conn.execute(
                "SELECT kind FROM risk_events WHERE run_id = %s", (run_id,))}  # fmt: skip
        waited = time.monotonic() - silent_since
        assert {"FEED_STALLED", "KILL_SWITCH"} <= kinds, f"risk events after {waited:.0f}s: {kinds}"
        assert waited >= 8  # the feed was silent ~10 s before it was declared stalled
        candles = pg_conn.execute(
            "SELECT count(*) FROM candles WHERE run_id = %s AND interval = '1s'", (run_id,)
        ).fetchone()
        assert candles is not None
        assert candles[0] >= 4
    finally:
        interrupt(proc)
