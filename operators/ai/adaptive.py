"""Adaptive risk: per-strategy size multiplier, stop width, capital weight and cooldown.

Deterministic from the event sequence (closed trades and ATR readings), so a backtest
replays the same decisions. Rules, per strategy, over its last ``window`` closed trades:

- win rate w, Sharpe (mean / sample std of net trade pnl, per trade, not annualised; 0
  with fewer than 2 trades or zero spread) and max drawdown of cumulative pnl (paise);
- win-rate multiplier (1.0 until ``min_trades`` trades), piecewise linear and clamped:
  w ≥ 0.6 → 1 + (w − 0.6) / (0.8 − 0.6) × (1.5 − 1), i.e. 1.0 at 60 % rising to 1.5 at 80 %;
  w ≤ 0.4 → 1 − (0.4 − w) / (0.4 − 0.2) × (1 − 0.5), i.e. 1.0 at 40 % falling to 0.5 at 20 %;
  1.0 in between (thresholds and bounds are settings);
- volatility scale = 1 / (ATR / average ATR) clamped to [0.5, 1.5], where ATR is the latest
  ATR of the strategy's underlying and the average is over the last ``atr_avg_window``
  readings; size multiplier = win-rate multiplier × volatility scale;
- stop ATR multiple = base × (1 + 0.5 × (0.5 − w)) × clamp(ATR / avg ATR, 0.75, 1.25),
  clamped to [stop_min, stop_max]: losing streaks and hot markets widen the stop, a high
  win rate and quiet markets tighten it;
- capital weights over the active (not paused) strategies: score = max(Sharpe, 0);
  weight = floor + (1 − n × floor) × score / Σ score (equal weights when Σ score = 0);
  a paused strategy weighs 0;
- cooldown: the same consecutive-loss rule as the risk engine (``record_trade_result``).

Published values are rounded to ``decimals``; an ``AdaptiveStateChanged`` is emitted only
when a strategy's rounded (size_multiplier, stop_atr_mult, weight, paused_until) changes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
from pydantic import Field, model_validator

from operators.events import Event, RegimeClassified
from operators.trading.risk_limits import FrozenConfig, record_trade_result

ADAPTIVE_STATE_VERSION = 1


class AdaptiveConfig(FrozenConfig):
    """Parameters of the adaptive layer of one account (frozen, with a stable hash)."""

    account: str
    strategies: tuple[str, ...] = ()
    strategy_underlyings: dict[str, str] = Field(default_factory=dict)
    window: int = Field(default=20, gt=0)
    min_trades: int = Field(default=5, ge=0)
    win_rate_low: float = 0.4
    win_rate_high: float = 0.6
    win_rate_floor: float = 0.2
    win_rate_ceiling: float = 0.8
    min_multiplier: float = Field(default=0.5, gt=0)
    max_multiplier: float = Field(default=1.5, gt=0)
    vol_scale_min: float = Field(default=0.5, gt=0)
    vol_scale_max: float = Field(default=1.5, gt=0)
    atr_avg_window: int = Field(default=375, gt=0)
    base_stop_atr_mult: float = Field(default=1.5, gt=0)
    stop_min: float = Field(default=1.0, gt=0)
    stop_max: float = Field(default=3.0, gt=0)
    weight_floor: float = Field(default=0.1, ge=0, lt=1)
    consecutive_losses: int = Field(default=4, gt=0)
    cooldown_minutes: float = Field(default=15.0, gt=0)
    decimals: int = Field(default=2, ge=0, le=9)

    @model_validator(mode="after")
    def _check(self) -> AdaptiveConfig:
        if not (
            0
            <= self.win_rate_floor
            < self.win_rate_low
            <= self.win_rate_high
            < self.win_rate_ceiling
            <= 1
        ):
            msg = "need 0 <= win_rate_floor < win_rate_low <= win_rate_high < ceiling <= 1"
            raise ValueError(msg)
        if not (self.min_multiplier <= 1 <= self.max_multiplier):
            msg = "need min_multiplier <= 1 <= max_multiplier"
            raise ValueError(msg)
        if self.stop_min > self.stop_max or self.vol_scale_min > self.vol_scale_max:
            msg = "min bounds must not exceed max bounds"
            raise ValueError(msg)
        return self


class TradeResult(msgspec.Struct, frozen=True, kw_only=True):
    """A closed round trip as the adaptive layer sees it (the lead adapts TradeClosed)."""

    ts_event: datetime
    account: str
    strategy: str
    underlying: str
    pnl: int


class AdaptiveStateChanged(Event, frozen=True, kw_only=True):
    """A strategy's adaptive parameters changed (published to ``ai.state``)."""

    account: str
    strategy: str
    size_multiplier: float
    stop_atr_mult: float
    weight: float
    paused_until: datetime | None
    win_rate: float = 0.0
    sharpe: float = 0.0
    max_drawdown: int = 0
    trades: int = 0


