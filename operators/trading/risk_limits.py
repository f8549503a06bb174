"""Risk configuration, order intents, approval/denial events and the pure sizing rules.

Everything here is a pure function of its arguments: the stateful engine lives in
``operators/trading/risk.py`` and the kill switch steps in ``operators/trading/kill_switch.py``.

Money is integer paise; ATR is in rupees (as on ``IndicatorSnapshot``); quantities are units.
Denial reasons are machine-readable: ``CODE: key=value, key=value`` with rupee amounts
printed with two decimals (exact, since they come from integer paise).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator

from operators.events import Event, Side
from operators.trading.orders import FillEvent

# A floor that is off by one ulp (14.999999999 lots) must still give 15 lots.
_FLOOR_EPS = 1e-9


def rupees(paise: int | float) -> str:
    """Format a paise amount as rupees with two decimals, for reason strings."""
    return f"{paise / 100:.2f}"


def stable_hash(model: BaseModel) -> str:
    """sha256 of the model's canonical JSON (sorted keys): identical for identical configs."""
    payload = {"model": type(model).__name__, "fields": model.model_dump(mode="json")}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


class FrozenConfig(BaseModel):
    """A frozen parameter model whose ``config_hash`` every run records (risk limits, the
    adaptive layer, the regime model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def config_hash(self) -> str:
        return stable_hash(self)


class RiskLimits(FrozenConfig):
    """Per-account risk parameters: static limits, dynamic rules and kill-switch thresholds.

    ``capital`` and exposure are paise; percentages are of ``capital``; ``max_net_delta`` is
    in underlying units (Σ qty × delta). ``strategies`` lists the account's active strategies
    (empty: every strategy seen so far) for the "all strategies paused" global pause.
    """

    account: str
    capital: int = Field(gt=0)
    max_loss_per_trade_pct: float = Field(default=1.0, gt=0, le=100)
    max_daily_loss_pct: float = Field(default=3.0, gt=0, le=100)
    max_position_lots: int = Field(default=10, gt=0)
    max_gross_exposure: int | None = Field(default=None, gt=0)
    max_net_delta: float = Field(default=1000.0, gt=0)
    volatility_sizing: bool = True
    consecutive_losses: int = Field(default=4, gt=0)
    cooldown_minutes: float = Field(default=15.0, gt=0)
    strategies: tuple[str, ...] = ()
    kill_drawdown_pct: float = Field(default=5.0, gt=0, le=100)
    feed_stall_seconds: float = Field(default=10.0, gt=0)
    max_spread_pct: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> RiskLimits:
        if len(set(self.strategies)) != len(self.strategies):
            msg = f"duplicate strategy names in {self.strategies}"
            raise ValueError(msg)
        return self

    @property
    def gross_exposure_limit(self) -> int:
        """Max gross exposure in paise (defaults to the capital)."""
        return self.max_gross_exposure if self.max_gross_exposure is not None else self.capital

    @property
    def risk_per_trade(self) -> int:
        """The loss budget of one trade in paise (``max_loss_per_trade_pct`` of capital)."""
        return math.floor(self.capital * self.max_loss_per_trade_pct / 100 + _FLOOR_EPS)

    @property
    def daily_loss_limit(self) -> int:
        """The session loss, in paise, that halts trading until the next session."""
        return math.floor(self.capital * self.max_daily_loss_pct / 100 + _FLOOR_EPS)

    @property
    def cooldown(self) -> timedelta:
        return timedelta(minutes=self.cooldown_minutes)


class TradeTerms(msgspec.Struct, frozen=True, kw_only=True):
    """Who trades what, which way, how much and at what price (paise): the part of an order
    intent and a fill report that risk reads alike."""

    ts_event: datetime
    account: str
    strategy: str
    instrument: str
    underlying: str
    side: Side
    qty: int
    price: int

    @property
    def signed_qty(self) -> int:
        return self.qty if self.side == "BUY" else -self.qty


class OrderIntent(TradeTerms, frozen=True, kw_only=True):
    """What a strategy wants to trade, before risk: the lead adapts ``SubmitOrder`` into this.

    ``qty`` is units (a multiple of ``lot_size``); ``price`` is the expected fill price in
    paise (limit price, or the current LTP for a market order); ``stop_distance`` is the
    distance to the protective stop in paise per unit; ``delta`` is the option delta
    (None: a future or unknown, sized conservatively as 1); ``atr`` is the underlying's
    ATR(14) in rupees for volatility sizing (None: no volatility sizing).
    """

    order_id: str
    lot_size: int
    stop_distance: int
    delta: float | None = None
    atr: float | None = None


class FillReport(TradeTerms, frozen=True, kw_only=True):
    """One execution as the risk engine needs it; the lead adapts ``OrderFilled`` into this.

    ``costs`` are the statutory charges and brokerage of this fill in paise (≥ 0).
    """

    costs: int = 0
    order_id: str = ""
    lot_size: int = 1


def fill_report(fill: FillEvent, underlying: str, lot_size: int) -> FillReport:
    """The risk engine's view of an execution (the one conversion the account stage makes)."""
    return FillReport(
        ts_event=fill.ts_event,
        account=fill.account,
        strategy=fill.strategy,
        instrument=fill.token,
        underlying=underlying,
        side=fill.side,
        qty=fill.fill_qty,
        price=fill.fill_price,
        costs=fill.costs.total,
        order_id=fill.order_id,
        lot_size=lot_size,
    )


