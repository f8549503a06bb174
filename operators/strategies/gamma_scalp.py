"""Gamma-scalping window: own near-ATM gamma while the market is at its most volatile.

Enter on a closed bar of the underlying when all of:

- the bar lies in a high-volatility window: it starts within ``open_window_min`` minutes of
  the session open (default the first 30 minutes, 09:15–09:45 IST), or inside one of the
  flagged ``event_windows`` ([from, to) UTC-aware pairs), or the context flags an event
  (``ctx.event_window``);
- every option to buy (near-ATM, ``legs``: both CE and PE by default, a straddle) has fresh
  analytics (at most ``max_analytics_age_s`` old) with ``iv_percentile`` ≥
  ``iv_percentile_min`` (default 90: IV above the 90th percentile of its trailing 5-day
  range, as the analytics stage computes it).

Exit when the underlying has moved ``move_pct`` (1 %) either way from entry (reason
``TARGET``: the move gamma was bought for) or after ``max_hold_s`` (300 s, ``TIMEOUT``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from operators.events import Bar
from operators.market.sessions import ist_date, session_open
from operators.strategies.base import (
    ContextLike,
    EntryPlan,
    Strategy,
    StrategyParams,
    StrategyState,
    pct_level,
    rupees,
)
from operators.strategies.option_map import OptionRight

LEG_RIGHTS: dict[str, tuple[OptionRight, ...]] = {
    "STRADDLE": ("CE", "PE"),
    "CE": ("CE",),
    "PE": ("PE",),
}


class GammaScalpParams(StrategyParams):
    open_window_min: float = Field(
        default=30.0, ge=0, description="minutes after the open that count"
    )
    event_windows: tuple[tuple[AwareDatetime, AwareDatetime], ...] = Field(
        default=(), description="flagged high-volatility windows [from, to)"
    )
    iv_percentile_min: float = Field(default=90.0, ge=0, le=100)
    max_analytics_age_s: float = Field(default=120.0, gt=0)
    legs: Literal["STRADDLE", "CE", "PE"] = "STRADDLE"
    move_pct: float = Field(default=1.0, gt=0, description="exit after this % move either way")
    max_hold_s: float = Field(default=300.0, gt=0, description="time out after this many seconds")

    @model_validator(mode="after")
    def _ordered_windows(self) -> GammaScalpParams:
        for start, end in self.event_windows:
            if end <= start:
                msg = f"event window ends before it starts: {start} .. {end}"
                raise ValueError(msg)
        return self


class GammaScalp(Strategy[GammaScalpParams, StrategyState]):
    name = "gamma_scalp"
    Params = GammaScalpParams
    State = StrategyState

    def window(self, start: datetime, ctx: ContextLike) -> str | None:
        """Name of the high-volatility window a bar starting at ``start`` falls in, if any."""
        opened = session_open(ist_date(start))
        if opened <= start < opened + timedelta(minutes=self.params.open_window_min):
            return "OPEN"
        for lo, hi in self.params.event_windows:
            if lo <= start < hi:
                return "EVENT"
        return "EVENT_FLAG" if ctx.event_window else None

    def evaluate_bar(
        self, state: StrategyState, bar: Bar, ctx: ContextLike
    ) -> tuple[StrategyState, EntryPlan | None]:
        p = self.params
        window = self.window(bar.candle.start, ctx)
        if window is None:
            return state, None
        close = bar.candle.close
        rights = LEG_RIGHTS[p.legs]
        max_age = timedelta(seconds=p.max_analytics_age_s)
        day = ist_date(bar.ts_event)
        notes: list[str] = []
        for right in rights:
            inst = ctx.chain.select(close, right, day, p.strike_offset, p.expiry_rank)
            if inst is None:
                return state, None
            a = ctx.analytics.get(inst.token)
            if a is None or a.iv_percentile is None or a.iv is None:
                return state, None
            if bar.ts_event - a.ts_event > max_age:
                return state, None
            if not a.iv_percentile >= p.iv_percentile_min:
                return state, None
            notes.append(f"{inst.symbol} iv={a.iv:.4f} ivp={a.iv_percentile:.1f}")
        reason = (
            f"GAMMA_SCALP: window={window}; close={rupees(close)}; "
            f"{'; '.join(notes)} >= p{p.iv_percentile_min:g}"
        )
        plan = EntryPlan(
            rights=rights,
            reason=reason,
            upper=pct_level(close, p.move_pct),
            upper_reason="TARGET",
            lower=pct_level(close, -p.move_pct),
            lower_reason="TARGET",
            max_hold=timedelta(seconds=p.max_hold_s),
        )
        return state, plan
