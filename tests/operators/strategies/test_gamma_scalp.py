"""Gamma-scalping window: volatility window × IV percentile → straddle; 1 % move or 5 min."""

from __future__ import annotations

from datetime import timedelta

import pytest

from operators.events import SignalGenerated
from operators.strategies.base import StrategyContext, observe
from operators.strategies.gamma_scalp import GammaScalp, GammaScalpParams
from tests.events import analytics
from tests.operators.strategies.helpers import (
    EXPIRY2,
    bar,
    ist,
    make_ctx,
    option_token,
    tick,
)

CLOSE = 23_510.0  # ATM 23500
CE, PE = option_token(23_500, "CE"), option_token(23_500, "PE")
T = ist(9, 21)  # bar 09:20-09:21, inside the first 30 minutes


def ctx_with(
    ce_ivp: float | None = 95.0,
    pe_ivp: float | None = 95.0,
    at: timedelta = timedelta(seconds=-30),
    when=T,
) -> StrategyContext:
    ctx = make_ctx(None)
    if ce_ivp is not None:
        observe(ctx, analytics(when + at, CE, ce_ivp))
    if pe_ivp is not None:
        observe(ctx, analytics(when + at, PE, pe_ivp))
    return ctx


def entered(
    params: dict[str, object] | None = None,
) -> tuple[GammaScalp, StrategyContext, list[SignalGenerated]]:
    s, ctx = GammaScalp(params), ctx_with()
    out = s.on_bar(bar(T, CLOSE), ctx)
    assert len(out) == 2
    return s, ctx, out


def test_buys_the_atm_straddle_in_the_opening_window() -> None:
    s, _, out = entered()
    assert [(o.action, o.side, o.instrument) for o in out] == [
        ("ENTRY", "BUY", CE),
        ("ENTRY", "BUY", PE),
    ]
    assert out[0].reason.startswith("GAMMA_SCALP: window=OPEN")
    assert "ivp=95.0" in out[0].reason
    assert out[0].signal_id != out[1].signal_id
    trade = s.state.trade
    assert trade is not None
    assert (trade.upper, trade.lower) == (round(2_351_000 * 1.01), round(2_351_000 * 0.99))
    assert trade.deadline == T + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("ctx_args", "end"),
    [
        pytest.param({"ce_ivp": 89.99}, T, id="ce-ivp-below-90"),
        pytest.param({"pe_ivp": 80.0}, T, id="pe-ivp-below-90"),
        pytest.param({"ce_ivp": None}, T, id="ce-no-analytics"),
        pytest.param({"pe_ivp": None}, T, id="pe-no-analytics"),
        pytest.param({"at": timedelta(seconds=-121)}, T, id="analytics-stale"),
        pytest.param({"when": ist(9, 46)}, ist(9, 46), id="after-the-30-minutes"),
        pytest.param({"when": ist(9, 15)}, ist(9, 15), id="bar-before-the-open"),
        pytest.param({"when": ist(11, 0)}, ist(11, 0), id="midday-no-event"),
    ],
)
def test_no_entry_when_one_condition_fails(ctx_args: dict, end) -> None:
    s, ctx = GammaScalp(), ctx_with(**ctx_args)
    assert s.on_bar(bar(end, CLOSE), ctx) == []
    assert s.state.trade is None


def test_iv_missing_means_no_entry() -> None:
    s, ctx = GammaScalp(), make_ctx(None)
    observe(ctx, analytics(T, CE, 95.0, iv=None))
    observe(ctx, analytics(T, PE, 95.0))
    assert s.on_bar(bar(T, CLOSE), ctx) == []


@pytest.mark.parametrize(("end", "ivp"), [(ist(9, 45), 90.0), (ist(9, 16), 99.0)])
def test_window_and_percentile_boundaries_are_inclusive(end, ivp: float) -> None:
    # the bar 09:44-09:45 is the last one wholly inside; ivp exactly 90 qualifies
    s, ctx = GammaScalp(), ctx_with(ivp, ivp, when=end)
    assert len(s.on_bar(bar(end, CLOSE), ctx)) == 2


def test_flagged_event_window_from_params_and_from_context() -> None:
    noon = ist(12, 1)
    s = GammaScalp({"event_windows": [(ist(11, 55), ist(12, 5))]})
    out = s.on_bar(bar(noon, CLOSE), ctx_with(when=noon))
    assert len(out) == 2
    assert "window=EVENT" in out[0].reason
    ctx = ctx_with(when=noon)
    ctx.event_window = True
    out = GammaScalp().on_bar(bar(noon, CLOSE), ctx)
    assert "window=EVENT_FLAG" in out[0].reason


def test_single_leg_and_offsets_and_expiry_rank() -> None:
    ctx = ctx_with()
    far_ce = option_token(23_550, "CE", EXPIRY2)
    observe(ctx, analytics(T, far_ce, 97.0))
    s = GammaScalp({"legs": "CE", "strike_offset": 1, "expiry_rank": 1})
    out = s.on_bar(bar(T, CLOSE), ctx)
    assert [o.instrument for o in out] == [far_ce]


@pytest.mark.parametrize("price", [23_745.10, 23_274.90])
def test_exit_after_one_percent_move_either_way(price: float) -> None:
    s, ctx, _ = entered()
    out = s.on_tick(tick(T + timedelta(seconds=30), price), ctx)
    assert [(o.action, o.side, o.instrument) for o in out] == [
        ("EXIT", "SELL", CE),
        ("EXIT", "SELL", PE),
    ]
    assert all(o.reason.startswith("TARGET:") for o in out)


def test_no_exit_just_short_of_one_percent() -> None:
    s, ctx, _ = entered()
    assert s.on_tick(tick(T + timedelta(seconds=30), 23_745.09), ctx) == []
    assert s.on_tick(tick(T + timedelta(seconds=31), 23_274.91), ctx) == []


def test_exit_on_timeout_after_five_minutes() -> None:
    s, ctx, _ = entered()
    assert s.on_tick(tick(T + timedelta(seconds=299), 23_600.0), ctx) == []
    out = s.on_tick(tick(T + timedelta(seconds=300), 23_600.0), ctx)
    assert len(out) == 2
    assert all(o.reason.startswith("TIMEOUT: held=300s >= 300s") for o in out)


def test_defaults_match_the_issue() -> None:
    p = GammaScalpParams()
    assert (p.open_window_min, p.iv_percentile_min, p.move_pct, p.max_hold_s) == (
        30.0,
        90.0,
        1.0,
        300.0,
    )
    with pytest.raises(ValueError, match="ends before it starts"):
        GammaScalpParams(event_windows=((ist(12, 0), ist(11, 0)),))
