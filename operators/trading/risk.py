"""The per-account risk engine: every order passes here, every refusal is an event.

Why one module (~700 lines): every rule of the risk engine in its documented order (below)
in one compiled class; that order is the contract, so it stays readable in one file.

``RiskLogic`` holds a small ``RiskState`` (snapshot with ``snapshot()``, restore by passing
it back) and reacts to five inputs, all in event time:

- ``on_order(intent)``: checks in this order, first failure wins —
  ``INVALID_ORDER`` (bad qty/lot/stop/account), ``KILL_SWITCH`` (after the kill switch,
  nothing is approved), then *reducing* orders (closing part of the strategy's position)
  are approved as they are; for the rest: ``DAILY_LOSS_LIMIT`` (halted until the next
  session), ``GLOBAL_PAUSE`` (every strategy cooling down), ``COOLDOWN`` (this strategy),
  sizing (``MAX_LOSS_PER_TRADE`` when one lot's stop loss exceeds the per-trade budget,
  ``VOLATILITY_SIZE`` when the ATR sizing gives 0 lots; otherwise qty is cut to the
  smaller of the request, the stop-based lots and the ATR-based lots × adaptive
  multiplier), ``MAX_POSITION_LOTS``, ``MAX_GROSS_EXPOSURE``, ``MAX_NET_DELTA``.
  Limits count open (approved, unfilled) orders as well as positions.
- ``on_fill(fill)``: after the portfolio booked the fill (``operators.trading.portfolio``, the one
  position book, FIFO): the book's realised pnl net of costs moves the session's realised
  pnl; a round trip ending flat (or flipping) feeds the consecutive-loss cooldown.
- ``on_tick(tick)`` / ``on_mark(...)``: marks for unrealised pnl, spread and stall checks.
- ``on_risk_event(ev)``: an incoming ``FEED_STALLED`` trips the kill switch.
- ``on_adaptive(ev)``: the adaptive layer's size multiplier per strategy.

Positions (qty per strategy and instrument, for limits, unrealised pnl and the kill switch)
are read from the portfolio; risk keeps per (strategy, instrument) only what the book had
realised (net of costs) when risk last saw it and the round trip's pnl so far. Marks stay
risk's own (LTP). Unrealised pnl = cash + qty × mark − (realised − costs) of each position,
which equals average-cost accounting's at every step; only a position held across IST
midnight after a partial close at different prices gives the new session another base.

Session pnl = realised since the session's first event + unrealised of open positions;
session drawdown is measured from the session's peak equity (capital + session pnl).
Output events carry ``ts_recv == ts_event`` (the decision time) so replays are identical.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from mypy_extensions import mypyc_attr

from operators import _native
from operators.ai.adaptive import AdaptiveStateChanged
from operators.events import RiskEvent, RiskEventKind, Tick
from operators.market.sessions import IST, ist_date, session_open
from operators.trading.kill_switch import (
    FlattenAccount,
    drawdown_breach,
    kill_sequence,
    spread_breach,
    stall_breach,
)
from operators.trading.portfolio import PortfolioLogic
from operators.trading.portfolio import Position as BookPosition
from operators.trading.risk_limits import (
    FillReport,
    OrderApproved,
    OrderDenied,
    OrderIntent,
    RiskDecision,
    RiskLimits,
    record_trade_result,
    rupees,
    stop_lots,
    volatility_lots,
)

RiskOutput = OrderApproved | OrderDenied | RiskEvent | FlattenAccount
RISK_STATE_VERSION = 2
_NEVER = datetime.min.replace(tzinfo=UTC)
_FOREVER = datetime.max.replace(tzinfo=UTC)


def next_session_open(ts: datetime) -> datetime:
    """09:15 IST of the next weekday after ``ts``'s trading date (holidays not modelled)."""
    day = ist_date(ts) + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return session_open(day)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class Booking:
    """What risk remembers of one strategy's position in one instrument (the position itself
    is the portfolio's): the book's realised − costs when risk last saw it, and the round
    trip's pnl so far, paise."""

    strategy: str
    instrument: str
    booked: int = 0
    trade_pnl: int = 0


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class PendingOrder:
    """An approved order not yet completely filled, cancelled or expired."""

    strategy: str
    instrument: str
    remaining: int
    price: int


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class StrategyRisk:
    losses: int = 0
    paused_until: datetime | None = None
    multiplier: float = 1.0


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class RiskState:
    """Everything the engine remembers; plain data, picklable, deep-copied on snapshot."""

    version: int = RISK_STATE_VERSION
    clock: datetime | None = None
    session_date: date | None = None
    session_realised: int = 0
    peak_equity: int = 0
    bookings: dict[str, Booking] = field(default_factory=dict)
    pending: dict[str, PendingOrder] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)
    deltas: dict[str, float] = field(default_factory=dict)
    lot_sizes: dict[str, int] = field(default_factory=dict)
    strategies: dict[str, StrategyRisk] = field(default_factory=dict)
    halted_until: datetime | None = None
    halt_reason: str = ""
    global_pause_until: datetime | None = None
    killed: bool = False
    kill_reason: str = ""
    last_tick: datetime | None = None