class RiskDecision(Event, frozen=True, kw_only=True):
    """What risk answered about one order: the fields an approval and a denial share."""

    account: str
    strategy: str
    order_id: str
    instrument: str
    side: Side
    qty: int


class OrderApproved(RiskDecision, frozen=True, kw_only=True):
    """Risk let the order through, possibly with a smaller ``qty`` than requested."""

    requested_qty: int
    price: int
    reason: str = ""


class OrderDenied(RiskDecision, frozen=True, kw_only=True):
    """Risk refused the order; ``reason`` is ``CODE: key=value, ...`` (see module doc)."""

    reason: str


def volatility_lots(
    risk_budget: int, atr: float, lot_size: int, delta: float | None, multiplier: float = 1.0
) -> int:
    """Lots whose one-ATR move costs at most ``risk_budget`` paise, times the multiplier.

    lots = floor(floor(risk_budget / (ATR × 100 × lot_size × |delta|)) × multiplier)

    e.g. budget ₹10,000 (1,000,000 paise), ATR ₹20, lot 65, delta 0.5: one lot risks
    20 × 100 × 65 × 0.5 = 65,000 paise → floor(15.38) = 15 lots; × 1.2 → 18 lots.
    """
    abs_delta = 1.0 if delta is None else min(abs(delta), 1.0)
    per_lot = atr * 100 * lot_size * abs_delta
    if per_lot <= 0:
        return 0
    base = math.floor(risk_budget / per_lot + _FLOOR_EPS)
    return max(math.floor(base * multiplier + _FLOOR_EPS), 0)


def stop_lots(risk_budget: int, stop_distance: int, lot_size: int) -> int:
    """Lots whose loss at the stop stays within ``risk_budget`` paise."""
    if stop_distance <= 0 or lot_size <= 0:
        return 0
    return risk_budget // (stop_distance * lot_size)


def record_trade_result(
    losses: int, pnl: int, ts: datetime, threshold: int, cooldown: timedelta
) -> tuple[int, datetime | None]:
    """Consecutive-loss counter step: returns (new count, pause end or None).

    A losing trade (net pnl < 0) increments the count, anything else resets it; reaching
    ``threshold`` starts a cooldown of ``cooldown`` from ``ts`` and resets the count.
    """
    losses = losses + 1 if pnl < 0 else 0
    if losses >= threshold:
        return 0, ts + cooldown
    return losses, None
