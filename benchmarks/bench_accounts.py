"""Many accounts through the whole flow (issue 14): ticks/s and peak RSS for 1, 10 and 100
accounts, and 1 vs 2 Bytewax processes at 100 accounts.

    SCALPFLOW_PG_DSN=... .venv/bin/python -m benchmarks.bench_accounts \
        --minutes 60 --strikes 1 --rate 0.2 --seed 7

Every account runs the same three strategies with different capital and limits, so the
strategy stage runs three instances whatever the account count and every tick fans out to
every account (each has its own simulator, portfolio, risk and feed health). Each run reads
the whole ticks topic (tail=False) into a fresh run id and is checked for completeness (the
1-minute candles must count every tick) before its figure is printed. Wall time includes
start-up; "per account" is the RSS growth from 1 to N accounts divided by N - 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import uuid
from datetime import date

from benchmarks._common import (
    ensure_ticks_topic,
    market_for,
    pg_server,
    run_pipeline,
)
from connectors.postgres.db import connect, scratch_database
from connectors.postgres.instruments import save_instruments
from flows.config.accounts import AccountLimits, AccountsFile, AccountSpec
from flows.config.settings import Topics
from tests.accounts import varied_accounts


def accounts(n: int) -> tuple[AccountSpec, ...]:
    """``n`` accounts: same strategies, different capital and limits."""
    return varied_accounts(
        n,
        lambda i: 500_000 + 50_000 * (i % 10),
        lambda i: AccountLimits(
            max_lots=5 + i % 6, daily_loss_pct=1.0 + i % 4, net_delta=500 + 100 * (i % 5)
        ),
    )


def run(dsn: str, bootstrap: str, topic: str, total: int, n_accounts: int, processes: int) -> None:
    run_id = f"bench-acc-{uuid.uuid4().hex[:6]}"
    names = ("bars", "dlq", "regime", "ai_state", "signals", "orders", "fills", "risk", "control")
    topics = Topics(**{name: f"bench.{name}.{run_id}" for name in names}, ticks=topic)
    accounts_file = AccountsFile(accounts=accounts(n_accounts))
    dt, rss = run_pipeline(
        dsn, bootstrap, topics, processes, 2401, total, run_id=run_id, accounts_file=accounts_file
    )
    with connect(dsn) as conn:
        fills = conn.execute(
            "SELECT count(*), count(DISTINCT account) FROM fills WHERE run_id = %s", (run_id,)
        ).fetchone()
    n_fills, traded = fills if fills else (0, 0)
    print(
        f"accounts={n_accounts:>3} processes={processes}: {total:,} ticks in {dt:.1f}s"
        f" = {total / dt:,.0f} ticks/s ({total * n_accounts / dt:,.0f} account-ticks/s);"
        f" peak RSS per process {', '.join(f'{r:.0f}' for r in rss)} MB;"
        f" {n_fills} fills in {traded} accounts",
        flush=True,
    )
    RESULTS.append((n_accounts, processes, max(rss)))


RESULTS: list[tuple[int, int, float]] = []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--strikes", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--accounts", type=int, nargs="+", default=[1, 10, 100])
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: drop the scratch db
    with scratch_database(pg_server(), "bench_accounts") as dsn:
        measure(dsn, args)


def measure(dsn: str, args: argparse.Namespace) -> None:
    market = market_for(args.minutes, args.seed, date(2026, 7, 8), args.strikes, args.rate)
    save_instruments(dsn, market.instruments())
    shape = f"s{args.seed}.m{args.minutes}.k{args.strikes}.r{args.rate}.p{args.partitions}"
    topic = f"bench.acc.ticks.{shape}"
    total = ensure_ticks_topic(args.bootstrap, topic, market, args.partitions)
    for n in args.accounts:
        run(dsn, args.bootstrap, topic, total, n, processes=1)
    most = max(args.accounts)
    run(dsn, args.bootstrap, topic, total, most, processes=2)
    one = next(r for n, p, r in RESULTS if n == min(args.accounts) and p == 1)
    many = next(r for n, p, r in RESULTS if n == most and p == 1)
    if most > min(args.accounts):
        per = (many - one) / (most - min(args.accounts))
        print(f"memory per account (1 process): {per * 1024:.0f} kB")


if __name__ == "__main__":
    main()
