"""Issue 12 on the real services: no record can stop the pipeline.

A short synthetic trading session (~42k ticks over 3 partitions) with 10,000 seeded bad
records mixed in (``connectors.synthetic.bad_records``: every kind of broken message a feed or
an attacker can send) runs through the whole flow on Kafka and PostgreSQL. The flow must run
to the end of the topic; every bad record must come out as exactly one dead letter with the
reason code it was made for; every good tick must reach its 1-minute candle; and the session's
fills must equal those of the same session without the bad records.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
import pytest

from connectors.instruments import save_instruments
from connectors.kafka_io import BoundedProducer
from connectors.serde import encode
from connectors.synthetic import SyntheticConfig, SyntheticMarket
from connectors.synthetic.bad_records import KINDS, expected_codes
from operators.events import Tick
from tests.conftest import fresh_database
from tests.integration.fuzz_session import run_session, session_market, session_records
from tests.integration.helpers import consume_all, create_topics, unique_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

BAD = 10_000


@pytest.fixture(scope="module")
def fuzz_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A database of its own: dead_letters has no run column to tell runs apart."""
    with fresh_database(pg_server_dsn, "scalpflow_fuzz") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def fuzz_conn(fuzz_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fuzz_dsn, autocommit=True) as conn:
        yield conn


def test_ten_thousand_bad_records_never_stop_the_flow_nor_change_its_trades(
    kafka_bootstrap: str, fuzz_dsn: str, fuzz_conn: psycopg.Connection[Any]
) -> None:
    market = session_market()
    instruments = {i.token: i for i in market.instruments()}
    clean = session_records(market, 0, seed=12)
    mixed = session_records(market, BAD, seed=12)
    expected = Counter(expected_codes(mixed))
    kinds = Counter(r.kind for r in mixed if r.expect is not None)
    assert sum(expected.values()) == BAD
    assert len(kinds) == len(KINDS)  # every kind of bad record is in the mix

    reference = run_session(
        kafka_bootstrap, fuzz_dsn, fuzz_conn, unique_topics("it-fuzz-clean"), clean, instruments
    )
    assert reference.dlq == Counter()  # the clean session is plausible throughout
    assert reference.candle_ticks == len(clean)
    assert reference.fills, "the session traded nothing: fill equality would prove nothing"

    fuzzed = run_session(
        kafka_bootstrap, fuzz_dsn, fuzz_conn, unique_topics("it-fuzz-bad"), mixed, instruments
    )
    print(
        f"\nfuzz: {len(mixed):,} records ({len(clean):,} good, {BAD:,} bad of {len(kinds)} kinds);"
        f" dead letters {sum(fuzzed.dlq.values()):,} (rows {fuzzed.dlq_rows:,});"
        f" candle ticks {fuzzed.candle_ticks:,}; fills {len(fuzzed.fills)} ="
        f" {len(reference.fills)} without the bad records"
    )
    for code, n in sorted(fuzzed.dlq.items()):
        print(f"  {code:<18} {n:>6,}")
    assert fuzzed.dlq == expected  # bad in = dead letters out, by count and reason
    assert fuzzed.dlq_rows == BAD
    assert fuzzed.candle_ticks == len(clean)  # every good tick reached its candle
    assert fuzzed.fills == reference.fills


LIVE_BAD = {  # name: (expected reason code, changes to a good option tick)
    "ltp 10^15": ("PRICE_LIMIT", {"ltp": 10**15}),
    "ltp 2^63-3": ("PRICE_LIMIT", {"ltp": 2**63 - 3}),
    "time 1970": ("TIME_RANGE", {"ts_event": datetime(1970, 1, 1, tzinfo=UTC)}),
    "time 2100": ("TIME_RANGE", {"ts_event": datetime(2100, 1, 1, 4, tzinfo=UTC)}),
    "1 MB payload": ("PAYLOAD_TOO_LARGE", {}),
}
MB_PADDING = 990_000  # with the tick: ~1 MB, under the producer's default 1,000,000-byte limit


