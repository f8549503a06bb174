"""Event-time execution simulator: works orders against ticks and emits order events.

Why one module (~600 lines): one state machine for every order type (market, limit, stop,
IOC, DAY expiry); its transitions read best side by side.

``ExecutionLogic`` holds a small serialisable ``ExecutionState`` and three entry points, all
driven by event time only: ``on_command`` (submit / cancel / modify), ``on_tick`` (triggers,
fills, IOC remainders) and ``on_time`` (DAY expiry at 15:30 IST). The feeding stage must call
them in ``(ts_event, tie-break)`` order (DESIGN.md invariant 8).

Rules (DOMAIN.md "peer lessons"):
- an order may trade only on ticks with ``ts_event`` strictly after its event time plus the
  latency model's delay, so never on the tick that caused it;
- a stop triggers on LTP (``OrderTriggered``) and then works, as a limit (SL) or a market
  (SL-M), from the *next* tick on: never on the triggering tick;
- market orders pay ask (buy) / bid (sell) plus the slippage model's share of the spread;
- a limit that crosses on its first working tick takes the touch (ask/bid); a resting limit
  fills at its own price when the fill model says the book crossed (touch / penetration);
- per tick, all orders on an instrument together take at most Δcum_volume × participation
  units (whole lots per fill), in priority (time) order, so two orders never consume the same
  volume; the first tick seen for a token (or after its volume counter resets) counts
  ``last_qty`` as traded; with several accounts each simulator takes only its
  ``FillModel.share`` of that cap, carrying the unused fraction (under one lot) to the next
  tick while its orders wait;
- the unfilled rest of an IOC is cancelled after its first working tick; DAY orders expire at
  the session close of the day they were accepted;
- a cancel takes effect at the command's event time (no cancel latency is modelled).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

import msgspec

from operators.events import Instrument, Side, Tick
from operators.market.sessions import ist_date, session_close
from operators.trading.costs import ZERO_COSTS, CostModel
from operators.trading.fills import (
    FillModel,
    FixedLatency,
    LatencyModel,
    SlippageModel,
    SpreadSlippage,
)
from operators.trading.orders import (
    STOP_SUFFIX,
    TARGET_SUFFIX,
    TERMINAL,
    CancelOrder,
    ExecutionCommand,
    FillEvent,
    Liquidity,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderCommandRejected,
    OrderDetails,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderPartiallyFilled,
    OrderRejected,
    OrderStatus,
    OrderTriggered,
    OrderType,
    SubmitOrder,
    Validity,
    check_price,
    check_qty,
    opposite,
    validate_submit,
)

STATE_VERSION = 1


@dataclass(frozen=True)
class ExecutionConfig:
    """The swappable models the simulator uses; ``costs=None`` leaves fills uncosted."""

    latency: LatencyModel = field(default_factory=FixedLatency)
    slippage: SlippageModel = field(default_factory=SpreadSlippage)
    fill: FillModel = field(default_factory=FillModel)
    costs: CostModel | None = field(default_factory=CostModel)


class WorkingOrder(msgspec.Struct, kw_only=True):
    """The simulator's mutable view of one order."""

    order_id: str
    account: str
    strategy: str
    token: str
    side: Side
    order_type: OrderType
    qty: int
    price: int
    trigger: int
    validity: Validity
    parent_id: str
    reason: str
    run_id: str
    accepted_at: datetime
    eligible_after: datetime
    session_end: datetime
    priority: int
    status: OrderStatus = "ACCEPTED"
    target: int = 0
    stop: int = 0
    filled_qty: int = 0
    filled_value: int = 0
    fills: int = 0
    triggered: bool = False
    worked: bool = False
    children: list[str] = msgspec.field(default_factory=list)

    @property
    def leaves(self) -> int:
        return self.qty - self.filled_qty

    @property
    def working(self) -> bool:
        return self.status not in TERMINAL


class ExecutionState(msgspec.Struct, kw_only=True):
    """Everything the simulator remembers: orders, per-token working queues, last volumes."""

    version: int = STATE_VERSION
    orders: dict[str, WorkingOrder] = msgspec.field(default_factory=dict)
    working: dict[str, list[str]] = msgspec.field(default_factory=dict)
    last_cum_volume: dict[str, int] = msgspec.field(default_factory=dict)
    next_priority: int = 0


class SharedExecutionState(ExecutionState, kw_only=True):
    """The state of a simulator with a liquidity share below 1 (several accounts): also the
    volume entitlement carried per token (under one lot). A subclass, so a single account's
    state (and its recorded fingerprints) stays exactly as it was."""

    carried: dict[str, Decimal] = msgspec.field(default_factory=dict)