R = TypeVar("R", bound=RiskDecision)


def _decision(cls: type[R], intent: OrderIntent, qty: int, **extra: Any) -> R:
    """Risk's answer ``cls`` about ``intent`` for ``qty`` units (stamped at the intent's time)."""
    return cls(
        ts_event=intent.ts_event,
        ts_recv=intent.ts_event,
        account=intent.account,
        strategy=intent.strategy,
        order_id=intent.order_id,
        instrument=intent.instrument,
        side=intent.side,
        qty=qty,
        **extra,
    )


def _pos_key(strategy: str, instrument: str) -> str:
    return f"{strategy}\x1f{instrument}"


def _certainly_no_stall(limit_s: float) -> timedelta:
    """The longest gap whose ``total_seconds()`` is certainly not above ``limit_s``."""
    try:
        safe = timedelta(microseconds=math.floor(limit_s * 1e6))
    except (OverflowError, ValueError):
        return timedelta.max
    while safe > timedelta(0) and safe.total_seconds() > limit_s:
        safe -= timedelta(microseconds=1)
    return safe


def _plus(ts: datetime, span: timedelta) -> datetime:
    try:
        return ts + span
    except OverflowError:
        return _FOREVER


@mypyc_attr(allow_interpreted_subclasses=True)
class RiskLogic:
    """Risk engine of one account (see module docstring for the rules and their order)."""

    def __init__(
        self,
        limits: RiskLimits,
        state: RiskState | None = None,
        book: PortfolioLogic | None = None,
    ) -> None:
        """``book``: the account's portfolio, the one position book (the account stage
        passes its own; alone, risk gets an empty one, to be fed fills first)."""
        self.limits = limits
        self.state = state if state is not None else RiskState()
        self.book = book if book is not None else PortfolioLogic({})
        if self.state.version != RISK_STATE_VERSION:
            msg = f"risk state version {self.state.version} != {RISK_STATE_VERSION}"
            raise ValueError(msg)
        self._drop_derived()

    def _drop_derived(self) -> None:
        """Derived from the state, for the per-tick path; each is valid only for the state
        object it names, and dropped (its state set to None) wherever what it depends on
        changes. ``_quiet_until``: before it, ``on_clock`` has nothing to do (no timer due,
        same IST day, no stall possible); ``_exposed``: instruments with an open position or
        a pending order."""
        self._stall_safe = _certainly_no_stall(self.limits.feed_stall_seconds)
        self._quiet_state: RiskState | None = None
        self._quiet_until = _NEVER
        self._exposed_state: RiskState | None = None
        self._exposed: frozenset[str] = frozenset()

    def __setstate__(self, attrs: dict[str, Any]) -> None:
        """Unpickled (or deep-copied) engines rebuild their derived values on first use, so
        snapshots taken before those values existed restore too."""
        _native.restore(self, attrs)
        self._drop_derived()

    def snapshot(self) -> RiskState:
        return copy.deepcopy(self.state)

    # ------------------------------------------------------------------ derived values
    def positions(self) -> list[BookPosition]:
        """This account's positions in the portfolio, open or flat, by (strategy, token)."""
        acct = self.limits.account
        found = [p for p in self.book.state.positions.values() if p.account == acct]
        found.sort(key=lambda p: (p.strategy, p.token))
        return found

    def unrealised(self) -> int:
        """Σ qty × mark − open cost, with open cost = (realised − costs) − cash: the same
        integer whether the lots are matched FIFO (the book) or at average cost."""
        s = self.state
        marks = s.marks
        acct = self.limits.account
        total = 0
        for p in self.book.state.positions.values():
            if p.qty != 0 and p.account == acct and p.token in marks:
                total += p.qty * marks[p.token] + p.cash - p.realised + p.costs
        return total

    def session_pnl(self) -> int:
        return self.state.session_realised + self.unrealised()

    def equity(self) -> int:
        return self.limits.capital + self.session_pnl()

    def position_qty(self, instrument: str) -> int:
        """Net units held in ``instrument`` across strategies."""
        return sum(p.qty for p in self.positions() if p.token == instrument)

    def _exposure_qty(self) -> dict[str, int]:
        """Net units per instrument counting positions and open orders."""
        out: dict[str, int] = {}
        acct = self.limits.account
        for p in self.book.state.positions.values():  # the order they opened: float sums below
            if p.account == acct:
                out[p.token] = out.get(p.token, 0) + p.qty
        for o in self.state.pending.values():
            out[o.instrument] = out.get(o.instrument, 0) + o.remaining
        return out

    def _strategy(self, name: str) -> StrategyRisk:
        return self.state.strategies.setdefault(name, StrategyRisk())

    def is_paused(self, strategy: str) -> bool:
        sr = self.state.strategies.get(strategy)
        return sr is not None and sr.paused_until is not None

    # ------------------------------------------------------------------ clock
    def on_clock(self, ts: datetime) -> list[RiskOutput]:
        """Advance event time (heartbeat / watermark): releases, session roll, stall check."""
        s = self.state
        clock = s.clock
        now = ts if clock is None or ts > clock else clock
        s.clock = now
        if now < self._quiet_until and self._quiet_state is s:
            return []
        return self._advance_and_settle(now)

    def _advance_and_settle(self, now: datetime) -> list[RiskOutput]:
        out = self._advance(now)
        self._quiet_until = self._quiet_bound(now)
        self._quiet_state = self.state
        return out

    def _quiet_bound(self, now: datetime) -> datetime:
        """An instant before which ``_advance`` would change nothing and return nothing, as
        long as no timer is set, the kill switch not reset and ``last_tick`` only grows:
        the earliest timer, the next IST midnight, the earliest possible stall."""
        s = self.state
        day = ist_date(now) + timedelta(days=1)
        bound = datetime.combine(day, time(0), IST).astimezone(UTC)
        for sr in s.strategies.values():
            if sr.paused_until is not None and sr.paused_until < bound:
                bound = sr.paused_until
        for timer in (s.global_pause_until, s.halted_until):
            if timer is not None and timer < bound:
                bound = timer
        if not s.killed and s.last_tick is not None:
            bound = min(bound, _plus(s.last_tick, self._stall_safe))
        return bound

    def _advance(self, now: datetime) -> list[RiskOutput]:
        s = self.state
        timed: list[tuple[datetime, int, str, RiskEvent]] = []
        due = [sr for sr in s.strategies.values() if sr.paused_until is not None]
        for name, sr in sorted(s.strategies.items()) if due else ():
            if sr.paused_until is not None and sr.paused_until <= now:
                t = sr.paused_until
                ev = self._event(t, "RESUME", f"COOLDOWN_END: strategy={name}", name)
                timed.append((t, 0, name, ev))
                sr.paused_until = None
        if s.global_pause_until is not None and s.global_pause_until <= now:
            t = s.global_pause_until
            timed.append((t, 1, "", self._event(t, "RESUME", "GLOBAL_PAUSE_END")))
            s.global_pause_until = None
        if s.halted_until is not None and s.halted_until <= now:
            t = s.halted_until
            timed.append((t, 2, "", self._event(t, "RESUME", "DAILY_LOSS_HALT_END")))
            s.halted_until = None
            s.halt_reason = ""
        timed.sort(key=lambda x: (x[0], x[1], x[2]))
        out: list[RiskOutput] = [x[3] for x in timed]
        day = ist_date(now)
        if s.session_date != day:
            s.session_date = day
            s.session_realised = 0
            s.peak_equity = self.limits.capital + self.unrealised()
        if not s.killed:
            reason = stall_breach(s.last_tick, now, self.limits.feed_stall_seconds)
            if reason is not None:
                out.extend(self._kill(now, reason))
        return out

    def _event(
        self, ts: datetime, kind: RiskEventKind, detail: str, strategy: str = ""
    ) -> RiskEvent:
        """A risk event of this account decided at ``ts`` (``ts_recv == ts_event``)."""
        return RiskEvent(
            ts_event=ts,
            ts_recv=ts,
            account=self.limits.account,
            kind=kind,
            detail=detail,
            strategy=strategy,
        )

    # ------------------------------------------------------------------ kill switch
    def _kill(self, ts: datetime, reason: str) -> list[RiskOutput]:
        s = self.state
        self._quiet_state = self._exposed_state = None
        s.killed = True
        s.kill_reason = reason
        open_ids = list(s.pending)
        positions = [(p.strategy, p.token, p.qty) for p in self.positions() if p.qty != 0]
        s.pending.clear()
        return list(kill_sequence(self.limits.account, ts, reason, open_ids, positions))

    def reset_kill_switch(self, ts: datetime) -> list[RiskOutput]:
        """Manual re-arm after a kill: trading may resume (feed watchdog restarts too)."""
        out = self.on_clock(ts)
        s = self.state
        if s.killed:
            self._quiet_state = None
            s.killed = False
            s.kill_reason = ""
            s.last_tick = None
            out.append(self._event(ts, "RESUME", "KILL_SWITCH_RESET"))
        return out

    def operator_reset(self, ts: datetime) -> list[RiskOutput]:
        """An operator's explicit reset (``scalpflow risk reset``): re-arm the kill switch,
        lift a daily-loss halt, and measure the session drawdown from the equity now (else
        the drawdown that tripped the switch trips it again on the next tick). The daily-loss
        rule itself stays: a day still beyond its limit halts again at its next check."""
        out = self.reset_kill_switch(ts)
        s = self.state
        if s.halted_until is not None:
            s.halted_until = None
            s.halt_reason = ""
            out.append(self._event(ts, "RESUME", "DAILY_LOSS_HALT_RESET"))
        self._quiet_state = self._exposed_state = None
        s.peak_equity = self.equity()
        return out

    def _check_pnl(self, ts: datetime) -> list[RiskOutput]:
        """Drawdown kill switch first, then the daily-loss halt."""
        s = self.state
        equity = self.equity()
        s.peak_equity = max(s.peak_equity, equity)
        if s.killed:
            return []
        reason = drawdown_breach(s.peak_equity, equity, self.limits.kill_drawdown_pct)
        if reason is not None:
            return self._kill(ts, reason)
        pnl = equity - self.limits.capital
        if s.halted_until is None and pnl <= -self.limits.daily_loss_limit:
            until = next_session_open(ts)
            self._quiet_state = None
            s.halted_until = until
            s.halt_reason = (
                f"DAILY_LOSS_LIMIT: limit={rupees(self.limits.daily_loss_limit)}, "
                f"pnl={rupees(pnl)}, until={until.isoformat()}"
            )
            return [self._event(ts, "HALT", s.halt_reason)]
        return []

    # ------------------------------------------------------------------ orders
    def _deny(self, intent: OrderIntent, reason: str) -> OrderDenied:
        return _decision(OrderDenied, intent, intent.qty, reason=reason)

    def _approve(self, intent: OrderIntent, qty: int, reason: str) -> OrderApproved:
        signed = qty if intent.side == "BUY" else -qty
        self._exposed_state = None
        self.state.pending[intent.order_id] = PendingOrder(
            strategy=intent.strategy,
            instrument=intent.instrument,
            remaining=signed,
            price=intent.price,
        )
        return _decision(
            OrderApproved,
            intent,
            qty,
            requested_qty=intent.qty,
            price=intent.price,
            reason=reason,
        )

    def _invalid(self, intent: OrderIntent) -> str | None:
        if intent.account != self.limits.account:
            return f"INVALID_ORDER: account={intent.account}, expected={self.limits.account}"
        if intent.lot_size <= 0 or intent.qty <= 0 or intent.qty % intent.lot_size != 0:
            return f"INVALID_ORDER: qty={intent.qty}, lot_size={intent.lot_size}"
        if intent.price <= 0:
            return f"INVALID_ORDER: price={intent.price}"
        if intent.order_id in self.state.pending:
            return f"INVALID_ORDER: duplicate order_id={intent.order_id}"
        return None

    def _reducing(self, intent: OrderIntent) -> bool:
        """True when the order only closes (part of) the strategy's own position."""
        s = self.state
        pos = self.book.position(self.limits.account, intent.strategy, intent.instrument)
        if pos is None or pos.qty == 0 or (pos.qty > 0) == (intent.side == "BUY"):
            return False
        already = sum(
            abs(o.remaining)
            for o in s.pending.values()
            if o.strategy == intent.strategy
            and o.instrument == intent.instrument
            and (o.remaining > 0) != (pos.qty > 0)
        )
        return intent.qty <= abs(pos.qty) - already

    def on_order(self, intent: OrderIntent) -> list[RiskOutput]:
        """Approve (possibly resized) or deny one order intent."""
        out = self.on_clock(intent.ts_event)
        out.append(self._decide(intent))
        return out

    def _decide(self, intent: OrderIntent) -> OrderApproved | OrderDenied:
        s = self.state
        lim = self.limits
        invalid = self._invalid(intent)
        if invalid is not None:
            return self._deny(intent, invalid)
        sr = self._strategy(intent.strategy)
        s.lot_sizes[intent.instrument] = intent.lot_size
        if intent.delta is not None:
            s.deltas[intent.instrument] = intent.delta
        if s.killed:
            return self._deny(intent, f"KILL_SWITCH: {s.kill_reason}")
        if self._reducing(intent):
            return self._approve(intent, intent.qty, "REDUCING")
        if s.halted_until is not None:
            return self._deny(intent, s.halt_reason)
        if s.global_pause_until is not None:
            return self._deny(intent, f"GLOBAL_PAUSE: until={s.global_pause_until.isoformat()}")
        if sr.paused_until is not None:
            return self._deny(
                intent,
                f"COOLDOWN: strategy={intent.strategy}, until={sr.paused_until.isoformat()}",
            )
        if intent.stop_distance <= 0:
            return self._deny(intent, f"INVALID_ORDER: stop_distance={intent.stop_distance}")

        # --- sizing
        lot = intent.lot_size
        budget = lim.risk_per_trade
        requested_lots = intent.qty // lot
        by_stop = stop_lots(budget, intent.stop_distance, lot)
        if by_stop == 0:
            return self._deny(
                intent,
                f"MAX_LOSS_PER_TRADE: limit={rupees(budget)}, "
                f"risk={rupees(intent.stop_distance * lot)}",
            )
        lots = min(requested_lots, by_stop)
        by_vol: int | None = None
        if lim.volatility_sizing and intent.atr is not None and intent.atr > 0:
            by_vol = volatility_lots(budget, intent.atr, lot, intent.delta, sr.multiplier)
            if by_vol == 0:
                abs_delta = 1.0 if intent.delta is None else min(abs(intent.delta), 1.0)
                per_lot = intent.atr * 100 * lot * abs_delta
                return self._deny(
                    intent,
                    f"VOLATILITY_SIZE: budget={rupees(budget)}, "
                    f"per_lot_risk={rupees(per_lot)}, multiplier={sr.multiplier:.4f}",
                )
            lots = min(lots, by_vol)
        qty = lots * lot
        signed = qty if intent.side == "BUY" else -qty

        # --- static limits on the projected book (positions + open orders + this order)
        exposure = self._exposure_qty()
        before = exposure.get(intent.instrument, 0)
        after = before + signed
        if abs(after) > lim.max_position_lots * lot and abs(after) > abs(before):
            return self._deny(
                intent,
                f"MAX_POSITION_LOTS: limit={lim.max_position_lots}, lots={abs(after) // lot}",
            )
        gross = 0
        for instrument, q in exposure.items():
            if instrument != intent.instrument:
                gross += abs(q) * s.marks.get(instrument, self._pending_price(instrument))
        price_now = s.marks.get(intent.instrument, intent.price)
        gross_before = gross + abs(before) * price_now
        gross += abs(after) * price_now
        if gross > lim.gross_exposure_limit and gross > gross_before:
            return self._deny(
                intent,
                f"MAX_GROSS_EXPOSURE: limit={rupees(lim.gross_exposure_limit)}, "
                f"exposure={rupees(gross)}",
            )
        delta_before = sum(q * s.deltas.get(i, 1.0) for i, q in exposure.items())
        delta_after = delta_before + signed * s.deltas.get(intent.instrument, 1.0)
        if abs(delta_after) > lim.max_net_delta and abs(delta_after) > abs(delta_before):
            return self._deny(
                intent,
                f"MAX_NET_DELTA: limit={lim.max_net_delta:.2f}, delta={delta_after:.2f}",
            )
        reason = ""
        if qty != intent.qty:
            vol_txt = "none" if by_vol is None else str(by_vol)
            reason = (
                f"RESIZED: requested_lots={requested_lots}, approved_lots={lots}, "
                f"stop_lots={by_stop}, vol_lots={vol_txt}"
            )
        return self._approve(intent, qty, reason)

    def _pending_price(self, instrument: str) -> int:
        for o in self.state.pending.values():
            if o.instrument == instrument:
                return o.price
        return 0

    def on_order_closed(self, order_id: str, ts: datetime) -> list[RiskOutput]:
        """An order was cancelled, expired or rejected downstream: it no longer counts."""
        out = self.on_clock(ts)
        self._exposed_state = None
        self.state.pending.pop(order_id, None)
        return out

    # ------------------------------------------------------------------ fills
    def on_fill(self, fill: FillReport) -> list[RiskOutput]:
        """A fill the portfolio has booked: take its realised pnl net of costs; a round trip
        closing flat may start a cooldown; check pnl."""
        out = self.on_clock(fill.ts_event)
        s = self.state
        self._exposed_state = None
        s.lot_sizes.setdefault(fill.instrument, fill.lot_size)
        s.marks.setdefault(fill.instrument, fill.price)
        pending = s.pending.get(fill.order_id)
        if pending is not None:
            remaining = pending.remaining - fill.signed_qty
            if remaining == 0 or (remaining > 0) != (pending.remaining > 0):
                del s.pending[fill.order_id]
            else:
                pending.remaining = remaining
        key = _pos_key(fill.strategy, fill.instrument)
        booking = s.bookings.get(key)
        if booking is None:
            booking = s.bookings[key] = Booking(fill.strategy, fill.instrument)
        pos = self.book.position(fill.account, fill.strategy, fill.instrument)
        closed_pnl = self._take_fill(booking, pos, fill.signed_qty)
        sr = self._strategy(fill.strategy)
        if closed_pnl is not None:
            out.extend(self._trade_closed(fill.ts_event, fill.strategy, sr, closed_pnl))
        out.extend(self._check_pnl(fill.ts_event))
        return out

    def _take_fill(self, booking: Booking, pos: BookPosition | None, signed: int) -> int | None:
        """Move the book's realised − costs since risk last saw it into the session and the
        round trip; return the trip's net pnl when this fill ends it (flat, or flipped: the
        flip's whole costs stay on the closing trip)."""
        booked = booking.booked if pos is None else pos.realised - pos.costs
        change = booked - booking.booked
        booking.booked = booked
        self.state.session_realised += change
        booking.trade_pnl += change
        qty = 0 if pos is None else pos.qty
        before = qty - signed
        if before == 0 or (qty != 0 and (qty > 0) == (before > 0)):
            return None
        closed = booking.trade_pnl
        booking.trade_pnl = 0
        return closed

    def _trade_closed(
        self, ts: datetime, strategy: str, sr: StrategyRisk, pnl: int
    ) -> list[RiskOutput]:
        lim = self.limits
        sr.losses, until = record_trade_result(
            sr.losses, pnl, ts, lim.consecutive_losses, lim.cooldown
        )
        if until is None:
            return []
        self._quiet_state = None
        sr.paused_until = until
        detail = f"CONSECUTIVE_LOSSES: losses={lim.consecutive_losses}, until={until.isoformat()}"
        out: list[RiskOutput] = [self._event(ts, "COOLDOWN", detail, strategy)]
        s = self.state
        known = list(lim.strategies) if lim.strategies else sorted(s.strategies)
        paused = [s.strategies[n].paused_until for n in known if n in s.strategies]
        if (
            s.global_pause_until is None
            and len(paused) == len(known)
            and all(p is not None for p in paused)
        ):
            gp = min(p for p in paused if p is not None)
            s.global_pause_until = gp
            detail = f"GLOBAL_PAUSE: strategies={','.join(known)}, until={gp.isoformat()}"
            out.append(self._event(ts, "HALT", detail))
        return out

    # ------------------------------------------------------------------ market data
    def on_tick(self, tick: Tick) -> list[RiskOutput]:
        """Mark-to-market, spread check on instruments we hold or have orders in, stall clock."""
        ts = tick.ts_event
        s = self.state
        clock = s.clock  # on_clock(ts), its quiet case inline
        now = ts if clock is None or ts > clock else clock
        s.clock = now
        if now < self._quiet_until and self._quiet_state is s:
            out: list[RiskOutput] = []
        else:
            out = self._advance_and_settle(now)
        last = s.last_tick
        if last is None or ts > last:
            if last is None:
                self._quiet_state = None  # the stall watch starts
            s.last_tick = ts
        if tick.ltp > 0:
            s.marks[tick.token] = tick.ltp
        book = self.book.state.positions
        if s.killed or not (book or s.pending):
            return out
        if self._exposed_state is not s:
            acct = self.limits.account
            self._exposed = frozenset(
                [p.token for p in book.values() if p.qty != 0 and p.account == acct]
                + [o.instrument for o in s.pending.values()]
            )
            self._exposed_state = s
        if tick.token in self._exposed:
            reason = spread_breach(tick, self.limits.max_spread_pct)
            if reason is not None:
                out.extend(self._kill(tick.ts_event, reason))
                return out
            out.extend(self._check_pnl(tick.ts_event))
        return out

    def on_mark(
        self, ts: datetime, instrument: str, price: int, delta: float | None = None
    ) -> list[RiskOutput]:
        """A mark price (paise) and optionally a fresh delta, e.g. from OptionAnalytics."""
        out = self.on_clock(ts)
        s = self.state
        if price > 0:
            s.marks[instrument] = price
        if delta is not None:
            s.deltas[instrument] = delta
        out.extend(self._check_pnl(ts))
        return out

    def on_risk_event(self, ev: RiskEvent) -> list[RiskOutput]:
        """A FEED_STALLED from the feed watchdog trips the kill switch; others only tick time."""
        out = self.on_clock(ev.ts_event)
        if ev.kind == "FEED_STALLED" and not self.state.killed:
            out.extend(self._kill(ev.ts_event, f"FEED_STALLED: {ev.detail}"))
        return out

    def on_adaptive(self, ev: AdaptiveStateChanged) -> list[RiskOutput]:
        """Take the adaptive layer's size multiplier for a strategy of this account."""
        out = self.on_clock(ev.ts_event)
        if ev.account == self.limits.account:
            self._strategy(ev.strategy).multiplier = ev.size_multiplier
        return out


_native.picklable(Booking, PendingOrder, StrategyRisk, RiskState, RiskLogic)
