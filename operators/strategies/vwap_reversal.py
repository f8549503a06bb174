"""VWAP reversal: buy a sharp, oversold dip below VWAP and aim for the way back.

Enter long (buy the ATM call) on a closed bar when all of:

- close < VWAP × (1 − ``vwap_discount_pct``/100)   (default VWAP − 0.3 %);
- RSI(14) < ``rsi_max``                             (default 30);
- volume > ``volume_mult`` × its 20-bar average     (default 2 ×).

Exits on the underlying's price: target = VWAP, following the VWAP of each new bar (ticks
compare with the latest bar's VWAP); stop at entry × (1 − ``stop_pct``/100) (0.2 % below
entry); optional time-out ``max_hold_s`` (None by default: the issue sets none).
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
from pydantic import Field

from operators.events import Bar, to_paise
from operators.strategies.base import (
    ContextLike,
    EntryPlan,
    OpenTrade,
    Strategy,
    StrategyParams,
    StrategyState,
    pct_level,
    rupee_level_paise,
    rupees,
)


class VwapReversalParams(StrategyParams):
    vwap_discount_pct: float = Field(
        default=0.3, ge=0, description="close must be this % below VWAP"
    )
    rsi_max: float = Field(default=30.0, ge=0, le=100, description="RSI must be strictly below")
    volume_mult: float = Field(
        default=2.0, gt=0, description="volume must exceed this × 20-bar avg"
    )
    stop_pct: float = Field(default=0.2, gt=0, description="stop, % below entry")
    max_hold_s: float | None = Field(default=None, gt=0, description="optional time-out in seconds")


class VwapReversalState(StrategyState, frozen=True, kw_only=True):
    vwap: float | None = None


class VwapReversal(Strategy[VwapReversalParams, VwapReversalState]):
    name = "vwap_reversal"
    Params = VwapReversalParams
    State = VwapReversalState

    def refresh_trade(self, state: VwapReversalState, trade: OpenTrade, bar: Bar) -> OpenTrade:
        vwap = bar.indicators.vwap
        if vwap is None:
            return trade
        return msgspec.structs.replace(trade, upper=to_paise(vwap))

    def evaluate_bar(
        self, state: VwapReversalState, bar: Bar, ctx: ContextLike
    ) -> tuple[VwapReversalState, EntryPlan | None]:
        p = self.params
        ind = bar.indicators
        state = msgspec.structs.replace(state, vwap=ind.vwap)
        vwap, rsi, vol_avg = ind.vwap, ind.rsi14, ind.vol_avg20
        if vwap is None or rsi is None or vol_avg is None:
            return state, None
        close = bar.candle.close
        level = rupee_level_paise(vwap, -p.vwap_discount_pct)
        if not close < level:
            return state, None
        if not rsi < p.rsi_max:
            return state, None
        volume = bar.candle.volume
        if not volume > round(p.volume_mult * vol_avg, 9):
            return state, None
        reason = (
            f"VWAP_REVERSAL: close={rupees(close)} < vwap*{1 - p.vwap_discount_pct / 100:g}"
            f"={rupees(level)} (vwap={vwap:.2f}); rsi={rsi:.1f} < {p.rsi_max:g}; "
            f"volume={volume} > {p.volume_mult:g}*avg={vol_avg:.0f}"
        )
        plan = EntryPlan(
            rights=("CE",),
            reason=reason,
            upper=to_paise(vwap),
            upper_reason="TARGET",
            lower=pct_level(close, -p.stop_pct),
            lower_reason="STOP",
            max_hold=timedelta(seconds=p.max_hold_s) if p.max_hold_s is not None else None,
        )
        return state, plan
