"""Regime classifier vs the ADX/ATR rules, scored against the synthetic market's true regimes.

.venv/bin/python benchmarks/bench_regime_truth.py [--seed 11] [--days 20] [--train-days 14]

Generates ``--days`` consecutive weekday sessions (index only), builds 1-minute candles with
the production candle operator, computes features over the whole series in time order (as
the live flow does), labels within each session, trains on the first ``--train-days``
sessions and scores on the rest against ``SyntheticMarket.true_regimes()``:
- the classifier with the current labelling (``RegimeConfig()`` defaults),
- the classifier with purely forward labels (``label_lookback=0, label_trend_er=0.4``, the
  first labelling, kept to show why it changed),
- the rules (``rules-v1``: ATR percentile > 80 → HIGH_VOL, ADX(14) > 25 → TRENDING),
- how often each labelling itself agrees with the truth (an upper hint for the classifier).
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import numpy as np

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from operators.ai.regime import (
    REGIMES,
    RegimeConfig,
    confusion_matrix,
    extract_features,
    forward_labels,
    rule_classify,
    train,
)
from operators.events import Candle


def session(seed: int, day: date) -> tuple[list[Candle], list[int]]:
    """1-min candles of the index and the true regime index of each candle's minute."""
    market = SyntheticMarket(
        SyntheticConfig(seed=seed, date=day, strikes_each_side=0, tick_rate_scale=0.3)
    )
    candles = market.index_candles()
    truth = market.true_regimes()
    return candles, [REGIMES.index(truth[c.start]) for c in candles]


def weekdays(first: date, n: int) -> list[date]:
    out: list[date] = []
    d = first
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--train-days", type=int, default=14)
    ap.add_argument("--model-seed", type=int, default=0)
    args = ap.parse_args()
    if not 0 < args.train_days < args.days:
        raise SystemExit("need 0 < --train-days < --days")

    t0 = time.perf_counter()
    candles: list[Candle] = []
    truth_l: list[int] = []
    sess_l: list[int] = []
    for i, day in enumerate(weekdays(date(2026, 2, 2), args.days)):
        c, t = session(args.seed, day)
        candles += c
        truth_l += t
        sess_l += [i] * len(c)
    gen_s = time.perf_counter() - t0

    def col(attr: str) -> np.ndarray:
        return np.array([getattr(c, attr) for c in candles], dtype=np.float64) / 100

    high, low, close = col("high"), col("low"), col("close")
    volume = col("volume") * 100
    truth = np.array(truth_l, dtype=np.int64)
    sess = np.array(sess_l, dtype=np.int64)

    t1 = time.perf_counter()
    variants = {
        "current labels": RegimeConfig(),
        "forward-only labels": RegimeConfig(label_lookback=0, label_trend_er=0.4),
    }
    feats = extract_features(high, low, close, volume, RegimeConfig())
    finite = np.all(np.isfinite(feats), axis=1)
    train_rows = finite & (sess < args.train_days)
    test_rows = finite & (sess >= args.train_days)
    y = truth[test_rows]
    rule = rule_classify(feats[test_rows], RegimeConfig())
    print(
        f"{args.days} sessions (seed {args.seed}): {len(candles)} candles in {gen_s:.1f}s; "
        f"train on {args.train_days}, test on {args.days - args.train_days} "
        f"({int(test_rows.sum())} minutes)"
    )
    print(f"truth share in test      {np.bincount(y, minlength=3) / len(y)} {REGIMES}")
    print(f"rules-v1 vs truth        {(rule == y).mean():.3f}")
    preds = {}
    for name, cfg in variants.items():
        labels = forward_labels(close, cfg, sessions=sess)
        fit = train_rows & (labels >= 0)
        model = train(feats[fit], labels[fit], args.model_seed)
        pred = model.predict(feats[test_rows])
        preds[name] = pred
        lt = labels[test_rows]
        agree = float((lt[lt >= 0] == y[lt >= 0]).mean())
        print(
            f"model, {name:<20} vs truth {(pred == y).mean():.3f}"
            f"   (those labels vs truth {agree:.3f}, {int(fit.sum())} training rows)"
        )
    print(f"fit+score time           {time.perf_counter() - t1:.1f}s")
    print("confusion vs truth (rows true, cols predicted; TRENDING, RANGING, HIGH_VOL)")
    print(f"  model (current labels) {confusion_matrix(y, preds['current labels'])}")
    print(f"  rules-v1               {confusion_matrix(y, rule)}")


if __name__ == "__main__":
    main()
