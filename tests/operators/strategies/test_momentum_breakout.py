"""Momentum breakout on scripted bars: enters exactly when every condition holds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from operators.events import SignalGenerated
from operators.strategies.base import StrategyContext
from operators.strategies.momentum_breakout import MomentumBreakout, MomentumBreakoutParams
from tests.operators.strategies.helpers import bar, ist, make_ctx, option_token, tick

T1 = ist(10, 0)
T2 = ist(10, 1)

# A setup where every entry condition holds (rupees):
#   cross: ema9 23490 <= ema21 23495 on the previous bar, 23500 > 23495 now;
#   close 23560 > vwap 23400 * 1.005 = 23517; volume 3000 > 1.5 * avg 1500 = 2250;
#   rsi 60 in [50, 70]; regime TRENDING.
PREV: dict[str, Any] = {
    "ema9": 23_490.0,
    "ema21": 23_495.0,
    "vwap": 23_400.0,
    "rsi": 55.0,
    "atr": 20.0,
    "vol_avg": 1_500.0,
}
GOOD: dict[str, Any] = {
    "close": 23_560.0,
    "ema9": 23_500.0,
    "ema21": 23_495.0,
    "vwap": 23_400.0,
    "rsi": 60.0,
    "atr": 20.0,
    "vol_avg": 1_500.0,
    "volume": 3_000,
}


def run_setup(
    strategy: MomentumBreakout,
    ctx: StrategyContext,
    prev: dict[str, Any] | None = None,
    now: dict[str, Any] | None = None,
) -> list[SignalGenerated]:
    p = {**PREV, **(prev or {})}
    n = {**GOOD, **(now or {})}
    assert strategy.on_bar(bar(T1, 23_480.0, **p), ctx) == []
    close = n.pop("close")
    return strategy.on_bar(bar(T2, close, **n), ctx)


def entered() -> tuple[MomentumBreakout, StrategyContext, list[SignalGenerated]]:
    s, ctx = MomentumBreakout(), make_ctx()
    out = run_setup(s, ctx)
    assert len(out) == 1
    return s, ctx, out


def test_enters_when_every_condition_holds() -> None:
    s, _, out = entered()
    sig = out[0]
    assert sig.action == "ENTRY"
    assert sig.side == "BUY"
    assert sig.strategy == "momentum_breakout"
    assert sig.underlying == "NIFTY"
    assert sig.instrument == option_token(23_550, "CE")  # ATM call for a long view
    assert sig.ts_event == T2
    assert sig.reason.startswith("MOMENTUM_BREAKOUT:")
    assert "rsi=60.0" in sig.reason
    assert sig.signal_id.startswith("momentum_breakout-")
    trade = s.state.trade
    assert trade is not None
    assert trade.entry_price == 2_356_000
    assert trade.upper == round(2_356_000 * 1.005)  # take profit 0.5 %
    assert trade.lower == 2_356_000 - round(2_356_000 * 0.003)  # 0.3 % beats 1 ATR (₹20)
    assert trade.deadline == T2 + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("prev", "now", "ctx_regime"),
    [
        pytest.param({"ema9": 23_497.0}, {}, "TRENDING", id="no-cross-already-above"),
        pytest.param({}, {"ema9": 23_495.0}, "TRENDING", id="no-cross-equal-now"),
        pytest.param({"ema9": None}, {}, "TRENDING", id="no-cross-no-history"),
        pytest.param({}, {"close": 23_517.0}, "TRENDING", id="close-equals-vwap+0.5%"),
        pytest.param({}, {"close": 23_500.0}, "TRENDING", id="close-below-vwap+0.5%"),
        pytest.param({}, {"volume": 2_250}, "TRENDING", id="volume-equals-1.5x-avg"),
        pytest.param({}, {"volume": 1_000}, "TRENDING", id="volume-low"),
        pytest.param({}, {"rsi": 49.99}, "TRENDING", id="rsi-below-50"),
        pytest.param({}, {"rsi": 70.01}, "TRENDING", id="rsi-above-70"),
        pytest.param({}, {}, "RANGING", id="regime-ranging"),
        pytest.param({}, {}, "HIGH_VOL", id="regime-high-vol"),
        pytest.param({}, {}, None, id="regime-unknown"),
        pytest.param({}, {"vwap": None}, "TRENDING", id="vwap-warming-up"),
        pytest.param({}, {"rsi": None}, "TRENDING", id="rsi-warming-up"),
        pytest.param({}, {"vol_avg": None}, "TRENDING", id="volume-avg-warming-up"),
    ],
)
def test_no_entry_when_one_condition_fails(
    prev: dict[str, Any], now: dict[str, Any], ctx_regime: str | None
) -> None:
    s, ctx = MomentumBreakout(), make_ctx(ctx_regime)
    assert run_setup(s, ctx, prev, now) == []
    assert s.state.trade is None


@pytest.mark.parametrize("rsi", [50.0, 70.0])
def test_rsi_band_is_inclusive(rsi: float) -> None:
    s, ctx = MomentumBreakout(), make_ctx()
    assert len(run_setup(s, ctx, now={"rsi": rsi})) == 1


def test_regime_gate_can_be_lifted() -> None:
    s, ctx = MomentumBreakout({"regimes": None}), make_ctx("RANGING")
    assert len(run_setup(s, ctx)) == 1


def test_other_tokens_and_intervals_are_ignored() -> None:
    s, ctx = MomentumBreakout(), make_ctx()
    s.on_bar(bar(T1, 23_480.0, **PREV), ctx)
    n = dict(GOOD)
    close = n.pop("close")
    assert s.on_bar(bar(T2, close, token="99999", **n), ctx) == []
    assert s.on_bar(bar(T2, close, interval="1s", **n), ctx) == []
    assert len(s.on_bar(bar(T2, close, **n), ctx)) == 1


def test_cross_lookback_allows_a_recent_cross() -> None:
    strict, loose, ctx = (
        MomentumBreakout(),
        MomentumBreakout({"cross_lookback_bars": 3}),
        make_ctx(),
    )
    crossed_quietly = {k: v for k, v in GOOD.items() if k != "close"} | {"volume": 100}
    for s in (strict, loose):
        s.on_bar(bar(T1, 23_480.0, **PREV), ctx)
        # crossed on T2 but the volume was too low then; the rest holds one bar later
        assert s.on_bar(bar(T2, 23_560.0, **crossed_quietly), ctx) == []
    n = {k: v for k, v in GOOD.items() if k != "close"} | {"ema9": 23_510.0}
    assert strict.on_bar(bar(T2 + timedelta(minutes=1), 23_560.0, **n), ctx) == []
    assert len(loose.on_bar(bar(T2 + timedelta(minutes=1), 23_560.0, **n), ctx)) == 1


def test_exit_on_target_by_tick() -> None:
    s, ctx, entry = entered()
    assert s.on_tick(tick(T2 + timedelta(seconds=10), 23_677.0), ctx) == []
    out = s.on_tick(tick(T2 + timedelta(seconds=11), 23_677.80), ctx)
    assert [(o.action, o.side, o.instrument) for o in out] == [
        ("EXIT", "SELL", entry[0].instrument)
    ]
    assert out[0].reason.startswith("TARGET:")
    assert "level=23677.80" in out[0].reason
    assert s.state.trade is None


def test_exit_on_target_by_bar_high() -> None:
    s, ctx, _ = entered()
    out = s.on_bar(bar(T2 + timedelta(minutes=1), 23_600.0, high=23_690.0), ctx)
    assert len(out) == 1
    assert out[0].reason.startswith("TARGET:")


def test_exit_on_stop() -> None:
    s, ctx, _ = entered()
    assert s.on_tick(tick(T2 + timedelta(seconds=5), 23_489.33), ctx) == []
    out = s.on_tick(tick(T2 + timedelta(seconds=6), 23_489.32), ctx)  # 23560 - 70.68
    assert len(out) == 1
    assert out[0].reason.startswith("STOP:")
    assert out[0].action == "EXIT"


def test_stop_is_widened_to_one_atr_when_atr_is_large() -> None:
    s, ctx = MomentumBreakout(), make_ctx()
    out = run_setup(s, ctx, now={"atr": 100.0})
    assert len(out) == 1
    assert s.state.trade is not None
    assert s.state.trade.lower == 2_356_000 - 10_000  # 1 × ATR(₹100) > 0.3 % (₹70.68)
    assert s.on_tick(tick(T2 + timedelta(seconds=5), 23_470.0), ctx) == []
    assert s.on_tick(tick(T2 + timedelta(seconds=6), 23_460.0), ctx)[0].reason.startswith("STOP")


def test_plain_stop_without_atr_adjustment() -> None:
    s, ctx = MomentumBreakout({"stop_atr_mult": 0.0}), make_ctx()
    run_setup(s, ctx, now={"atr": 100.0})
    assert s.state.trade is not None
    assert s.state.trade.lower == 2_356_000 - 7_068


def test_exit_on_timeout_after_two_minutes() -> None:
    s, ctx, _ = entered()
    assert s.on_tick(tick(T2 + timedelta(seconds=119), 23_560.0), ctx) == []
    out = s.on_tick(tick(T2 + timedelta(seconds=120), 23_561.0), ctx)
    assert len(out) == 1
    assert out[0].reason.startswith("TIMEOUT: held=120s >= 120s")


def test_timeout_on_a_bar() -> None:
    s, ctx, _ = entered()
    assert s.on_bar(bar(T2 + timedelta(minutes=1), 23_560.0), ctx) == []
    out = s.on_bar(bar(T2 + timedelta(minutes=2), 23_560.0), ctx)
    assert [o.reason.split(":")[0] for o in out] == ["TIMEOUT"]


def test_bar_touching_both_levels_stops_out() -> None:
    s, ctx, _ = entered()
    out = s.on_bar(bar(T2 + timedelta(minutes=1), 23_560.0, high=23_700.0, low=23_400.0), ctx)
    assert out[0].reason.startswith("STOP:")


def test_no_exit_on_the_entry_bar_time_and_one_exit_only() -> None:
    s, ctx, _ = entered()
    assert s.on_tick(tick(T2, 23_000.0), ctx) == []  # same timestamp as the entry decision
    assert len(s.on_tick(tick(T2 + timedelta(seconds=1), 23_000.0), ctx)) == 1
    assert s.on_tick(tick(T2 + timedelta(seconds=2), 23_000.0), ctx) == []


def test_no_new_entry_while_in_trade_or_with_an_open_position() -> None:
    s, ctx, _ = entered()
    # another perfect setup while in the trade: nothing (the first trade is still open)
    assert run_setup(s, ctx) == []
    s2, ctx2 = MomentumBreakout(), make_ctx()

    class Pos:
        qty = 65

    ctx2.positions["momentum_breakout"] = Pos()
    assert run_setup(s2, ctx2) == []


def test_cooldown_blocks_reentry() -> None:
    s, ctx = MomentumBreakout({"cooldown_s": 600}), make_ctx()
    run_setup(s, ctx)
    assert s.on_tick(tick(T2 + timedelta(seconds=1), 23_000.0), ctx)  # stopped out
    later = T2 + timedelta(minutes=3)
    s.on_bar(bar(later, 23_480.0, **PREV), ctx)
    n = {k: v for k, v in GOOD.items() if k != "close"}
    assert s.on_bar(bar(later + timedelta(minutes=1), 23_560.0, **n), ctx) == []


def test_snapshot_restore_continues_like_an_uninterrupted_run() -> None:
    events = [
        ("bar", bar(T1, 23_480.0, **PREV)),
        ("bar", bar(T2, **GOOD)),
        ("tick", tick(T2 + timedelta(seconds=30), 23_600.0)),
        ("tick", tick(T2 + timedelta(seconds=61), 23_700.0)),
    ]
    ctx = make_ctx()

    def feed(s: MomentumBreakout, evs: list[tuple[str, Any]]) -> list[SignalGenerated]:
        out: list[SignalGenerated] = []
        for kind, ev in evs:
            out += s.on_bar(ev, ctx) if kind == "bar" else s.on_tick(ev, ctx)
        return out

    whole = feed(MomentumBreakout(), events)
    first = MomentumBreakout()
    part1 = feed(first, events[:3])
    restored = MomentumBreakout(state=MomentumBreakout.decode_state(first.encode_state()))
    assert restored.state == first.state
    part2 = feed(restored, events[3:])
    assert part1 + part2 == whole
    assert [o.action for o in whole] == ["ENTRY", "EXIT"]


def test_params_are_frozen_and_validated() -> None:
    p = MomentumBreakoutParams()
    assert (p.target_pct, p.stop_pct, p.max_hold_s, p.volume_mult) == (0.5, 0.3, 120.0, 1.5)
    assert (p.rsi_min, p.rsi_max, p.vwap_premium_pct, p.regimes) == (50, 70, 0.5, ("TRENDING",))
    with pytest.raises(ValueError, match="frozen"):
        p.target_pct = 1.0
