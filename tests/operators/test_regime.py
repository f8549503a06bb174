"""Regime: TA-Lib-equal features, rules at thresholds, online = offline, classifier."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from functools import cache

import msgspec
import numpy as np
import pytest
import talib

from operators.ai.regime import (
    FEATURES,
    HIGH_VOL,
    RANGING,
    REGIMES,
    RULES_VERSION,
    TRENDING,
    RegimeConfig,
    RegimeLogic,
    RegimeModel,
    RollingRank,
    extract_features,
    forward_labels,
    rule_classify,
    rule_regime,
    train,
    valid_rows,
    walk_forward,
    wilder_adx,
    wilder_atr,
)
from operators.events import Bar, Candle, IndicatorSnapshot

SEG = 120  # minutes per synthetic segment
CFG = RegimeConfig(atr_window_sessions=1, bars_per_session=240, min_atr_history=20)
T0 = datetime(2026, 1, 6, 3, 45, tzinfo=UTC)  # 09:15 IST


@cache
def synthetic_candles(seed: int = 3, segments: int = 18) -> tuple[np.ndarray, ...]:
    """(open, high, low, close, volume, true_label) in rupees, segments of known regime.

    TRENDING: steady drift with small noise; RANGING: mean reversion to the segment's
    starting level; HIGH_VOL: driftless with six times the noise and larger volumes.
    """
    rng = np.random.default_rng(seed)
    kinds = np.array([TRENDING, RANGING, HIGH_VOL] * (segments // 3))
    rng.shuffle(kinds)
    price = 20_000.0
    cols: list[list[float]] = [[], [], [], [], [], []]
    for k in kinds:
        level = price
        sign = rng.choice([-1.0, 1.0])
        for _ in range(SEG):
            if k == TRENDING:
                r = sign * 0.0008 + rng.normal(0, 0.0004)
            elif k == RANGING:
                r = -0.3 * np.log(price / level) + rng.normal(0, 0.0004)
            else:
                r = rng.normal(0, 0.0025)
            o = price
            price = price * float(np.exp(r))
            wick = abs(rng.normal(0, 0.0004 if k != HIGH_VOL else 0.002)) * price
            vol = rng.lognormal(10 if k != HIGH_VOL else 10.8, 0.3)
            for col, val in zip(
                cols, (o, max(o, price) + wick, min(o, price) - wick, price, vol, k), strict=True
            ):
                col.append(float(val))
    arrays = [np.round(np.array(c), 2) for c in cols[:4]]  # whole paise, as candles carry
    return (*arrays, np.floor(np.array(cols[4])), np.array(cols[5], dtype=np.int64))


@cache
def dataset() -> tuple[np.ndarray, np.ndarray]:
    _, h, low, c, v, y = synthetic_candles()
    return extract_features(h, low, c, v, CFG), y


@cache
def fitted() -> RegimeModel:
    x, y = dataset()
    return train(x, y, seed=7, n_estimators=30)


def bars_from(o, h, low, c, v) -> list[Bar]:
    """Bars whose indicator snapshot is computed by TA-Lib, as the market stage does."""
    atr = talib.ATR(h, low, c, 14)
    adx = talib.ADX(h, low, c, 14)
    up, mid, lo = talib.BBANDS(c, 20, 2.0, 2.0)

    def opt(x: float) -> float | None:
        return None if np.isnan(x) else float(x)

    out = []
    for i in range(len(c)):
        start = T0 + timedelta(minutes=i)
        end = start + timedelta(minutes=1)
        candle = Candle(
            ts_event=end,
            ts_recv=end,
            token="26000",
            interval="1m",
            start=start,
            open=round(o[i] * 100),
            high=round(h[i] * 100),
            low=round(low[i] * 100),
            close=round(c[i] * 100),
            volume=int(v[i]),
            vwap=float(c[i]),
            ticks=60,
        )
        ind = IndicatorSnapshot(
            atr14=opt(atr[i]),
            adx14=opt(adx[i]),
            bb_upper=opt(up[i]),
            bb_middle=opt(mid[i]),
            bb_lower=opt(lo[i]),
        )
        out.append(Bar(ts_event=end, ts_recv=end, candle=candle, indicators=ind))
    return out


# ------------------------------------------------------------------ indicators vs TA-Lib
def test_wilder_atr_and_adx_equal_talib() -> None:
    _, h, low, c, _, _ = synthetic_candles()
    for ours, ref in (
        (wilder_atr(h, low, c, 14), talib.ATR(h, low, c, 14)),
        (wilder_adx(h, low, c, 14), talib.ADX(h, low, c, 14)),
    ):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        np.testing.assert_allclose(ours[~np.isnan(ours)], ref[~np.isnan(ref)], rtol=1e-10)


def test_bollinger_width_equals_talib() -> None:
    _, h, low, c, v, _ = synthetic_candles()
    up, mid, lo = talib.BBANDS(c, 20, 2.0, 2.0)
    x = extract_features(h, low, c, v, CFG)
    width = (up - lo) / mid
    np.testing.assert_allclose(x[19:, FEATURES.index("bb_width")], width[19:], rtol=1e-9)
    assert np.isnan(x[18, FEATURES.index("bb_width")])


def test_rolling_rank_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 20, 300).astype(float)
    rr = RollingRank(50)
    for i, x in enumerate(values):
        window = values[max(0, i - 50) : i]
        if len(window):
            expected = 100 * ((window < x).sum() + 0.5 * (window == x).sum()) / len(window)
            assert rr.rank(x) == pytest.approx(expected)
        rr.push(float(x))
    assert len(rr) == 50


# ------------------------------------------------------------------ rules
@pytest.mark.parametrize(
    ("adx", "pct", "expected"),
    [
        (25.0, 50.0, RANGING),
        (25.0001, 50.0, TRENDING),
        (40.0, 80.0, TRENDING),
        (40.0, 80.0001, HIGH_VOL),
        (10.0, 99.0, HIGH_VOL),
    ],
)
def test_rules_at_thresholds(adx: float, pct: float, expected: int) -> None:
    assert rule_regime(adx, pct, RegimeConfig()) == expected
    row = np.array([[adx, pct, 0.0, 0.0, 0.0, 0.0]])
    assert rule_classify(row, RegimeConfig()).tolist() == [expected]


def test_forward_labels_follow_the_segments() -> None:
    _, _, _, c, _, y = synthetic_candles()
    labels = forward_labels(c, CFG)
    assert (labels[-CFG.label_horizon :] == -1).all()
    m = labels >= 0
    assert (labels[m] == y[m]).mean() > 0.75
    assert set(np.unique(labels[m]).tolist()) == {TRENDING, RANGING, HIGH_VOL}


# ------------------------------------------------------------------ online path
def test_online_features_equal_offline_features() -> None:
    o, h, low, c, v, _ = synthetic_candles()
    n = 400
    offline = extract_features(h[:n], low[:n], c[:n], v[:n], CFG)
    logic = RegimeLogic("NIFTY", CFG, token="26000")
    emitted = 0
    for i, bar in enumerate(bars_from(o[:n], h[:n], low[:n], c[:n], v[:n])):
        ev = logic.on_bar(bar)
        if i < 27:  # ADX(14) warm-up
            assert ev is None
            continue
        assert ev is not None
        emitted += 1
        assert ev.model_version == RULES_VERSION
        assert ev.ts_event == bar.ts_event
        for j, name in enumerate(FEATURES):
            assert ev.features[name] == pytest.approx(offline[i, j], rel=1e-9, abs=1e-12)
        expected = rule_regime(offline[i, 0], offline[i, 1], CFG)
        assert ev.regime == REGIMES[expected]
    assert emitted == n - 27


def test_on_bar_ignores_other_bars_and_duplicates() -> None:
    o, h, low, c, v, _ = synthetic_candles()
    bars = bars_from(o[:40], h[:40], low[:40], c[:40], v[:40])
    logic = RegimeLogic("NIFTY", CFG, token="26000")
    for bar in bars[:-1]:
        logic.on_bar(bar)
    last = bars[-1]
    other = msgspec.structs.replace(last, candle=msgspec.structs.replace(last.candle, token="1"))
    one_s = msgspec.structs.replace(
        last, candle=msgspec.structs.replace(last.candle, interval="1s")
    )
    assert logic.on_bar(other) is None
    assert logic.on_bar(one_s) is None
    assert logic.on_bar(last) is not None
    assert logic.on_bar(last) is None  # the same minute again (at-least-once upstream)
    assert logic.on_bar(bars[-2]) is None


def test_snapshot_restore_continues_identically() -> None:
    o, h, low, c, v, _ = synthetic_candles()
    bars = bars_from(o[:300], h[:300], low[:300], c[:300], v[:300])
    logic = RegimeLogic("NIFTY", CFG)
    whole = [logic.on_bar(b) for b in bars]
    first = RegimeLogic("NIFTY", CFG)
    part = [first.on_bar(b) for b in bars[:150]]
    snap = pickle.loads(pickle.dumps(first.snapshot()))
    second = RegimeLogic("NIFTY", CFG, state=snap)
    part += [second.on_bar(b) for b in bars[150:]]
    assert msgspec.json.encode(part) == msgspec.json.encode(whole)


# ------------------------------------------------------------------ classifier
def test_training_is_deterministic_for_a_seed() -> None:
    x, y = dataset()
    a = train(x, y, seed=7, n_estimators=30)
    b = fitted()
    mask = valid_rows(x, y)
    assert a.version == b.version
    assert a.version.startswith("rf-")
    np.testing.assert_array_equal(a.predict(x[mask]), b.predict(x[mask]))
    assert pickle.dumps(a.estimator) == pickle.dumps(b.estimator)
    c = train(x, y, seed=8, n_estimators=30)
    assert c.version != a.version
    assert a.rows == int(mask.sum())


def test_walk_forward_report() -> None:
    x, y = dataset()
    rep = walk_forward(x, y, seed=7, n_folds=3, cfg=CFG, n_estimators=30)
    assert len(rep.folds) == 3
    sizes = [f.train_rows for f in rep.folds]
    assert sizes == sorted(sizes)
    assert len(set(sizes)) == 3
    total = sum(f.test_rows for f in rep.folds)
    assert sum(map(sum, rep.confusion)) == total
    diag = sum(rep.confusion[i][i] for i in range(3))
    assert rep.accuracy == pytest.approx(diag / total)
    assert 0.0 <= rep.rule_accuracy <= 1.0
    assert rep.accuracy > rep.rule_accuracy  # the classifier beats the plain rules here
    d = rep.to_dict()
    assert d["labels"] == ["TRENDING", "RANGING", "HIGH_VOL"]
    again = walk_forward(x, y, seed=7, n_folds=3, cfg=CFG, n_estimators=30)
    assert again.to_dict() == d


def test_train_refuses_a_single_regime() -> None:
    x, y = dataset()
    with pytest.raises(ValueError, match="two regimes"):
        train(x, np.where(y >= 0, 1, y), seed=1)


def test_logic_uses_the_model_when_given() -> None:
    o, h, low, c, v, _ = synthetic_candles()
    n = 300
    model = fitted()
    offline = extract_features(h[:n], low[:n], c[:n], v[:n], CFG)
    logic = RegimeLogic("NIFTY", CFG, model=model)
    events = [logic.on_bar(b) for b in bars_from(o[:n], h[:n], low[:n], c[:n], v[:n])]
    got = [(i, e) for i, e in enumerate(events) if e is not None]
    assert {e.model_version for _, e in got} == {model.version}
    rows = [i for i, _ in got]
    expected = model.predict(offline[rows])
    assert [e.regime for _, e in got] == [REGIMES[k] for k in expected]


def test_a_model_publishes_class_probabilities_and_the_rules_none() -> None:
    o, h, low, c, v, _ = synthetic_candles()
    n = 300
    model = fitted()
    offline = extract_features(h[:n], low[:n], c[:n], v[:n], CFG)
    bars = bars_from(o[:n], h[:n], low[:n], c[:n], v[:n])
    with_model = RegimeLogic("NIFTY", CFG, model=model)
    got = [(i, e) for i, b in enumerate(bars) if (e := with_model.on_bar(b)) is not None]
    proba = model.estimator.predict_proba(offline[[i for i, _ in got]])
    for (_, e), p in zip(got, proba, strict=True):
        assert not isinstance(e.probabilities, msgspec.UnsetType)
        assert list(e.probabilities) == [REGIMES[k] for k in model.estimator.classes_]
        assert list(e.probabilities.values()) == p.tolist()  # exactly sklearn's numbers
        assert e.regime == max(e.probabilities, key=e.probabilities.__getitem__)
    assert len({e.regime for _, e in got}) > 1  # not one class throughout
    by_rules = RegimeLogic("NIFTY", CFG)
    rules = [e for b in bars if (e := by_rules.on_bar(b)) is not None]
    assert rules
    assert all(e.probabilities is msgspec.UNSET for e in rules)
    assert b'"probabilities"' not in msgspec.json.encode(rules)  # encoded as before the field


def test_label_window_straddles_t_and_stays_inside_a_session() -> None:
    _, _, _, c, _, _ = synthetic_candles()
    b, h = CFG.label_lookback, CFG.label_horizon
    assert b > 0
    labels = forward_labels(c, CFG)
    assert (labels[:b] == -1).all()
    assert (labels[b:-h] >= 0).all()
    cut = 1000
    split = forward_labels(c, CFG, sessions=np.repeat([0, 1], [cut, len(c) - cut]))
    assert (split[cut - h : cut + b] == -1).all()  # windows spanning the overnight gap
    assert (split[b : cut - h] >= 0).all()
    assert (split[cut + b : -h] >= 0).all()
    with pytest.raises(ValueError, match="sessions"):
        forward_labels(c, CFG, sessions=np.zeros(3, dtype=np.int64))


def test_forward_only_labels_read_only_the_next_minutes() -> None:
    _, _, _, c, _, _ = synthetic_candles()
    cfg = CFG.model_copy(update={"label_lookback": 0, "label_trend_er": 0.4})
    h = cfg.label_horizon
    labels = forward_labels(c, cfg)
    assert labels[0] >= 0
    assert (labels[-h:] == -1).all()
    calm = np.flatnonzero((labels == TRENDING) | (labels == RANGING))
    assert len(calm) > 100
    for t in calm:
        seg = c[t : t + h + 1]
        er = abs(seg[-1] - seg[0]) / np.abs(np.diff(seg)).sum()
        assert labels[t] == (TRENDING if er >= 0.4 else RANGING)