# ---------------------------------------------------------------- pure metrics and rules
def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def win_rate(pnls: list[int]) -> float:
    return sum(1 for p in pnls if p > 0) / len(pnls) if pnls else 0.0


def sharpe(pnls: list[int]) -> float:
    """Per-trade Sharpe: mean / sample standard deviation (0 when undefined)."""
    n = len(pnls)
    if n < 2:
        return 0.0
    mean = sum(pnls) / n
    var = sum((p - mean) ** 2 for p in pnls) / (n - 1)
    return mean / math.sqrt(var) if var > 0 else 0.0


def max_drawdown(pnls: list[int]) -> int:
    """Largest fall of cumulative pnl from its running peak (peak starts at 0), in paise."""
    cum = peak = worst = 0
    for p in pnls:
        cum += p
        peak = max(peak, cum)
        worst = max(worst, peak - cum)
    return worst


def win_rate_multiplier(w: float, n: int, cfg: AdaptiveConfig) -> float:
    """Piecewise-linear size multiplier from win rate (see module docstring)."""
    if n < cfg.min_trades or n == 0:
        return 1.0
    if w >= cfg.win_rate_high:
        frac = (w - cfg.win_rate_high) / (cfg.win_rate_ceiling - cfg.win_rate_high)
        return 1.0 + _clamp(frac, 0.0, 1.0) * (cfg.max_multiplier - 1.0)
    if w <= cfg.win_rate_low:
        frac = (cfg.win_rate_low - w) / (cfg.win_rate_low - cfg.win_rate_floor)
        return 1.0 - _clamp(frac, 0.0, 1.0) * (1.0 - cfg.min_multiplier)
    return 1.0


def volatility_scale(atr: float | None, avg_atr: float | None, cfg: AdaptiveConfig) -> float:
    """1 / (ATR / average ATR), clamped; 1.0 without data."""
    if atr is None or avg_atr is None or atr <= 0 or avg_atr <= 0:
        return 1.0
    return _clamp(avg_atr / atr, cfg.vol_scale_min, cfg.vol_scale_max)


def stop_atr_multiple(
    w: float, n: int, atr: float | None, avg_atr: float | None, cfg: AdaptiveConfig
) -> float:
    """Stop distance in ATRs, widened by losing and by relatively high volatility."""
    w_eff = w if n >= cfg.min_trades and n > 0 else 0.5
    ratio = 1.0
    if atr is not None and avg_atr is not None and atr > 0 and avg_atr > 0:
        ratio = _clamp(atr / avg_atr, 0.75, 1.25)
    raw = cfg.base_stop_atr_mult * (1 + 0.5 * (0.5 - w_eff)) * ratio
    return _clamp(raw, cfg.stop_min, cfg.stop_max)


def capital_weights(scores: dict[str, float], floor: float) -> dict[str, float]:
    """Weights ∝ max(score, 0) with a floor each; equal when nothing scored positive."""
    n = len(scores)
    if n == 0:
        return {}
    pos = {k: max(v, 0.0) for k, v in scores.items()}
    total = sum(pos.values())
    if total <= 0 or floor * n >= 1:
        return {k: 1.0 / n for k in scores}
    rest = 1.0 - floor * n
    return {k: floor + rest * v / total for k, v in pos.items()}


# ---------------------------------------------------------------- state and logic
@dataclass
class StrategyAdaptive:
    pnls: list[int] = field(default_factory=list)
    underlying: str = ""
    losses: int = 0
    paused_until: datetime | None = None
    published: tuple[float, float, float, datetime | None] | None = None


@dataclass
class AtrStats:
    values: list[float] = field(default_factory=list)

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None


@dataclass
class AdaptiveState:
    version: int = ADAPTIVE_STATE_VERSION
    clock: datetime | None = None
    strategies: dict[str, StrategyAdaptive] = field(default_factory=dict)
    atr: dict[str, AtrStats] = field(default_factory=dict)


