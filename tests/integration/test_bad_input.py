"""Issue 12 on the real services: no record can stop the pipeline.

A short synthetic trading session (~42k ticks over 3 partitions) with 10,000 seeded bad
records mixed in (``connectors.feeds.synthetic.bad_records``: every kind of broken message a feed or
an attacker can send) runs through the whole flow on Kafka and PostgreSQL. The flow must run
to the end of the topic; every bad record must come out as exactly one dead letter with the
reason code it was made for; every good tick must reach its 1-minute candle; and the session's
fills must equal those of the same session without the bad records.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.feeds.synthetic.bad_records import KINDS, expected_codes
from connectors.kafka.serde import encode
from connectors.postgres.instruments import save_instruments
from operators.events import Tick
from tests.conftest import database_fixtures
from tests.integration.fuzz_session import run_session, session_market, session_records
from tests.integration.helpers import cli_env, consume_all, create_topics, produce, unique_topics
from tests.processes import interrupt

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

BAD = 10_000


# A database of its own, so the fuzz runs' rows are easy to inspect afterwards.
fuzz_dsn, fuzz_conn = database_fixtures("scalpflow_fuzz", "module", name="fuzz")


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


LIVE_BAD: dict[str, tuple[str, dict[str, Any]]] = {  # name: (reason code, changes to a tick)
    "ltp 10^15": ("PRICE_LIMIT", {"ltp": 10**15}),
    "ltp 2^63-3": ("PRICE_LIMIT", {"ltp": 2**63 - 3}),
    "time 1970": ("TIME_RANGE", {"ts_event": datetime(1970, 1, 1, tzinfo=UTC)}),
    "time 2100": ("TIME_RANGE", {"ts_event": datetime(2100, 1, 1, 4, tzinfo=UTC)}),
    "1 MB payload": ("PAYLOAD_TOO_LARGE", {}),
}
MB_PADDING = 990_000  # with the tick: ~1 MB, under the producer's default 1,000,000-byte limit


def _poison(tick: Tick, name: str, changes: dict[str, Any]) -> tuple[bytes, int]:
    """The bad twin of a good option tick: its value and its Kafka timestamp (= ts_event, as
    every producer stamps; 0 for a time before the epoch's first millisecond)."""
    bad = msgspec.structs.replace(tick, **changes)
    value = encode(bad)
    if name == "1 MB payload":
        value = value[:-1] + b',"padding":"' + b"x" * MB_PADDING + b'"}'
    return value, max(int(bad.ts_event.timestamp() * 1000), 0)


def test_single_poison_ticks_in_a_live_run_land_in_the_dlq_and_the_run_goes_on_trading(
    kafka_bootstrap: str, pg_dsn: str, pg_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Issue 12 "done when": one tick each at ltp 10^15, 2^63-3, time 1970, time 2100 and a
    1 MB payload, produced into a live `scalpflow run --tail` early in a synthetic session:
    each lands in md.dlq with its reason, the process keeps running, and it goes on TRADING:
    signals and fills after the poison ticks (in event time: one partition, so everything
    stamped later was processed after them), and no halt or kill switch before the first
    fill."""
    market = SyntheticMarket(
        SyntheticConfig(seed=7, date=date(2026, 7, 7), duration_minutes=10, strikes_each_side=1)
    )
    instruments = market.instruments()
    save_instruments(pg_dsn, instruments)
    options = {i.token for i in instruments if i.kind != "INDEX"}
    topics = unique_topics("it-poison")
    create_topics(kafka_bootstrap, topics, tick_partitions=1)
    run_id = f"poison-{uuid.uuid4().hex[:8]}"
    messages = list(market.raw_messages())
    ticks = list(market.ticks())
    assert len(messages) == len(ticks)
    # the poison ticks go in right after the first option tick past the session's 20th second
    at = next(
        n for n, t in enumerate(ticks)
        if t.token in options and t.ts_event >= ticks[0].ts_event + timedelta(seconds=20)
    )  # fmt: skip
    poisoned_at = ticks[at].ts_event
    stream = [(m.key, m.value, m.timestamp_ms) for m in messages[: at + 1]]
    stream += [
        (ticks[at].token.encode(), *_poison(ticks[at], name, changes))
        for name, (_code, changes) in LIVE_BAD.items()
    ]
    stream += [(m.key, m.value, m.timestamp_ms) for m in messages[at + 1 :]]
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli.app", "run", "--tail", "--run-id", run_id],
        env={**cli_env(pg_dsn, kafka_bootstrap, topics), "SCALPFLOW_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        produce(kafka_bootstrap, topics.ticks, stream)
        after = "SELECT count(*), min(ts) FROM {} WHERE run_id = %s AND ts > %s"
        fills = signals = 0
        first_fill: datetime | None = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (fills and signals):
            time.sleep(1)
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            row = pg_conn.execute(after.format("fills"), (run_id, poisoned_at)).fetchone()
            fills, first_fill = (int(row[0]), row[1]) if row else (0, None)
            row = pg_conn.execute(after.format("signals"), (run_id, poisoned_at)).fetchone()
            signals = int(row[0]) if row else 0
        assert fills > 0, f"no fill after the poison ticks ({signals} signals)"
        assert signals > 0
        assert first_fill is not None
        halts = pg_conn.execute(
            "SELECT kind, ts, detail FROM risk_events WHERE run_id = %s AND ts <= %s"
            " AND kind IN ('HALT', 'KILL_SWITCH')",
            (run_id, first_fill),
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
        interrupt(proc)
