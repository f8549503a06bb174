"""Issue 12 on the real services: no record can stop the pipeline.

A short synthetic trading session (~42k ticks over 3 partitions) with 10,000 seeded bad
records mixed in (``connectors.synthetic.bad_records``: every kind of broken message a feed or
an attacker can send) runs through the whole flow on Kafka and PostgreSQL. The flow must run
to the end of the topic; every bad record must come out as exactly one dead letter with the
reason code it was made for; every good tick must reach its 1-minute candle; and the session's
fills must equal those of the same session without the bad records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from connectors.synthetic.bad_records import KINDS, expected_codes
from tests.conftest import fresh_database
from tests.integration.fuzz_session import run_session, session_market, session_records
from tests.integration.helpers import unique_topics

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
