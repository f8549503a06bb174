"""Adaptive layer: multipliers at thresholds and bounds, weights, cooldown, determinism."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np
import pydantic
import pytest

from operators.ai.adaptive import (
    AdaptiveConfig,
    AdaptiveLogic,
    AdaptiveStateChanged,
    TradeResult,
    capital_weights,
    max_drawdown,
    sharpe,
    stop_atr_multiple,
    volatility_scale,
    win_rate,
    win_rate_multiplier,
)
from operators.events import RegimeClassified

T0 = datetime(2026, 1, 6, 4, 30, tzinfo=UTC)
CFG = AdaptiveConfig(account="A1", strategies=("s1", "s2"))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def trade(ts: datetime, pnl: int, strategy: str = "s1") -> TradeResult:
    return TradeResult(ts_event=ts, account="A1", strategy=strategy, underlying="NIFTY", pnl=pnl)


@pytest.mark.parametrize(
    ("w", "n", "expected"),
    [
        (0.6, 10, 1.0),  # threshold: no change yet
        (0.7, 10, 1.25),
        (0.8, 10, 1.5),  # full bonus
        (0.95, 20, 1.5),  # bounded
        (0.5, 10, 1.0),
        (0.4, 10, 1.0),  # threshold
        (0.3, 10, 0.75),
        (0.2, 10, 0.5),  # full cut
        (0.0, 10, 0.5),  # bounded
        (1.0, 4, 1.0),  # fewer than min_trades: neutral
    ],
)
def test_win_rate_multiplier_thresholds_and_bounds(w: float, n: int, expected: float) -> None:
    assert win_rate_multiplier(w, n, CFG) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("atr", "avg", "expected"),
    [
        (10.0, 10.0, 1.0),
        (12.5, 10.0, 0.8),
        (20.0, 10.0, 0.5),
        (40.0, 10.0, 0.5),  # bounded below
        (8.0, 10.0, 1.25),
        (5.0, 10.0, 1.5),  # bounded above (would be 2.0)
        (None, 10.0, 1.0),
        (10.0, None, 1.0),
    ],
)
def test_volatility_scale(atr: float | None, avg: float | None, expected: float) -> None:
    assert volatility_scale(atr, avg, CFG) == pytest.approx(expected)


def test_stop_multiple_widens_and_tightens() -> None:
    assert stop_atr_multiple(0.5, 10, 10.0, 10.0, CFG) == pytest.approx(1.5)
    assert stop_atr_multiple(0.2, 10, 10.0, 10.0, CFG) == pytest.approx(1.5 * 1.15)
    assert stop_atr_multiple(0.8, 10, 10.0, 10.0, CFG) == pytest.approx(1.5 * 0.85)
    assert stop_atr_multiple(0.5, 10, 20.0, 10.0, CFG) == pytest.approx(1.5 * 1.25)
    assert stop_atr_multiple(0.5, 10, 5.0, 10.0, CFG) == pytest.approx(1.5 * 0.75)
    assert stop_atr_multiple(0.0, 2, 10.0, 10.0, CFG) == pytest.approx(1.5)  # too few trades
    wide = AdaptiveConfig(account="A1", base_stop_atr_mult=2.8)
    assert stop_atr_multiple(0.0, 10, 30.0, 10.0, wide) == pytest.approx(3.0)  # bounded


def test_metrics_worked_numbers() -> None:
    pnls = [100, -50, 200, -100]
    assert win_rate(pnls) == 0.5
    arr = np.array(pnls, dtype=float)
    assert sharpe(pnls) == pytest.approx(arr.mean() / arr.std(ddof=1))
    assert sharpe([5]) == 0.0
    assert sharpe([5, 5]) == 0.0
    assert max_drawdown(pnls) == 100
    assert max_drawdown([-30, 10]) == 30


def test_capital_weights_with_floor() -> None:
    w = capital_weights({"a": 2.0, "b": 1.0, "c": -1.0}, 0.1)
    assert w == pytest.approx({"a": 0.1 + 0.7 * 2 / 3, "b": 0.1 + 0.7 / 3, "c": 0.1})
    assert sum(w.values()) == pytest.approx(1.0)
    assert capital_weights({"a": 0.0, "b": -1.0}, 0.1) == {"a": 0.5, "b": 0.5}
    assert capital_weights({"a": 3.0, "b": 1.0}, 0.5) == {"a": 0.5, "b": 0.5}
    assert capital_weights({}, 0.1) == {}


def test_config_validation_and_hash() -> None:
    assert CFG.config_hash() == AdaptiveConfig(account="A1", strategies=("s1", "s2")).config_hash()
    assert CFG.config_hash() != AdaptiveConfig(account="A1", window=10).config_hash()
    with pytest.raises(pydantic.ValidationError):
        AdaptiveConfig(account="A1", win_rate_low=0.7, win_rate_high=0.6)
    with pytest.raises(pydantic.ValidationError):
        AdaptiveConfig(account="A1", min_multiplier=1.2)


# ------------------------------------------------------------------ logic
def test_emits_only_on_change() -> None:
    logic = AdaptiveLogic(CFG)
    first = logic.on_atr(T0, "NIFTY", 20.0)
    assert [(e.strategy, e.size_multiplier, e.stop_atr_mult, e.weight) for e in first] == [
        ("s1", 1.0, 1.5, 0.5),
        ("s2", 1.0, 1.5, 0.5),
    ]
    assert logic.on_atr(at(60), "NIFTY", 20.0) == []
    assert logic.on_trade_closed(trade(at(61), 100)) == []  # one trade: nothing visible moves


def test_win_streak_raises_size_and_weight() -> None:
    logic = AdaptiveLogic(CFG)
    logic.on_atr(T0, "NIFTY", 20.0)
    out: list[AdaptiveStateChanged] = []
    for i, pnl in enumerate([100, 120, -50, 90, 110]):  # 4/5 wins = 80 %
        out += logic.on_trade_closed(trade(at(i + 1), pnl))
    last = {e.strategy: e for e in out}
    assert last["s1"].size_multiplier == 1.5
    assert last["s1"].stop_atr_mult == pytest.approx(round(1.5 * 0.85, 2))
    assert last["s1"].win_rate == 0.8
    assert last["s1"].trades == 5
    assert last["s1"].weight == 0.9  # s2 has no record: floor 0.1
    assert last["s2"].weight == 0.1
    assert all(e.ts_event == e.ts_recv for e in out)


def test_size_includes_volatility_scale() -> None:
    logic = AdaptiveLogic(CFG)
    logic.on_trade_closed(trade(T0, 10, "s1"))
    logic.on_atr(at(1), "NIFTY", 10.0)
    out = logic.on_atr(at(2), "NIFTY", 30.0)  # avg 20 → scale 20/30
    s1 = next(e for e in out if e.strategy == "s1")
    assert s1.size_multiplier == round(20 / 30, 2)
    assert s1.stop_atr_mult == round(1.5 * 1.25, 2)
    assert logic.multiplier("s1") == pytest.approx(20 / 30)


def test_regime_event_feeds_atr() -> None:
    logic = AdaptiveLogic(CFG)
    logic.on_trade_closed(trade(T0, 10, "s1"))
    ev = RegimeClassified(
        ts_event=at(1),
        ts_recv=at(1),
        underlying="NIFTY",
        regime="TRENDING",
        features={"adx": 30.0, "atr": 12.5},
        model_version="rules-v1",
    )
    logic.on_regime(ev)
    assert logic.state.atr["NIFTY"].values == [12.5]


def test_window_keeps_last_n_trades() -> None:
    logic = AdaptiveLogic(AdaptiveConfig(account="A1", window=20))
    for i in range(5):
        logic.on_trade_closed(trade(at(i), -10))
    out: list[AdaptiveStateChanged] = []
    for i in range(20):
        out += logic.on_trade_closed(trade(at(10 + i), 10))
    assert logic.state.strategies["s1"].pnls == [10] * 20
    assert out[-1].win_rate == 1.0
    assert out[-1].trades == 20


def test_cooldown_pause_and_resume_times_exact() -> None:
    logic = AdaptiveLogic(CFG)
    logic.on_atr(T0, "NIFTY", 20.0)
    out: list[AdaptiveStateChanged] = []
    for i in range(4):
        out += logic.on_trade_closed(trade(at(10 * i), -100))
    until = at(30) + timedelta(minutes=15)
    paused = {e.strategy: e for e in out if e.ts_event == at(30)}
    assert paused["s1"].paused_until == until
    assert paused["s1"].weight == 0.0
    assert paused["s2"].weight == 1.0
    assert logic.on_clock(until - timedelta(seconds=1)) == []
    resumed = logic.on_clock(until + timedelta(minutes=3))
    assert {e.strategy: (e.ts_event, e.paused_until, e.weight) for e in resumed} == {
        "s1": (until, None, 0.5),
        "s2": (until, None, 0.5),
    }


def script(logic: AdaptiveLogic, start: int = 0, stop: int = 120) -> list[AdaptiveStateChanged]:
    out: list[AdaptiveStateChanged] = []
    for i in range(start, stop):
        rng = np.random.default_rng(1000 + i)
        ts = at(30 * i)
        out += logic.on_atr(ts, "NIFTY", float(15 + 10 * rng.random()))
        if i % 3 == 0:
            strategy = "s1" if i % 2 else "s2"
            out += logic.on_trade_closed(trade(ts, int(rng.integers(-500, 600)), strategy))
    return out


def test_same_sequence_twice_gives_identical_state_stream() -> None:
    a = script(AdaptiveLogic(CFG))
    b = script(AdaptiveLogic(CFG))
    assert len(a) > 10
    assert msgspec.json.encode(a) == msgspec.json.encode(b)


def test_snapshot_restore_continues_identically() -> None:
    whole = script(AdaptiveLogic(CFG))
    first = AdaptiveLogic(CFG)
    part = script(first, 0, 60)
    restored = AdaptiveLogic(CFG, pickle.loads(pickle.dumps(first.snapshot())))
    assert restored.state == first.state
    part += script(restored, 60, 120)
    assert msgspec.json.encode(part) == msgspec.json.encode(whole)
