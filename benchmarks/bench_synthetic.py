"""Synthetic market generation speed and memory for a full day (index + ATM ± 10 CE/PE).

.venv/bin/python benchmarks/bench_synthetic.py [--seed 1] [--minutes 375] [--no-iterate]

Prints: array generation rate (ticks/s), ``ticks()`` and ``raw_messages()`` iteration rates
(Tick objects built lazily / msgspec-encoded bytes), and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--minutes", type=int, default=None, help="default: full day (375)")
    ap.add_argument("--no-iterate", action="store_true", help="generation only")
    args = ap.parse_args()

    base_rss = peak_rss_mb()
    cfg = SyntheticConfig(seed=args.seed, duration_minutes=args.minutes)
    t0 = time.perf_counter()
    market = SyntheticMarket(cfg).generate()
    gen_s = time.perf_counter() - t0
    n = market.raw_count
    print(f"instruments            {len(market.instruments())}")
    print(f"ticks                  {n:,}")
    print(f"generation (arrays)    {gen_s:.2f} s  = {n / gen_s:,.0f} ticks/s")
    print(f"peak RSS after gen     {peak_rss_mb():.0f} MB  (imports alone {base_rss:.0f} MB)")
    if args.no_iterate:
        return

    t0 = time.perf_counter()
    count = sum(1 for _ in market.ticks())
    dt = time.perf_counter() - t0
    print(f"ticks() iteration      {dt:.2f} s  = {count / dt:,.0f} Tick/s")

    t0 = time.perf_counter()
    size = 0
    for msg in market.raw_messages():
        size += len(msg.value)
    dt = time.perf_counter() - t0
    print(f"raw_messages() encode  {dt:.2f} s  = {n / dt:,.0f} msg/s  ({size / 1e6:,.0f} MB JSON)")
    print(f"peak RSS               {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
