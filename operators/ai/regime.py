"""Market regime per underlying and minute: rules, features, labels and a sklearn classifier.

Why one module (~500 lines): the rules, the features, the labels and the classifier share
one feature definition that must be identical online and offline; split, that contract would
span files.

Rules (``rules-v1``): ATR(14) percentile against the trailing window > ``atr_high_pct``
→ HIGH_VOL; else ADX(14) > ``adx_trend`` → TRENDING; else RANGING.

Features (``FEATURES``), identical online (``RegimeLogic`` from ``Bar``s) and offline
(``extract_features`` over candle arrays):
- ``adx``: ADX(14), Wilder, as TA-Lib;
- ``atr_pct``: percentile rank (0–100, ties count half) of ATR(14) among the previous
  ``atr_window_sessions × bars_per_session`` ATR values; 50 until ``min_atr_history``;
- ``bb_width``: (upper − lower) / middle of Bollinger(20, 2σ population) = 4σ / SMA;
- ``autocorr``: lag-1 Pearson autocorrelation of the last ``feature_window`` log returns;
- ``efficiency``: Kaufman efficiency ratio |c_t − c_{t−n}| / Σ|Δc| over ``feature_window``;
- ``volume_z``: z-score of the minute's volume among the last ``feature_window`` volumes
  (population std, current minute included).

Labels (``forward_labels``) describe what the market did around minute t, from
``label_lookback`` minutes before it to ``label_horizon`` minutes after it: HIGH_VOL when
the window's realised volatility (std of 1-min log returns) is above the
``label_vol_quantile`` quantile of all windows' volatilities in the labelled series; else
TRENDING when the window's efficiency ratio ≥ ``label_trend_er``; else RANGING. Minutes
without a full window (the first ``label_lookback``, the last ``label_horizon``, and, when
``sessions`` is given, any window spanning two sessions) have no label (-1).
The window straddles t (default 15 before, 15 after) because the label should name the
regime the market is in at t: a purely forward window mostly describes the *next* stretch,
and scored against the synthetic market's true regimes such labels agree with the truth
less often than the ADX rule does (benchmarks/bench_regime_truth.py).

A published ``RegimeClassified.features`` also carries ``atr`` (ATR(14), rupees) for the
adaptive layer. With a model, a minute whose feature set is incomplete (e.g. Bollinger
still warming up) is classified by the rules and says so in ``model_version``.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from pydantic import Field

from operators.events import Bar, Regime, RegimeClassified
from operators.trading.risk_limits import FrozenConfig

REGIMES: tuple[Regime, ...] = ("TRENDING", "RANGING", "HIGH_VOL")
TRENDING, RANGING, HIGH_VOL = 0, 1, 2
FEATURES: tuple[str, ...] = ("adx", "atr_pct", "bb_width", "autocorr", "efficiency", "volume_z")
RULES_VERSION = "rules-v1"
REGIME_STATE_VERSION = 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class RegimeConfig(FrozenConfig):
    """Regime rule thresholds, feature windows and label definition (frozen, hashable)."""

    adx_trend: float = 25.0
    atr_high_pct: float = Field(default=80.0, gt=0, lt=100)
    atr_window_sessions: int = Field(default=50, gt=0)
    bars_per_session: int = Field(default=375, gt=0)
    min_atr_history: int = Field(default=30, ge=1)
    period: int = Field(default=14, gt=1)
    bb_period: int = Field(default=20, gt=1)
    bb_dev: float = Field(default=2.0, gt=0)
    feature_window: int = Field(default=20, gt=2)
    label_horizon: int = Field(default=15, gt=1)
    label_lookback: int = Field(default=15, ge=0)
    label_trend_er: float = Field(default=0.3, gt=0, lt=1)
    label_vol_quantile: float = Field(default=0.8, gt=0, lt=1)

    @property
    def atr_window(self) -> int:
        return self.atr_window_sessions * self.bars_per_session


# ---------------------------------------------------------------- shared small pieces
class RollingRank:
    """Percentile rank of a value among the last ``maxlen`` values, O(log n) + memmove."""

    def __init__(self, maxlen: int, values: Sequence[float] = ()) -> None:
        self.maxlen = maxlen
        self.window: deque[float] = deque(maxlen=maxlen)
        self.sorted: list[float] = []
        for v in values:
            self.push(v)

    def __len__(self) -> int:
        return len(self.window)

    def rank(self, x: float) -> float:
        """Percent of window values below ``x`` (ties count half)."""
        n = len(self.sorted)
        if n == 0:
            return 50.0
        lo = bisect.bisect_left(self.sorted, x)
        hi = bisect.bisect_right(self.sorted, x)
        return 100.0 * (lo + 0.5 * (hi - lo)) / n

    def push(self, x: float) -> None:
        if len(self.window) == self.maxlen:
            old = self.window[0]
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        self.window.append(x)
        bisect.insort(self.sorted, x)


def window_features(
    closes: Sequence[float] | FloatArray, volumes: Sequence[float] | FloatArray
) -> tuple[float, float, float]:
    """(autocorr, efficiency, volume_z) from the last n+1 closes and the last n volumes."""
    c = np.asarray(closes, dtype=np.float64)
    rets = np.diff(np.log(c))
    a, b = rets[:-1], rets[1:]
    sa, sb = a.std(), b.std()
    autocorr = (
        float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb)) if sa > 0 and sb > 0 else 0.0
    )
    path = float(np.abs(np.diff(c)).sum())
    efficiency = abs(float(c[-1] - c[0])) / path if path > 0 else 0.0
    v = np.asarray(volumes, dtype=np.float64)
    sv = v.std()
    volume_z = float((v[-1] - v.mean()) / sv) if sv > 0 else 0.0
    return autocorr, efficiency, volume_z


def rule_regime(adx: float, atr_pct: float, cfg: RegimeConfig) -> int:
    if atr_pct > cfg.atr_high_pct:
        return HIGH_VOL
    if adx > cfg.adx_trend:
        return TRENDING
    return RANGING


def rule_classify(features: FloatArray, cfg: RegimeConfig) -> IntArray:
    """Rule baseline over a feature matrix (columns in ``FEATURES`` order)."""
    adx = features[:, FEATURES.index("adx")]
    pct = features[:, FEATURES.index("atr_pct")]
    out = np.where(adx > cfg.adx_trend, TRENDING, RANGING)
    return np.where(pct > cfg.atr_high_pct, HIGH_VOL, out).astype(np.int64)


# ---------------------------------------------------------------- offline (training) path
def wilder_atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """ATR as TA-Lib computes it: first value = mean of TR[1..period], then Wilder."""
    n = len(close)
    out = np.full(n, np.nan)
    if n <= period:
        return out
    prev = close[:-1]
    tr = np.maximum.reduce([high[1:] - low[1:], np.abs(high[1:] - prev), np.abs(low[1:] - prev)])
    atr = float(tr[:period].mean())
    out[period] = atr
    for i in range(period + 1, n):
        atr = (atr * (period - 1) + tr[i - 1]) / period
        out[i] = atr
    return out


def wilder_adx(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """ADX as TA-Lib computes it (first value at index 2 × period − 1)."""
    n = len(close)
    out = np.full(n, np.nan)
    if n < 2 * period:
        return out
    plus_dm = np.zeros(n)
    minus_dm = np.zeros(n)
    tr = np.zeros(n)
    for i in range(1, n):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        if down > 0 and up < down:
            minus_dm[i] = down
        elif up > 0 and up > down:
            plus_dm[i] = up
        tr[i] = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    s_plus = float(plus_dm[1:period].sum())
    s_minus = float(minus_dm[1:period].sum())
    s_tr = float(tr[1:period].sum())

    def dx_at(i: int) -> float:
        nonlocal s_plus, s_minus, s_tr
        s_plus = s_plus - s_plus / period + plus_dm[i]
        s_minus = s_minus - s_minus / period + minus_dm[i]
        s_tr = s_tr - s_tr / period + tr[i]
        if s_tr == 0:
            return 0.0
        pdi = 100.0 * s_plus / s_tr
        mdi = 100.0 * s_minus / s_tr
        tot = pdi + mdi
        return 100.0 * abs(pdi - mdi) / tot if tot != 0 else 0.0

    sum_dx = 0.0
    for i in range(period, 2 * period):
        sum_dx += dx_at(i)
    adx = sum_dx / period
    out[2 * period - 1] = adx
    for i in range(2 * period, n):
        adx = (adx * (period - 1) + dx_at(i)) / period
        out[i] = adx
    return out


def extract_features(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    cfg: RegimeConfig | None = None,
) -> FloatArray:
    """Feature matrix (n × len(FEATURES)) over 1-min candles in rupees; NaN rows in warm-up."""
    cfg = cfg or RegimeConfig()
    high, low, close, volume = (np.asarray(x, dtype=np.float64) for x in (high, low, close, volume))
    n = len(close)
    out = np.full((n, len(FEATURES)), np.nan)
    out[:, 0] = wilder_adx(high, low, close, cfg.period)
    atr = wilder_atr(high, low, close, cfg.period)
    ranks = RollingRank(cfg.atr_window)
    for i in range(n):
        if not math.isnan(atr[i]):
            out[i, 1] = ranks.rank(atr[i]) if len(ranks) >= cfg.min_atr_history else 50.0
            ranks.push(float(atr[i]))
    p = cfg.bb_period
    for i in range(p - 1, n):
        seg = close[i - p + 1 : i + 1]
        mean = seg.mean()
        out[i, 2] = 2 * cfg.bb_dev * seg.std() / mean if mean != 0 else 0.0
    w = cfg.feature_window
    for i in range(w, n):
        out[i, 3:6] = window_features(close[i - w : i + 1], volume[i - w + 1 : i + 1])
    return out


def forward_labels(
    close: FloatArray, cfg: RegimeConfig | None = None, sessions: IntArray | None = None
) -> IntArray:
    """Regime label per minute from the window around it (see module doc).

    ``sessions`` (one id per minute, e.g. the IST date ordinal) keeps windows inside one
    session, so an overnight gap never reads as a trend or a volatility burst.
    """
    cfg = cfg or RegimeConfig()
    c = np.asarray(close, dtype=np.float64)
    h, b = cfg.label_horizon, cfg.label_lookback
    n = len(c)
    labels = np.full(n, -1, dtype=np.int64)
    if n <= h + b:
        return labels
    sess = np.zeros(n, dtype=np.int64) if sessions is None else np.asarray(sessions)
    if len(sess) != n:
        msg = f"sessions has {len(sess)} entries for {n} closes"
        raise ValueError(msg)
    logret = np.diff(np.log(c))
    absdiff = np.abs(np.diff(c))
    ts = np.arange(b, n - h)
    ts = ts[sess[ts - b] == sess[ts + h]]
    if len(ts) == 0:
        return labels
    vol = np.empty(len(ts))
    er = np.empty(len(ts))
    for j, t in enumerate(ts):
        vol[j] = logret[t - b : t + h].std()
        path = absdiff[t - b : t + h].sum()
        er[j] = abs(c[t + h] - c[t - b]) / path if path > 0 else 0.0
    threshold = float(np.quantile(vol, cfg.label_vol_quantile))
    lab = np.where(er >= cfg.label_trend_er, TRENDING, RANGING)
    labels[ts] = np.where(vol > threshold, HIGH_VOL, lab)
    return labels


def valid_rows(features: FloatArray, labels: IntArray) -> npt.NDArray[np.bool_]:
    return np.all(np.isfinite(features), axis=1) & (labels >= 0)


# ---------------------------------------------------------------- classifier
@dataclass
class RegimeModel:
    """A fitted classifier with the version string published as ``model_version``."""

    estimator: Any
    version: str
    feature_names: tuple[str, ...] = FEATURES
    seed: int = 0
    rows: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def predict(self, features: FloatArray) -> IntArray:
        return np.asarray(self.estimator.predict(features), dtype=np.int64)

    def predict_one(self, vector: Sequence[float]) -> Regime:
        return REGIMES[int(self.predict(np.asarray([vector], dtype=np.float64))[0])]

    def classify_one(self, vector: Sequence[float]) -> tuple[Regime, dict[str, float]]:
        """The class and every class's probability (regime name → p) for one feature row.

        One ``predict_proba`` call: the class is its arg-max (first on ties), which is exactly
        how a random forest's ``predict`` decides, at half the cost of calling both. An
        estimator without ``predict_proba`` gives its ``predict`` and ``{}``.
        """
        row = np.asarray([vector], dtype=np.float64)
        proba = getattr(self.estimator, "predict_proba", None)
        if proba is None:
            return REGIMES[int(self.predict(row)[0])], {}
        p = proba(row)[0]
        classes = self.estimator.classes_
        regime = REGIMES[int(classes[int(np.argmax(p))])]
        return regime, {REGIMES[int(c)]: float(p[i]) for i, c in enumerate(classes)}


def train(
    features: FloatArray,
    labels: IntArray,
    seed: int,
    *,
    n_estimators: int = 60,
    max_depth: int = 8,
    version: str | None = None,
) -> RegimeModel:
    """Fit a RandomForest (single-threaded, ``random_state=seed``) on the valid rows."""
    from sklearn.ensemble import RandomForestClassifier

    mask = valid_rows(features, labels)
    x, y = features[mask], labels[mask]
    if len(np.unique(y)) < 2:
        msg = f"need at least two regimes to train, got {np.unique(y).tolist()}"
        raise ValueError(msg)
    params = {"n_estimators": n_estimators, "max_depth": max_depth, "min_samples_leaf": 5}
    est = RandomForestClassifier(**params, random_state=seed, n_jobs=1)
    est.fit(x, y)
    if version is None:
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(x).tobytes())
        digest.update(np.ascontiguousarray(y).tobytes())
        digest.update(repr((seed, sorted(params.items()))).encode())
        version = f"rf-{digest.hexdigest()[:12]}"
    return RegimeModel(est, version, FEATURES, seed, int(mask.sum()), params)


@dataclass
class FoldResult:
    train_rows: int
    test_rows: int
    accuracy: float
    rule_accuracy: float


@dataclass
class WalkForwardReport:
    """Expanding-window walk-forward: train on folds < k (minus an embargo), test on fold k."""

    folds: list[FoldResult]
    accuracy: float
    rule_accuracy: float
    confusion: list[list[int]]
    labels: tuple[str, ...] = REGIMES

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "rule_accuracy": self.rule_accuracy,
            "confusion": self.confusion,
            "labels": list(self.labels),
            "folds": [vars(f) for f in self.folds],
        }


def confusion_matrix(truth: IntArray, pred: IntArray) -> list[list[int]]:
    """Rows = true regime, columns = predicted, both in ``REGIMES`` order."""
    m = np.zeros((len(REGIMES), len(REGIMES)), dtype=np.int64)
    np.add.at(m, (truth, pred), 1)
    return m.tolist()


def walk_forward(
    features: FloatArray,
    labels: IntArray,
    seed: int,
    *,
    n_folds: int = 4,
    cfg: RegimeConfig | None = None,
    **train_kwargs: Any,
) -> WalkForwardReport:
    """Evaluate out of sample in time order; the embargo (label horizon) stops label leakage."""
    cfg = cfg or RegimeConfig()
    mask = valid_rows(features, labels)
    x, y = features[mask], labels[mask]
    chunks = np.array_split(np.arange(len(y)), n_folds + 1)
    folds: list[FoldResult] = []
    truths: list[IntArray] = []
    preds: list[IntArray] = []
    rules: list[IntArray] = []
    for k in range(1, n_folds + 1):
        train_idx = np.concatenate(chunks[:k])[: -cfg.label_horizon or None]
        test_idx = chunks[k]
        if len(test_idx) == 0 or len(np.unique(y[train_idx])) < 2:
            continue
        model = train(x[train_idx], y[train_idx], seed, version="wf", **train_kwargs)
        pred = model.predict(x[test_idx])
        rule = rule_classify(x[test_idx], cfg)
        truth = y[test_idx]
        folds.append(
            FoldResult(
                train_rows=len(train_idx),
                test_rows=len(test_idx),
                accuracy=float((pred == truth).mean()),
                rule_accuracy=float((rule == truth).mean()),
            )
        )
        truths.append(truth)
        preds.append(pred)
        rules.append(rule)
    if not folds:
        msg = "walk-forward produced no usable fold (too little data or one regime only)"
        raise ValueError(msg)
    truth_all = np.concatenate(truths)
    pred_all = np.concatenate(preds)
    rule_all = np.concatenate(rules)
    return WalkForwardReport(
        folds=folds,
        accuracy=float((pred_all == truth_all).mean()),
        rule_accuracy=float((rule_all == truth_all).mean()),
        confusion=confusion_matrix(truth_all, pred_all),
    )


# ---------------------------------------------------------------- online path
@dataclass
class RegimeState:
    """Bounded memory: the last n+1 closes, n volumes and the trailing ATR window."""

    version: int = REGIME_STATE_VERSION
    last_ts: datetime | None = None
    closes: list[float] = field(default_factory=list)
    volumes: list[float] = field(default_factory=list)
    atrs: list[float] = field(default_factory=list)


class RegimeLogic:
    """One regime per 1-min bar of an underlying's index; the model if given, else rules."""

    def __init__(
        self,
        underlying: str,
        config: RegimeConfig | None = None,
        model: RegimeModel | None = None,
        token: str | None = None,
        state: RegimeState | None = None,
    ) -> None:
        self.underlying = underlying
        self.config = config or RegimeConfig()
        self.model = model
        self.token = token
        self.state = state if state is not None else RegimeState()
        if self.state.version != REGIME_STATE_VERSION:
            msg = f"regime state version {self.state.version} != {REGIME_STATE_VERSION}"
            raise ValueError(msg)
        self._ranks = RollingRank(self.config.atr_window, self.state.atrs)

    @property
    def model_version(self) -> str:
        return self.model.version if self.model is not None else RULES_VERSION

    def snapshot(self) -> RegimeState:
        self.state.atrs = list(self._ranks.window)
        return copy.deepcopy(self.state)

    def features(self, bar: Bar) -> dict[str, float] | None:
        """Update the windows with ``bar``; the feature dict once ADX and ATR exist."""
        cfg = self.config
        s = self.state
        ind = bar.indicators
        w = cfg.feature_window
        s.closes.append(bar.candle.close / 100)
        del s.closes[: -(w + 1)]
        s.volumes.append(float(bar.candle.volume))
        del s.volumes[:-w]
        atr_pct: float | None = None
        if ind.atr14 is not None:
            enough = len(self._ranks) >= cfg.min_atr_history
            atr_pct = self._ranks.rank(ind.atr14) if enough else 50.0
            self._ranks.push(ind.atr14)
        if ind.adx14 is None or ind.atr14 is None or atr_pct is None:
            return None
        feats = {"adx": ind.adx14, "atr_pct": atr_pct, "atr": ind.atr14}
        if ind.bb_upper is not None and ind.bb_lower is not None and ind.bb_middle:
            feats["bb_width"] = (ind.bb_upper - ind.bb_lower) / ind.bb_middle
        if len(s.closes) == w + 1:
            ac, er, vz = window_features(s.closes, s.volumes)
            feats.update(autocorr=ac, efficiency=er, volume_z=vz)
        return feats

    def on_bar(self, bar: Bar) -> RegimeClassified | None:
        """Classify the minute ending at ``bar.ts_event``; None for other bars or warm-up."""
        if bar.candle.interval != "1m" or (
            self.token is not None and bar.candle.token != self.token
        ):
            return None
        s = self.state
        if s.last_ts is not None and bar.ts_event <= s.last_ts:
            return None
        s.last_ts = bar.ts_event
        feats = self.features(bar)
        if feats is None:
            return None
        version = RULES_VERSION
        probabilities: dict[str, float] | msgspec.UnsetType = msgspec.UNSET  # rules: none
        if self.model is not None and all(name in feats for name in FEATURES):
            regime, probabilities = self.model.classify_one([feats[name] for name in FEATURES])
            version = self.model.version
        else:
            regime = REGIMES[rule_regime(feats["adx"], feats["atr_pct"], self.config)]
        return RegimeClassified(
            ts_event=bar.ts_event,
            ts_recv=bar.ts_event,
            underlying=self.underlying,
            regime=regime,
            features=feats,
            model_version=version,
            probabilities=probabilities,
        )