Behaviour = Literal["MARKET", "LIMIT"]
D = TypeVar("D", bound=OrderDetails)
E = TypeVar("E", bound=OrderEvent)


def _order_event(
    cls: type[E], o: WorkingOrder | SubmitOrder, ts_event: datetime, ts_recv: datetime, **extra: Any
) -> E:
    """An order event of class ``cls`` with the identity every order event carries (order,
    account, strategy, token, run) taken from ``o``, plus ``extra``."""
    return cls(
        ts_event=ts_event,
        ts_recv=ts_recv,
        order_id=o.order_id,
        account=o.account,
        strategy=o.strategy,
        token=o.token,
        run_id=o.run_id,
        **extra,
    )


def _order_terms(o: WorkingOrder | SubmitOrder) -> dict[str, Any]:
    """The order's terms (side, type, size, prices, validity, bracket, parent, reason): what a
    submit hands the working order and what every ``OrderDetails`` event repeats."""
    return {
        "side": o.side,
        "order_type": o.order_type,
        "qty": o.qty,
        "price": o.price,
        "trigger": o.trigger,
        "validity": o.validity,
        "target": o.target,
        "stop": o.stop,
        "parent_id": o.parent_id,
        "reason": o.reason,
    }


def _terms(cls: type[D], o: WorkingOrder, ts_event: datetime, ts_recv: datetime, **extra: Any) -> D:
    """An order event of class ``cls`` carrying the order's current terms."""
    return _order_event(cls, o, ts_event, ts_recv, **_order_terms(o), **extra)