def test_single_poison_ticks_in_a_live_run_land_in_the_dlq_and_the_run_goes_on(
    kafka_bootstrap: str, pg_dsn: str, pg_conn: psycopg.Connection[Any]
) -> None:
    """Issue 12 "done when": one tick each at ltp 10^15, 2^63-3, time 1970, time 2100 and a
    1 MB payload, produced (Kafka timestamp = ts_event, as every producer stamps) into a live
    `scalpflow run --tail`: each lands in md.dlq with its reason, the process keeps running,
    the instrument's later ticks still make candles, and no halt or kill switch fires."""
    instruments = SyntheticMarket(SyntheticConfig(seed=1, strikes_each_side=1)).instruments()
    save_instruments(pg_dsn, instruments)
    topics = unique_topics("it-poison")
    create_topics(kafka_bootstrap, topics)
    run_id = f"poison-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "SCALPFLOW_PG_DSN": pg_dsn,
        "SCALPFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        **{f"SCALPFLOW_TOPIC_{k.upper()}": v for k, v in topics.model_dump().items()},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "--tail", "--run-id", run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    index, option = instruments[0], instruments[1]
    poisons = iter(LIVE_BAD.items())
    try:
        producer = BoundedProducer(kafka_bootstrap)
        after_poison: datetime | None = None
        for i in range(80):  # ~8 s of a live feed stamped now, poison ticks in its first 2 s
            now = datetime.now(UTC)
            for inst, price in ((index, 2_600_000 + 5 * (i % 7)), (option, 12_000 + 5 * (i % 3))):
                book = {} if inst.kind == "INDEX" else {"bid": price - 10, "ask": price + 10}
                tick = Tick(ts_event=now, ts_recv=now, token=inst.token, exchange=inst.exchange,
                            ltp=price, cum_volume=100 * i, seq=i, **book)  # fmt: skip
                producer.produce(topics.ticks, encode(tick), key=inst.token.encode(),
                                 timestamp_ms=int(now.timestamp() * 1000))  # fmt: skip
            if i >= 5 and i % 3 == 0 and (poison := next(poisons, None)) is not None:
                name, (_code, changes) = poison
                bad = msgspec.structs.replace(tick, **changes)  # type: ignore[arg-type]
                value = encode(bad)
                if name == "1 MB payload":
                    value = value[:-1] + b',"padding":"' + b"x" * MB_PADDING + b'"}'
                stamp = int(bad.ts_event.timestamp() * 1000)
                producer.produce(topics.ticks, value, key=option.token.encode(),
                                 timestamp_ms=max(stamp, 0))  # fmt: skip
                after_poison = now
            producer.flush()
            time.sleep(0.1)
        assert after_poison is not None
        feed_end = datetime.now(UTC)
        later: int = 0
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            row = pg_conn.execute(
                "SELECT count(*) FROM candles WHERE run_id = %s AND token = %s"
                " AND interval = '1s' AND ts > %s",
                (run_id, option.token, after_poison),
            ).fetchone()
            later = int(row[0]) if row else 0
            if later >= 3:
                break
            time.sleep(1)
        assert later >= 3, f"{later} candles of the option's ticks after the poison"
        halts = pg_conn.execute(
            "SELECT kind, ts FROM risk_events WHERE run_id = %s AND ts <= %s"
            " AND kind IN ('HALT', 'KILL_SWITCH', 'FEED_STALLED')",
            (run_id, feed_end),
        ).fetchall()
        assert halts == []
        dlq = consume_all(kafka_bootstrap, topics.dlq)
        while len(dlq) < len(LIVE_BAD) and time.monotonic() < deadline + 30:
            time.sleep(1)  # the Kafka sink delivers in the background: wait for the letters
            dlq = consume_all(kafka_bootstrap, topics.dlq)
        reasons = sorted(dict(m.headers())["reason"].decode().split(":", 1)[0] for m in dlq)
        assert reasons == sorted(code for code, _ in LIVE_BAD.values())
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