class AdaptiveLogic:
    """Adaptive layer of one account; methods return the ``AdaptiveStateChanged`` events."""

    def __init__(self, config: AdaptiveConfig, state: AdaptiveState | None = None) -> None:
        self.config = config
        self.state = state if state is not None else AdaptiveState()
        if self.state.version != ADAPTIVE_STATE_VERSION:
            msg = f"adaptive state version {self.state.version} != {ADAPTIVE_STATE_VERSION}"
            raise ValueError(msg)
        for name in config.strategies:
            self._strategy(name)

    def snapshot(self) -> AdaptiveState:
        return copy.deepcopy(self.state)

    def _strategy(self, name: str) -> StrategyAdaptive:
        sa = self.state.strategies.get(name)
        if sa is None:
            sa = StrategyAdaptive(underlying=self.config.strategy_underlyings.get(name, ""))
            self.state.strategies[name] = sa
        return sa

    def multiplier(self, strategy: str) -> float:
        """The current (unrounded) size multiplier, for callers that size directly."""
        return self._values(strategy)[0]

    def _values(self, name: str) -> tuple[float, float, float, float, int]:
        """(size multiplier, stop ATR multiple, win rate, Sharpe, max drawdown)."""
        cfg = self.config
        sa = self._strategy(name)
        pnls = sa.pnls
        w = win_rate(pnls)
        stats = self.state.atr.get(sa.underlying)
        atr = stats.last if stats else None
        avg = stats.mean if stats else None
        size = win_rate_multiplier(w, len(pnls), cfg) * volatility_scale(atr, avg, cfg)
        stop = stop_atr_multiple(w, len(pnls), atr, avg, cfg)
        return size, stop, w, sharpe(pnls), max_drawdown(pnls)

    def _publish(self, ts: datetime) -> list[AdaptiveStateChanged]:
        cfg = self.config
        names = sorted(self.state.strategies)
        active = {
            n: sharpe(self.state.strategies[n].pnls)
            for n in names
            if self.state.strategies[n].paused_until is None
        }
        weights = capital_weights(active, cfg.weight_floor)
        out: list[AdaptiveStateChanged] = []
        for name in names:
            sa = self.state.strategies[name]
            size, stop, w, sh, dd = self._values(name)
            d = cfg.decimals
            current = (
                round(size, d),
                round(stop, d),
                round(weights.get(name, 0.0), d),
                sa.paused_until,
            )
            if current == sa.published:
                continue
            sa.published = current
            out.append(
                AdaptiveStateChanged(
                    ts_event=ts,
                    ts_recv=ts,
                    account=cfg.account,
                    strategy=name,
                    size_multiplier=current[0],
                    stop_atr_mult=current[1],
                    weight=current[2],
                    paused_until=current[3],
                    win_rate=round(w, 6),
                    sharpe=round(sh, 6),
                    max_drawdown=dd,
                    trades=len(sa.pnls),
                )
            )
        return out

    def on_clock(self, ts: datetime) -> list[AdaptiveStateChanged]:
        """Advance event time; cooldowns that ended are published at their end time."""
        s = self.state
        now = ts if s.clock is None or ts > s.clock else s.clock
        s.clock = now
        ends = sorted(
            (sa.paused_until, name)
            for name, sa in s.strategies.items()
            if sa.paused_until is not None and sa.paused_until <= now
        )
        out: list[AdaptiveStateChanged] = []
        for until, name in ends:
            s.strategies[name].paused_until = None
            out.extend(self._publish(until))
        return out

    def on_trade_closed(self, trade: TradeResult) -> list[AdaptiveStateChanged]:
        cfg = self.config
        out = self.on_clock(trade.ts_event)
        if trade.account != cfg.account:
            return out
        sa = self._strategy(trade.strategy)
        if trade.underlying and trade.strategy not in cfg.strategy_underlyings:
            sa.underlying = trade.underlying
        sa.pnls.append(trade.pnl)
        del sa.pnls[: -cfg.window]
        sa.losses, until = record_trade_result(
            sa.losses,
            trade.pnl,
            trade.ts_event,
            cfg.consecutive_losses,
            timedelta(minutes=cfg.cooldown_minutes),
        )
        if until is not None:
            sa.paused_until = until
        out.extend(self._publish(trade.ts_event))
        return out

    def on_atr(self, ts: datetime, underlying: str, atr: float) -> list[AdaptiveStateChanged]:
        """A new ATR(14) reading (rupees) of an underlying, e.g. from each 1-min bar."""
        out = self.on_clock(ts)
        if atr <= 0 or not math.isfinite(atr):
            return out
        stats = self.state.atr.setdefault(underlying, AtrStats())
        stats.values.append(atr)
        del stats.values[: -self.config.atr_avg_window]
        out.extend(self._publish(ts))
        return out

    def on_regime(self, ev: RegimeClassified) -> list[AdaptiveStateChanged]:
        """Take the ATR carried in a regime event's features (key ``atr``)."""
        atr = ev.features.get("atr")
        if atr is None:
            return self.on_clock(ev.ts_event)
        return self.on_atr(ev.ts_event, ev.underlying, atr)