class ExecutionLogic:
    """The execution venue simulator for one account key (see module docstring)."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        config: ExecutionConfig | None = None,
        state: ExecutionState | None = None,
    ) -> None:
        self.instruments = dict(instruments)
        self.config = config or ExecutionConfig()
        shared = self.config.fill.share != 1
        self.state = (
            state if state is not None else (SharedExecutionState() if shared else ExecutionState())
        )
        if shared and not isinstance(self.state, SharedExecutionState):
            self.state = SharedExecutionState(**msgspec.structs.asdict(self.state))
        if self.state.version != STATE_VERSION:
            msg = f"execution state version {self.state.version} != {STATE_VERSION}"
            raise ValueError(msg)

    def snapshot(self) -> ExecutionState:
        """A deep copy of the state, safe to keep while this logic goes on."""
        return copy.deepcopy(self.state)

    def add_instrument(self, inst: Instrument) -> None:
        self.instruments[inst.token] = inst

    def order(self, order_id: str) -> WorkingOrder | None:
        return self.state.orders.get(order_id)

    # --- commands -------------------------------------------------------------------------

    def on_command(self, cmd: ExecutionCommand) -> list[OrderEvent]:
        if isinstance(cmd, SubmitOrder):
            return self._submit(cmd)
        if isinstance(cmd, CancelOrder):
            return self._cancel(cmd)
        return self._modify(cmd)

    def _submit(self, cmd: SubmitOrder) -> list[OrderEvent]:
        if cmd.order_id in self.state.orders:
            return [
                _order_event(
                    OrderCommandRejected,
                    cmd,
                    cmd.ts_event,
                    cmd.ts_recv,
                    command="SUBMIT",
                    reject_reason="DUPLICATE_ORDER_ID",
                )
            ]
        reason = validate_submit(cmd, self.instruments.get(cmd.token))
        end = session_close(ist_date(cmd.ts_event))
        if reason is None and cmd.ts_event >= end:
            reason = f"SESSION_CLOSED: {cmd.ts_event.isoformat()} >= {end.isoformat()}"
        order = self._working(cmd.order_id, cmd, cmd.ts_event, end, priority=0, **_order_terms(cmd))
        if reason is not None:
            order.status = "REJECTED"
            return [_terms(OrderRejected, order, cmd.ts_event, cmd.ts_recv, reject_reason=reason)]
        order.priority = self._next_priority()
        self._add(order)
        return [_terms(OrderAccepted, order, cmd.ts_event, cmd.ts_recv)]

    def _cancel(self, cmd: CancelOrder) -> list[OrderEvent]:
        order = self.state.orders.get(cmd.order_id)
        live_children = [
            c for c in (order.children if order else []) if self.state.orders[c].working
        ]
        if order is None or (not order.working and not live_children):
            return [self._command_rejected(cmd, "CANCEL", "UNKNOWN_OR_CLOSED_ORDER")]
        reason = cmd.reason or "CANCEL_REQUESTED"
        events: list[OrderEvent] = []
        if order.working:
            events.append(self._cancelled(order, reason, cmd.ts_event, cmd.ts_recv))
        for child in live_children:
            c = self.state.orders[child]
            events.append(
                self._cancelled(c, f"PARENT_CANCELLED: {reason}", cmd.ts_event, cmd.ts_recv)
            )
        return events

    def _modify(self, cmd: ModifyOrder) -> list[OrderEvent]:
        order = self.state.orders.get(cmd.order_id)
        if order is None or not order.working:
            return [self._command_rejected(cmd, "MODIFY", "UNKNOWN_OR_CLOSED_ORDER")]
        inst = self.instruments[order.token]
        qty = order.qty if cmd.qty is None else cmd.qty
        price = order.price if cmd.price is None else cmd.price
        trigger = order.trigger if cmd.trigger is None else cmd.trigger
        reason = check_qty(qty, inst)
        if reason is None and qty <= order.filled_qty:
            reason = f"QTY_NOT_ABOVE_FILLED: qty={qty}, filled={order.filled_qty}"
        for name, value, given in (("price", price, cmd.price), ("trigger", trigger, cmd.trigger)):
            if reason is None and given is not None:
                reason = check_price(name, value, inst, required=True)
        if reason is not None:
            return [self._command_rejected(cmd, "MODIFY", reason)]
        order.qty, order.price, order.trigger = qty, price, trigger
        order.accepted_at = cmd.ts_event
        order.eligible_after = cmd.ts_event + self.config.latency.delay(order.order_id)
        order.worked = False
        self._requeue(order)
        return [
            _terms(
                OrderModified, order, cmd.ts_event, cmd.ts_recv, modify_reason="MODIFY_REQUESTED"
            )
        ]

    # --- time -----------------------------------------------------------------------------

    def on_time(self, ts: datetime) -> list[OrderEvent]:
        """Expire every working DAY order whose session has closed by ``ts``."""
        if not self.state.working:
            return []
        due = [
            o
            for ids in self.state.working.values()
            for o in (self.state.orders[i] for i in ids)
            if o.session_end <= ts
        ]
        events: list[OrderEvent] = []
        for o in sorted(due, key=lambda o: o.priority):
            o.status = "EXPIRED"
            self._remove(o)
            events.append(_order_event(OrderExpired, o, o.session_end, ts, filled_qty=o.filled_qty))
        return events

    # --- ticks ----------------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> list[OrderEvent]:
        st = self.state
        if not st.working:  # most ticks: nothing can expire or trade, only the volume moves
            st.last_cum_volume[tick.token] = tick.cum_volume
            return []
        events = self.on_time(tick.ts_event)
        volumes = st.last_cum_volume
        prev = volumes.get(tick.token)
        volumes[tick.token] = tick.cum_volume
        ids = st.working.get(tick.token)
        if not ids:
            return events
        if prev is None or tick.cum_volume < prev:
            traded = tick.last_qty  # first tick seen, or a new day's counter
        else:
            traded = tick.cum_volume - prev
        fill = self.config.fill
        exact = Decimal(0)
        if isinstance(st, SharedExecutionState):
            exact = fill.shared_cap(traded, st.carried.pop(tick.token, Decimal(0)))
            pool = int(exact)
        else:
            pool = fill.volume_cap(traded)
        start = pool
        for oid in list(ids):
            order = self.state.orders[oid]
            if not order.working or tick.ts_event <= order.eligible_after:
                continue
            if order.order_type in ("SL", "SL-M") and not order.triggered:
                if self._trigger_hit(order, tick.ltp):
                    events.append(self._trigger(order, tick))
                continue
            taken, new_events = self._work(order, tick, pool)
            pool -= taken
            events.extend(new_events)
            if order.working and order.validity == "IOC":
                events.append(self._cancelled(order, "IOC_REMAINDER", tick.ts_event, tick.ts_recv))
        if isinstance(st, SharedExecutionState) and st.working.get(tick.token):
            lot = Decimal(self.instruments[tick.token].lot_size)
            st.carried[tick.token] = min(exact - (start - pool), lot)
        return events

    @staticmethod
    def _trigger_hit(order: WorkingOrder, ltp: int) -> bool:
        if ltp <= 0:
            return False
        return ltp >= order.trigger if order.side == "BUY" else ltp <= order.trigger

    def _trigger(self, order: WorkingOrder, tick: Tick) -> OrderTriggered:
        order.triggered = True
        order.eligible_after = tick.ts_event  # works from the next tick, never this one
        if order.status == "ACCEPTED":
            order.status = "TRIGGERED"
        return _order_event(
            OrderTriggered,
            order,
            tick.ts_event,
            tick.ts_recv,
            trigger=order.trigger,
            ltp=tick.ltp,
        )

    @staticmethod
    def _behaviour(order: WorkingOrder) -> Behaviour:
        if order.order_type in ("MARKET", "SL-M"):
            return "MARKET"
        if order.order_type == "BRACKET":
            return "LIMIT" if order.price else "MARKET"
        return "LIMIT"

    def _price(self, order: WorkingOrder, tick: Tick) -> tuple[int, Liquidity] | None:
        """Fill price and liquidity for ``order`` on ``tick``, or None when it cannot trade."""
        inst = self.instruments[order.token]
        buy = order.side == "BUY"
        touch = (tick.ask if buy else tick.bid) if tick.has_book else tick.ltp
        if touch <= 0:
            return None
        first = not order.worked
        order.worked = True
        if self._behaviour(order) == "MARKET":
            spread = tick.ask - tick.bid if tick.has_book else 0
            slip = self.config.slippage.slippage(spread, inst.tick_size, order.order_id)
            price = touch + slip if buy else max(touch - slip, inst.tick_size)
            return price, "TAKER"
        marketable = touch <= order.price if buy else touch >= order.price
        if first and marketable:
            return touch, "TAKER"
        bid, ask = (tick.bid, tick.ask) if tick.has_book else (0, 0)
        if self.config.fill.passive_crosses(
            order.side, order.price, bid, ask, tick.ltp, inst.tick_size
        ):
            return order.price, "MAKER"
        return None

    def _work(self, order: WorkingOrder, tick: Tick, pool: int) -> tuple[int, list[OrderEvent]]:
        lot = self.instruments[order.token].lot_size
        qty = min(order.leaves, pool // lot * lot)  # F&O trades in whole lots
        if qty <= 0:
            return 0, []  # no volume for us: the order has not really worked yet
        quote = self._price(order, tick)
        if quote is None:
            return 0, []
        price, liquidity = quote
        events: list[OrderEvent] = [self._fill(order, qty, price, liquidity, tick)]
        if order.order_type == "BRACKET":
            events.extend(self._arm_children(order, tick))
        if order.parent_id in self.state.orders:
            parent = self.state.orders[order.parent_id]
            if parent.order_type == "BRACKET" and order.order_id in parent.children:
                events.extend(self._one_cancels_other(parent, order, tick))
        return qty, events

    def _fill(
        self, order: WorkingOrder, qty: int, price: int, liquidity: Liquidity, tick: Tick
    ) -> FillEvent:
        first = order.filled_qty == 0
        order.filled_qty += qty
        order.filled_value += qty * price
        order.fills += 1
        costs = (
            self.config.costs.costs(
                order.side, qty, price, ist_date(tick.ts_event), first_fill=first
            )
            if self.config.costs is not None
            else ZERO_COSTS
        )
        done = order.filled_qty == order.qty
        order.status = "FILLED" if done else "PARTIALLY_FILLED"
        if done:
            self._remove(order)
        cls = OrderFilled if done else OrderPartiallyFilled
        return _order_event(
            cls,
            order,
            tick.ts_event,
            tick.ts_recv,
            fill_id=f"{order.order_id}#{order.fills}",
            side=order.side,
            fill_qty=qty,
            fill_price=price,
            cum_qty=order.filled_qty,
            leaves_qty=order.leaves,
            cum_value=order.filled_value,
            liquidity=liquidity,
            costs=costs,
            parent_id=order.parent_id,
            reason=order.reason,
        )

    # --- brackets -------------------------------------------------------------------------

    def _open_bracket_qty(self, parent: WorkingOrder) -> int:
        """Units the bracket still holds: entry fills minus exit (child) fills."""
        exited = sum(self.state.orders[c].filled_qty for c in parent.children)
        return parent.filled_qty - exited

    def _arm_children(self, parent: WorkingOrder, tick: Tick) -> list[OrderEvent]:
        """Place the target and stop on the first entry fill; grow them on later fills."""
        open_qty = self._open_bracket_qty(parent)
        events: list[OrderEvent] = []
        if not parent.children:
            legs: tuple[tuple[str, OrderType, int, int, str], ...] = (
                (TARGET_SUFFIX, "LIMIT", parent.target, 0, "BRACKET_TARGET"),
                (STOP_SUFFIX, "SL-M", 0, parent.stop, "BRACKET_STOP"),
            )
            for suffix, kind, price, trigger, why in legs:
                child = self._working(
                    parent.order_id + suffix,
                    parent,
                    tick.ts_event,
                    parent.session_end,
                    side=opposite(parent.side),
                    order_type=kind,
                    qty=open_qty,
                    price=price,
                    trigger=trigger,
                    validity="DAY",
                    parent_id=parent.order_id,
                    reason=f"{why}: {parent.reason}" if parent.reason else why,
                    priority=self._next_priority(),
                )
                self._add(child)
                parent.children.append(child.order_id)
                events.append(_terms(OrderAccepted, child, tick.ts_event, tick.ts_recv))
            return events
        for cid in parent.children:
            child = self.state.orders[cid]
            if child.working and child.qty != child.filled_qty + open_qty:
                child.qty = child.filled_qty + open_qty
                events.append(
                    _terms(
                        OrderModified,
                        child,
                        tick.ts_event,
                        tick.ts_recv,
                        modify_reason="BRACKET_ENTRY_FILL",
                    )
                )
        return events

    def _one_cancels_other(
        self, parent: WorkingOrder, filled_child: WorkingOrder, tick: Tick
    ) -> list[OrderEvent]:
        """Shrink the sibling by what the child filled; cancel it once the bracket is flat."""
        open_qty = self._open_bracket_qty(parent)
        events: list[OrderEvent] = []
        for cid in parent.children:
            sib = self.state.orders[cid]
            if cid == filled_child.order_id or not sib.working:
                continue
            if open_qty == 0:
                events.append(
                    self._cancelled(
                        sib, f"OCO: {filled_child.order_id} filled", tick.ts_event, tick.ts_recv
                    )
                )
            elif sib.qty != sib.filled_qty + open_qty:
                sib.qty = sib.filled_qty + open_qty
                events.append(
                    _terms(
                        OrderModified, sib, tick.ts_event, tick.ts_recv, modify_reason="OCO_REDUCE"
                    )
                )
        if open_qty == 0 and parent.working:
            events.append(
                self._cancelled(
                    parent, f"BRACKET_EXITED: {filled_child.order_id}", tick.ts_event, tick.ts_recv
                )
            )
        return events

    # --- bookkeeping ----------------------------------------------------------------------

    def _working(
        self,
        order_id: str,
        owner: WorkingOrder | SubmitOrder,
        ts: datetime,
        session_end: datetime,
        **terms: Any,
    ) -> WorkingOrder:
        """A new order ``order_id`` of ``owner``'s account, strategy, token and run with
        ``terms``, accepted at ``ts``, eligible once its latency has passed."""
        return WorkingOrder(
            order_id=order_id,
            account=owner.account,
            strategy=owner.strategy,
            token=owner.token,
            run_id=owner.run_id,
            accepted_at=ts,
            eligible_after=ts + self.config.latency.delay(order_id),
            session_end=session_end,
            **terms,
        )

    def _next_priority(self) -> int:
        self.state.next_priority += 1
        return self.state.next_priority

    def _add(self, order: WorkingOrder) -> None:
        self.state.orders[order.order_id] = order
        self.state.working.setdefault(order.token, []).append(order.order_id)

    def _remove(self, order: WorkingOrder) -> None:
        ids = self.state.working.get(order.token, [])
        if order.order_id in ids:
            ids.remove(order.order_id)
        if not ids:
            self.state.working.pop(order.token, None)

    def _requeue(self, order: WorkingOrder) -> None:
        self._remove(order)
        order.priority = self._next_priority()
        self.state.working.setdefault(order.token, []).append(order.order_id)

    def _cancelled(
        self, o: WorkingOrder, why: str, ts_event: datetime, ts_recv: datetime
    ) -> OrderCancelled:
        o.status = "CANCELLED"
        self._remove(o)
        return _order_event(
            OrderCancelled, o, ts_event, ts_recv, cancel_reason=why, filled_qty=o.filled_qty
        )

    def _command_rejected(
        self, cmd: CancelOrder | ModifyOrder, command: Literal["CANCEL", "MODIFY"], why: str
    ) -> OrderCommandRejected:
        known = self.state.orders.get(cmd.order_id)
        return OrderCommandRejected(
            ts_event=cmd.ts_event,
            ts_recv=cmd.ts_recv,
            order_id=cmd.order_id,
            account=cmd.account,
            strategy=known.strategy if known else "",
            token=known.token if known else "",
            run_id=cmd.run_id,
            command=command,
            reject_reason=why,
        )
