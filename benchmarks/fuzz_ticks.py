"""Fuzz the whole flow with seeded bad records (issue 12): records tried, dead letters by
reason, crashes, and whether the session's fills equal those without the bad records.

    .venv/bin/python -m benchmarks.fuzz_ticks [--bad 100000] [--seed 12] [--minutes 30]

Runs the synthetic trading session of ``tests/integration/fuzz_session.py`` (30 minutes,
ATM ± 2, 0.3× tick rate: ~42k good ticks over 3 partitions) twice through Kafka
(``--bootstrap``/``SCALPFLOW_KAFKA_BOOTSTRAP``) and a fresh PostgreSQL database (created on
``--dsn``/``SCALPFLOW_TEST_PG_DSN`` and dropped afterwards): once clean, once with ``--bad``
bad records of every kind in ``connectors.feeds.synthetic.bad_records`` mixed in. A crash is the
flow raising (it would stop a live run); the run goes on to the next seed's check either way.
Exit status 1 when anything differs from what the bad records should give.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import uuid
from collections import Counter

import psycopg
from confluent_kafka.admin import AdminClient

from connectors.feeds.synthetic.bad_records import KINDS, expected_codes
from connectors.postgres.db import scratch_database
from flows.config.settings import Topics
from tests.integration.fuzz_session import Outcome, run_session, session_market, session_records


def bench_topics(tag: str) -> Topics:
    base = f"bench.fuzz.{tag}.{uuid.uuid4().hex[:8]}"
    names = {name: f"{base}.{name}" for name in Topics.model_fields}
    return Topics(**names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--bootstrap", default=os.environ.get("SCALPFLOW_KAFKA_BOOTSTRAP"))
    parser.add_argument("--dsn", default=os.environ.get("SCALPFLOW_TEST_PG_DSN"))
    args = parser.parse_args()
    if not args.bootstrap or not args.dsn:
        print("set --bootstrap and --dsn (or SCALPFLOW_KAFKA_BOOTSTRAP, SCALPFLOW_TEST_PG_DSN)")
        return 2
    market = session_market(args.minutes)
    instruments = {i.token: i for i in market.instruments()}
    clean = session_records(market, 0, args.seed)
    mixed = session_records(market, args.bad, args.seed)
    expected = Counter(expected_codes(mixed))
    crashes = 0
    outcomes: dict[str, Outcome] = {}
    created: list[Topics] = []
    with (
        scratch_database(args.dsn, "scalpflow_fuzz") as dsn,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        for name, records in (("clean", clean), ("fuzzed", mixed)):
            topics = bench_topics(name)
            created.append(topics)
            started = time.perf_counter()
            try:
                outcomes[name] = run_session(
                    args.bootstrap, dsn, conn, topics, records, instruments
                )
            except Exception:
                crashes += 1
                traceback.print_exc()
            print(f"{name}: {len(records):,} records in {time.perf_counter() - started:.1f}s")
    names = [t for topics in created for t in topics.model_dump().values()]
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for future in admin.delete_topics(names, operation_timeout=30).values():
        future.result()
    kinds = Counter(r.kind for r in mixed if r.expect is not None)
    print(
        f"records tried: {len(mixed):,} ({len(clean):,} good, {args.bad:,} bad, {len(kinds)} kinds)"
    )
    print(f"crashes: {crashes}")
    if crashes:
        return 1
    ref, got = outcomes["clean"], outcomes["fuzzed"]
    print("dead letters by reason (got / expected):")
    for code in sorted(set(expected) | set(got.dlq)):
        print(f"  {code:<18} {got.dlq[code]:>7,} / {expected[code]:>7,}")
    total = sum(got.dlq.values())
    print(f"dead letters: {total:,} on the DLQ topic, {got.dlq_rows:,} rows (bad in: {args.bad:,})")
    print(f"good ticks in candles: {got.candle_ticks:,} / {len(clean):,}")
    same = got.fills == ref.fills
    print(
        f"fills: {len(got.fills)} fuzzed vs {len(ref.fills)} clean: {'equal' if same else 'DIFFER'}"
    )
    ok = (
        got.dlq == expected
        and got.dlq_rows == args.bad
        and got.candle_ticks == len(clean)
        and same
        and bool(ref.fills)
        and len(kinds) == len(KINDS)
    )
    print("result:", "OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
