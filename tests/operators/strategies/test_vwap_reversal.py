"""VWAP reversal on scripted bars: entry conditions, VWAP target, 0.2 % stop, optional timeout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from operators.events import SignalGenerated
from operators.strategies.base import StrategyContext
from operators.strategies.vwap_reversal import VwapReversal, VwapReversalParams
from tests.operators.strategies.helpers import bar, ist, make_ctx, option_token, tick

T = ist(11, 0)
# Every condition holds: close 23400 < vwap 23500 * 0.997 = 23429.50; rsi 25 < 30;
# volume 4000 > 2 * avg 1500 = 3000.
GOOD: dict[str, Any] = {
    "close": 23_400.0,
    "vwap": 23_500.0,
    "rsi": 25.0,
    "volume": 4_000,
    "vol_avg": 1_500.0,
}


def setup_bar(**changes: Any) -> Any:
    args = {**GOOD, **changes}
    return bar(T, args.pop("close"), **args)


def entered(
    params: dict[str, Any] | None = None,
) -> tuple[VwapReversal, StrategyContext, list[SignalGenerated]]:
    s, ctx = VwapReversal(params), make_ctx(None)
    out = s.on_bar(setup_bar(), ctx)
    assert len(out) == 1
    return s, ctx, out


def test_enters_long_when_every_condition_holds() -> None:
    s, _, out = entered()
    sig = out[0]
    assert (sig.action, sig.side, sig.strategy) == ("ENTRY", "BUY", "vwap_reversal")
    assert sig.instrument == option_token(23_400, "CE")
    assert sig.reason.startswith("VWAP_REVERSAL:")
    trade = s.state.trade
    assert trade is not None
    assert trade.upper == 2_350_000  # target: VWAP
    assert trade.lower == round(2_340_000 * 0.998)  # 0.2 % below entry
    assert trade.deadline is None  # no time-out by default


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"close": 23_429.50}, id="close-equals-vwap-0.3%"),
        pytest.param({"close": 23_450.0}, id="close-above-vwap-0.3%"),
        pytest.param({"rsi": 30.0}, id="rsi-equals-30"),
        pytest.param({"rsi": 45.0}, id="rsi-high"),
        pytest.param({"volume": 3_000}, id="volume-equals-2x-avg"),
        pytest.param({"volume": 1_000}, id="volume-low"),
        pytest.param({"vwap": None}, id="vwap-warming-up"),
        pytest.param({"rsi": None}, id="rsi-warming-up"),
        pytest.param({"vol_avg": None}, id="volume-avg-warming-up"),
    ],
)
def test_no_entry_when_one_condition_fails(change: dict[str, Any]) -> None:
    s, ctx = VwapReversal(), make_ctx(None)
    assert s.on_bar(setup_bar(**change), ctx) == []
    assert s.state.trade is None


def test_just_inside_every_threshold_enters() -> None:
    s, ctx = VwapReversal(), make_ctx(None)
    assert len(s.on_bar(setup_bar(close=23_429.49, rsi=29.99, volume=3_001), ctx)) == 1


@pytest.mark.parametrize("regime", ["TRENDING", "RANGING", "HIGH_VOL", None])
def test_any_regime_by_default(regime: str | None) -> None:
    s, ctx = VwapReversal(), make_ctx(regime)
    assert len(s.on_bar(setup_bar(), ctx)) == 1


def test_exit_on_target_at_vwap() -> None:
    s, ctx, entry = entered()
    assert s.on_tick(tick(T + timedelta(seconds=20), 23_499.95), ctx) == []
    out = s.on_tick(tick(T + timedelta(seconds=21), 23_500.0), ctx)
    assert [(o.action, o.side, o.instrument) for o in out] == [
        ("EXIT", "SELL", entry[0].instrument)
    ]
    assert out[0].reason.startswith("TARGET:")
    assert "level=23500.00" in out[0].reason


def test_target_follows_the_vwap() -> None:
    s, ctx, _ = entered()
    # next bar: VWAP has sagged to 23450, the bar's high reaches it
    out = s.on_bar(bar(T + timedelta(minutes=1), 23_440.0, high=23_451.0, vwap=23_450.0), ctx)
    assert len(out) == 1
    assert out[0].reason.startswith("TARGET:")
    assert "level=23450.00" in out[0].reason


def test_exit_on_stop_two_tenths_below_entry() -> None:
    s, ctx, _ = entered()
    assert s.on_tick(tick(T + timedelta(seconds=5), 23_353.21), ctx) == []
    out = s.on_tick(tick(T + timedelta(seconds=6), 23_353.20), ctx)
    assert len(out) == 1
    assert out[0].reason.startswith("STOP:")


def test_no_timeout_by_default() -> None:
    s, ctx, _ = entered()
    assert s.on_tick(tick(T + timedelta(hours=2), 23_420.0), ctx) == []
    assert s.state.trade is not None


def test_exit_on_timeout_when_configured() -> None:
    s, ctx, _ = entered({"max_hold_s": 300})
    assert s.on_tick(tick(T + timedelta(seconds=299), 23_420.0), ctx) == []
    out = s.on_tick(tick(T + timedelta(seconds=300), 23_420.0), ctx)
    assert len(out) == 1
    assert out[0].reason.startswith("TIMEOUT: held=300s >= 300s")


def test_defaults_match_the_issue() -> None:
    p = VwapReversalParams()
    assert (p.vwap_discount_pct, p.rsi_max, p.volume_mult, p.stop_pct) == (0.3, 30, 2.0, 0.2)
    assert p.regimes is None
    assert p.max_hold_s is None
