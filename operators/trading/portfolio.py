"""Positions, P&L and round-trip trades per (account, strategy, instrument), from fills.

Accounting rules, chosen so money stays exact (integer paise):
- realised P&L matches exits against entries first-in first-out, so it is a whole number of
  paise; ``avg_price`` is the average of the open FIFO lots (a ``Decimal``, for display);
- unrealised P&L marks the open lots to the mid of the last tick (a half-paisa at worst, so a
  ``Decimal``; before any tick, to the last fill price);
- ``net = realised + unrealised − costs``, where costs are every fill's statutory charges;
- a round trip runs from flat to flat (a fill that flips the position closes one trip and
  opens the next; its costs are split in proportion, rounding down on the closing part);
  ``TradeClosed`` reports it with average entry/exit prices and the entry and exit reasons.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from operators.events import Event, Instrument, OptionAnalytics, Tick
from operators.trading.orders import FillEvent, SubmitOrder, make_order_id

STATE_VERSION = 1
_AVG_QUANTUM = Decimal("0.0001")


class PositionChanged(Event, frozen=True, kw_only=True):
    """The position after a fill or a mark: signed qty, average price and P&L, all paise."""

    account: str
    strategy: str
    token: str
    underlying: str = ""
    qty: int
    avg_price: Decimal
    realised: int
    unrealised: Decimal
    costs: int
    net: Decimal
    mark: Decimal
    seq: int
    run_id: str = ""


class TradeClosed(Event, frozen=True, kw_only=True):
    """One round trip (flat → flat), ``ts_event`` = exit time; money in paise."""

    trade_id: str
    account: str
    strategy: str
    token: str
    underlying: str = ""
    direction: Literal["LONG", "SHORT"]
    qty: int
    entry_ts: datetime
    exit_ts: datetime
    entry_price: Decimal
    exit_price: Decimal
    gross: int
    costs: int
    net: int
    entry_reason: str
    exit_reason: str
    run_id: str = ""


class Position(msgspec.Struct, kw_only=True):
    """Mutable state of one position, including the round trip it is in."""

    account: str
    strategy: str
    token: str
    underlying: str = ""
    run_id: str = ""
    qty: int = 0
    lots: list[list[int]] = msgspec.field(default_factory=list)  # FIFO [units, price]
    realised: int = 0
    costs: int = 0
    cash: int = 0  # −Σ signed fill value − costs: what the position cost in money
    mark2: int = 0  # twice the mark price (mid can be a half paisa); 0 = none yet
    seq: int = 0
    trips: int = 0
    trip_direction: int = 0
    trip_entry_ts: datetime | None = None
    trip_entry_reason: str = ""
    trip_entry_qty: int = 0
    trip_entry_value: int = 0
    trip_exit_qty: int = 0
    trip_exit_value: int = 0
    trip_costs: int = 0

    @property
    def avg_price(self) -> Decimal:
        units = sum(q for q, _ in self.lots)
        if not units:
            return Decimal(0)
        value = sum(q * p for q, p in self.lots)
        return (Decimal(value) / units).quantize(_AVG_QUANTUM)

    @property
    def unrealised(self) -> Decimal:
        sign = 1 if self.qty > 0 else -1
        twice = sum(sign * (self.mark2 - 2 * p) * q for q, p in self.lots)
        return Decimal(twice) / 2

    @property
    def market_value(self) -> Decimal:
        """Signed qty × mark, paise."""
        return Decimal(self.qty * self.mark2) / 2


class PortfolioState(msgspec.Struct, kw_only=True):
    version: int = STATE_VERSION
    positions: dict[str, Position] = msgspec.field(default_factory=dict)
    deltas: dict[str, float] = msgspec.field(default_factory=dict)


def position_key(account: str, strategy: str, token: str) -> str:
    return f"{account}|{strategy}|{token}"


def _avg(value: int, qty: int) -> Decimal:
    return (Decimal(value) / qty).quantize(_AVG_QUANTUM) if qty else Decimal(0)


class PortfolioLogic:
    """Positions and P&L from fills; marks from ticks; deltas from option analytics."""

    def __init__(
        self, instruments: Mapping[str, Instrument], state: PortfolioState | None = None
    ) -> None:
        self.instruments = dict(instruments)
        self.state = state if state is not None else PortfolioState()
        if self.state.version != STATE_VERSION:
            msg = f"portfolio state version {self.state.version} != {STATE_VERSION}"
            raise ValueError(msg)
        self._drop_index()

    def _drop_index(self) -> None:
        """Tokens that have a position (open or flat), derived from ``state.positions`` and
        tagged with the dict (and its size) they were built from: positions are only ever
        added, so the same dict with as many entries has the same tokens."""
        self._tokens: tuple[dict[str, Position] | None, int, frozenset[str]] = (
            None,
            0,
            frozenset(),
        )

    def __setstate__(self, attrs: dict[str, Any]) -> None:
        """Unpickled (or deep-copied) logic rebuilds the index on first use, so snapshots
        taken before it existed restore too."""
        self.__dict__.update(attrs)
        self._drop_index()

    def snapshot(self) -> PortfolioState:
        return copy.deepcopy(self.state)

    def position(self, account: str, strategy: str, token: str) -> Position | None:
        return self.state.positions.get(position_key(account, strategy, token))

    # --- inputs ---------------------------------------------------------------------------

    def on_fill(self, fill: FillEvent) -> list[PositionChanged | TradeClosed]:
        key = position_key(fill.account, fill.strategy, fill.token)
        pos = self.state.positions.get(key)
        if pos is None:
            inst = self.instruments.get(fill.token)
            pos = Position(
                account=fill.account,
                strategy=fill.strategy,
                token=fill.token,
                underlying=inst.underlying if inst else "",
                run_id=fill.run_id,
            )
            self.state.positions[key] = pos
        sign = 1 if fill.side == "BUY" else -1
        qty, price, costs = fill.fill_qty, fill.fill_price, fill.costs.total
        pos.cash -= sign * qty * price + costs
        pos.costs += costs
        if pos.mark2 == 0:
            pos.mark2 = 2 * price
        out: list[PositionChanged | TradeClosed] = []
        closing = min(qty, abs(pos.qty)) if pos.qty * sign < 0 else 0
        close_costs = costs if closing == qty else costs * closing // qty
        if closing:
            pos.realised += self._close_lots(pos, closing, price)
            pos.qty += sign * closing
            pos.trip_exit_qty += closing
            pos.trip_exit_value += closing * price
            pos.trip_costs += close_costs
            if pos.qty == 0:
                out.append(self._close_trip(pos, fill, fill.reason))
        if qty > closing:
            opening = qty - closing
            if pos.qty == 0:
                pos.trip_direction = sign
                pos.trip_entry_ts = fill.ts_event
                pos.trip_entry_reason = fill.reason
            pos.lots.append([opening, price])
            pos.qty += sign * opening
            pos.trip_entry_qty += opening
            pos.trip_entry_value += opening * price
            pos.trip_costs += costs - close_costs
        out.append(self._changed(pos, fill.ts_event, fill.ts_recv))
        return out

    def on_tick(self, tick: Tick) -> None:
        """Update the mark (mid, or LTP without a book) of every position in this token."""
        positions = self.state.positions
        if not positions:
            return
        source, size, tokens = self._tokens
        if source is not positions or size != len(positions):
            tokens = frozenset(p.token for p in positions.values())
            self._tokens = (positions, len(positions), tokens)
        if tick.token not in tokens:
            return
        mark2 = tick.bid + tick.ask if tick.has_book else 2 * tick.ltp
        if mark2 <= 0:
            return
        for pos in positions.values():
            if pos.token == tick.token:
                pos.mark2 = mark2

    def on_analytics(self, analytics: OptionAnalytics) -> None:
        if analytics.delta is not None:
            self.state.deltas[analytics.token] = analytics.delta

    def set_delta(self, token: str, delta: float) -> None:
        self.state.deltas[token] = delta

    # --- outputs --------------------------------------------------------------------------

    def mark_to_market(self, ts: datetime) -> list[PositionChanged]:
        """A PositionChanged per open position at its current mark (for periodic journaling)."""
        return [
            self._changed(pos, ts, ts)
            for _, pos in sorted(self.state.positions.items())
            if pos.qty != 0
        ]

    def net_delta(self, underlying: str) -> float | None:
        """Σ qty × delta over open positions on ``underlying``; None if a delta is missing."""
        total = 0.0
        for pos in self.state.positions.values():
            if pos.qty == 0 or pos.underlying != underlying:
                continue
            delta = self.state.deltas.get(pos.token)
            if delta is None:
                inst = self.instruments.get(pos.token)
                if inst is None or inst.kind not in ("FUT", "INDEX"):
                    return None
                delta = 1.0
            total += pos.qty * delta
        return total

    def square_off(
        self,
        ts: datetime,
        *,
        reason: str = "SQUARE_OFF",
        account: str | None = None,
        strategy: str | None = None,
        run_id: str | None = None,
    ) -> list[SubmitOrder]:
        """Market orders that flatten every open position (optionally one account/strategy)."""
        orders: list[SubmitOrder] = []
        for seq, (_, pos) in enumerate(sorted(self.state.positions.items())):
            if pos.qty == 0 or account not in (None, pos.account):
                continue
            if strategy not in (None, pos.strategy):
                continue
            orders.append(
                SubmitOrder(
                    ts_event=ts,
                    ts_recv=ts,
                    order_id=make_order_id(
                        f"square-off:{pos.strategy}", pos.token, ts, seq, account=pos.account
                    ),
                    account=pos.account,
                    strategy=pos.strategy,
                    token=pos.token,
                    side="SELL" if pos.qty > 0 else "BUY",
                    order_type="MARKET",
                    qty=abs(pos.qty),
                    reason=reason,
                    run_id=pos.run_id if run_id is None else run_id,
                )
            )
        return orders

    def totals(self) -> tuple[int, int, Decimal]:
        """(realised, costs, unrealised) summed over every position, paise."""
        positions = list(self.state.positions.values())
        return (
            sum(p.realised for p in positions),
            sum(p.costs for p in positions),
            sum((p.unrealised for p in positions), Decimal(0)),
        )

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _close_lots(pos: Position, qty: int, price: int) -> int:
        """Consume ``qty`` units of FIFO lots at exit ``price``; return realised paise."""
        direction = 1 if pos.qty > 0 else -1
        pnl = 0
        while qty:
            lot = pos.lots[0]
            take = min(qty, lot[0])
            pnl += direction * (price - lot[1]) * take
            lot[0] -= take
            qty -= take
            if lot[0] == 0:
                pos.lots.pop(0)
        return pnl

    def _close_trip(self, pos: Position, fill: FillEvent, exit_reason: str) -> TradeClosed:
        pos.trips += 1
        entry_ts = pos.trip_entry_ts or fill.ts_event
        gross = pos.trip_direction * (pos.trip_exit_value - pos.trip_entry_value)
        key = f"{pos.account}|{pos.strategy}|{pos.token}|{entry_ts.isoformat()}|{pos.trips}"
        trade = TradeClosed(
            ts_event=fill.ts_event,
            ts_recv=fill.ts_recv,
            trade_id="t-" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest(),
            account=pos.account,
            strategy=pos.strategy,
            token=pos.token,
            underlying=pos.underlying,
            direction="LONG" if pos.trip_direction > 0 else "SHORT",
            qty=pos.trip_entry_qty,
            entry_ts=entry_ts,
            exit_ts=fill.ts_event,
            entry_price=_avg(pos.trip_entry_value, pos.trip_entry_qty),
            exit_price=_avg(pos.trip_exit_value, pos.trip_exit_qty),
            gross=gross,
            costs=pos.trip_costs,
            net=gross - pos.trip_costs,
            entry_reason=pos.trip_entry_reason,
            exit_reason=exit_reason,
            run_id=pos.run_id,
        )
        pos.trip_direction = 0
        pos.trip_entry_ts = None
        pos.trip_entry_reason = ""
        pos.trip_entry_qty = pos.trip_entry_value = 0
        pos.trip_exit_qty = pos.trip_exit_value = 0
        pos.trip_costs = 0
        return trade

    @staticmethod
    def _changed(pos: Position, ts_event: datetime, ts_recv: datetime) -> PositionChanged:
        pos.seq += 1
        unrealised = pos.unrealised if pos.qty else Decimal(0)
        return PositionChanged(
            ts_event=ts_event,
            ts_recv=ts_recv,
            account=pos.account,
            strategy=pos.strategy,
            token=pos.token,
            underlying=pos.underlying,
            qty=pos.qty,
            avg_price=pos.avg_price,
            realised=pos.realised,
            unrealised=unrealised,
            costs=pos.costs,
            net=pos.realised + unrealised - pos.costs,
            mark=Decimal(pos.mark2) / 2,
            seq=pos.seq,
            run_id=pos.run_id,
        )
