"""Typed order model: commands (imperative) and order events (past tense), plus validation.

All prices are integer paise on the instrument's tick grid (₹0.05 = 5 paise for options);
quantities are units, a multiple of the lot size. Order ids are derived deterministically
(``make_order_id``) so a replay produces the same ids and the journal upserts stay idempotent.

A BRACKET order is an entry (LIMIT when ``price`` > 0, else MARKET) whose fills arm two
children, one-cancels-other: a LIMIT target at ``target`` and an SL-M stop triggered at
``stop``, both on the opposite side, with ids ``<parent>.T`` and ``<parent>.S``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from operators.events import Event, Instrument, Side
from operators.trading.costs import ZERO_COSTS, CostBreakdown

OrderType = Literal["MARKET", "LIMIT", "SL", "SL-M", "BRACKET"]
Validity = Literal["DAY", "IOC"]
OrderStatus = Literal[
    "ACCEPTED",
    "TRIGGERED",
    "PARTIALLY_FILLED",
    "FILLED",
    "CANCELLED",
    "EXPIRED",
    "REJECTED",
]
Liquidity = Literal["MAKER", "TAKER"]
TERMINAL: frozenset[str] = frozenset({"FILLED", "CANCELLED", "EXPIRED", "REJECTED"})

TARGET_SUFFIX = ".T"
STOP_SUFFIX = ".S"


def make_order_id(
    strategy: str, token: str, signal_ts: datetime, seq: int = 0, *, account: str = ""
) -> str:
    """Deterministic order id: a short hash of who, what, when and the sequence number.

    >>> from datetime import UTC
    >>> make_order_id("ema", "43650", datetime(2026, 1, 5, 4, tzinfo=UTC), 1) == (
    ...     make_order_id("ema", "43650", datetime(2026, 1, 5, 4, tzinfo=UTC), 1))
    True
    """
    key = f"{account}|{strategy}|{token}|{signal_ts.isoformat()}|{seq}"
    return "o-" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


def opposite(side: Side) -> Side:
    return "SELL" if side == "BUY" else "BUY"


# --- commands ---------------------------------------------------------------------------


class SubmitOrder(Event, frozen=True, kw_only=True):
    """Ask the execution venue to work an order. ``reason`` is the entry/exit reason text."""

    order_id: str
    account: str
    strategy: str
    token: str
    side: Side
    order_type: OrderType
    qty: int
    price: int = 0  # limit price (LIMIT, SL, BRACKET entry; 0 = market entry)
    trigger: int = 0  # trigger price (SL, SL-M)
    validity: Validity = "DAY"
    target: int = 0  # BRACKET: target limit price
    stop: int = 0  # BRACKET: stop trigger price
    parent_id: str = ""
    reason: str = ""
    run_id: str = ""


class CancelOrder(Event, frozen=True, kw_only=True):
    """Cancel the unfilled rest of an order (and a bracket's children with its parent)."""

    order_id: str
    account: str
    reason: str = ""
    run_id: str = ""


class ModifyOrder(Event, frozen=True, kw_only=True):
    """Change quantity, price or trigger of a working order; ``None`` keeps the old value.

    A modified order loses its queue priority and waits the latency again.
    """

    order_id: str
    account: str
    qty: int | None = None
    price: int | None = None
    trigger: int | None = None
    run_id: str = ""


# --- events -----------------------------------------------------------------------------


class OrderEvent(Event, frozen=True, kw_only=True):
    """Identity shared by every order event (enough to key and journal it)."""

    order_id: str
    account: str
    strategy: str
    token: str
    run_id: str = ""


class OrderDetails(OrderEvent, frozen=True, kw_only=True):
    """An order event that carries the full order terms (accepted, rejected, modified)."""

    side: Side
    order_type: OrderType
    qty: int
    price: int = 0
    trigger: int = 0
    validity: Validity = "DAY"
    target: int = 0
    stop: int = 0
    parent_id: str = ""
    reason: str = ""


class OrderAccepted(OrderDetails, frozen=True, kw_only=True):
    """The order passed validation and is working."""


class OrderRejected(OrderDetails, frozen=True, kw_only=True):
    """The order was refused; ``reject_reason`` is machine-readable (``CODE: detail``)."""

    reject_reason: str


class OrderModified(OrderDetails, frozen=True, kw_only=True):
    """The order's terms changed (by ModifyOrder, or a bracket child following its sibling)."""

    modify_reason: str = ""


class OrderCommandRejected(OrderEvent, frozen=True, kw_only=True):
    """A command could not be applied: duplicate submit, or cancel/modify of an unknown,
    closed or invalid order. Kept apart from OrderRejected so it never touches the order's
    own journal row."""

    command: Literal["SUBMIT", "CANCEL", "MODIFY"]
    reject_reason: str


class OrderTriggered(OrderEvent, frozen=True, kw_only=True):
    """A stop's trigger was reached on LTP; SL now works as a limit, SL-M as a market."""

    trigger: int
    ltp: int


class FillEvent(OrderEvent, frozen=True, kw_only=True):
    """A trade against the order: this fill's quantity/price and the order's running totals."""

    fill_id: str
    side: Side
    fill_qty: int
    fill_price: int
    cum_qty: int
    leaves_qty: int
    cum_value: int  # Σ fill_qty × fill_price of the order so far, paise
    liquidity: Liquidity
    costs: CostBreakdown = ZERO_COSTS
    parent_id: str = ""
    reason: str = ""

    @property
    def avg_price(self) -> float:
        """Average fill price of the order so far, paise."""
        return self.cum_value / self.cum_qty if self.cum_qty else 0.0


class OrderPartiallyFilled(FillEvent, frozen=True, kw_only=True):
    """A fill that leaves part of the order working."""


class OrderFilled(FillEvent, frozen=True, kw_only=True):
    """The fill that completes the order."""


class OrderCancelled(OrderEvent, frozen=True, kw_only=True):
    """The unfilled rest was cancelled (by request, IOC remainder, or OCO)."""

    cancel_reason: str
    filled_qty: int = 0


class OrderExpired(OrderEvent, frozen=True, kw_only=True):
    """A DAY order's unfilled rest expired at the session close."""

    expire_reason: str = "DAY_EXPIRY"
    filled_qty: int = 0


ExecutionCommand = SubmitOrder | CancelOrder | ModifyOrder


# --- validation -------------------------------------------------------------------------


def check_qty(qty: int, inst: Instrument) -> str | None:
    """Reason the quantity is unacceptable, or None."""
    if qty <= 0:
        return f"BAD_QTY: qty={qty} must be positive"
    if qty % inst.lot_size:
        return f"QTY_NOT_LOT_MULTIPLE: qty={qty}, lot_size={inst.lot_size}"
    return None


def check_price(name: str, value: int, inst: Instrument, *, required: bool) -> str | None:
    """Reason a price field is unacceptable (missing, negative, or off the tick grid)."""
    if value == 0 and not required:
        return None
    if value <= 0:
        return f"BAD_PRICE: {name}={value} must be positive"
    if value % inst.tick_size:
        return f"PRICE_OFF_GRID: {name}={value} paise is not a multiple of {inst.tick_size}"
    return None


def validate_submit(cmd: SubmitOrder, inst: Instrument | None) -> str | None:
    """First reason ``cmd`` must be rejected, or None when it is acceptable."""
    if inst is None:
        return f"UNKNOWN_INSTRUMENT: token={cmd.token}"
    if (reason := check_qty(cmd.qty, inst)) is not None:
        return reason
    kind = cmd.order_type
    checks: list[str | None] = [
        check_price("price", cmd.price, inst, required=kind in ("LIMIT", "SL")),
        check_price("trigger", cmd.trigger, inst, required=kind in ("SL", "SL-M")),
        check_price("target", cmd.target, inst, required=kind == "BRACKET"),
        check_price("stop", cmd.stop, inst, required=kind == "BRACKET"),
    ]
    for reason in checks:
        if reason is not None:
            return reason
    if kind == "BRACKET":
        up = cmd.side == "BUY"
        if (cmd.target <= cmd.stop) if up else (cmd.target >= cmd.stop):
            return (
                f"BAD_BRACKET: {cmd.side} needs target {'above' if up else 'below'} stop "
                f"(target={cmd.target}, stop={cmd.stop})"
            )
        if cmd.price and ((cmd.price >= cmd.target) if up else (cmd.price <= cmd.target)):
            return f"BAD_BRACKET: entry {cmd.price} must be on the near side of target {cmd.target}"
    if kind == "SL":
        # a stop-limit whose limit is worse than its trigger can never work sensibly
        bad = cmd.price < cmd.trigger if cmd.side == "BUY" else cmd.price > cmd.trigger
        if bad:
            return f"BAD_STOP_LIMIT: {cmd.side} price={cmd.price} vs trigger={cmd.trigger}"
    return None
