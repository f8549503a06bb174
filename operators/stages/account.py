"""Account stage: signals → risk → orders → execution → fills → portfolio, adaptive, kill switch.

Why one module (~650 lines): the account's order of work on a released item (below) is one
sequence; split, the order that keeps a replay byte-identical would span files.

One per account. Its inputs (strategy signals, option analytics, regimes, feed-health events
and every tick) come from different upstream steps and workers, so they are first put back in
``(ts_event, kind, ...)`` order behind a data-driven watermark (``operators.stages.reorder``): the
same Kafka range therefore gives the same fills whether it is traded live or replayed.

Order of work on one released item:
- tick: expire DAY orders, match working orders, update marks, risk (spread, drawdown, stall);
  once a minute of event time, a position snapshot;
- signal ENTRY: price from the option's last quote, size by risk (ATR × lot × |delta|, the
  adaptive multiplier), then a MARKET order; EXIT: cancel the strategy's working entry and
  sell what it holds;
- fills feed the portfolio, the risk engine and (per closed round trip) the adaptive layer,
  whose multiplier changes go back to risk;
- a kill switch cancels everything and squares off with market orders, bypassing risk.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mypy_extensions import mypyc_attr

from operators import _native
from operators.ai.adaptive import AdaptiveConfig, AdaptiveLogic, AdaptiveStateChanged, TradeResult
from operators.events import (
    Instrument,
    OptionAnalytics,
    RegimeClassified,
    RiskEvent,
    Side,
    SignalGenerated,
    Tick,
)
from operators.market.expiry import ExpiryCalendar
from operators.market.sessions import IST, ist_date, session_close
from operators.stages.reorder import ReorderBuffer, ReorderState
from operators.trading.cost_ledger import ContractNote, CostLedger
from operators.trading.execution import ExecutionConfig, ExecutionLogic
from operators.trading.feed_health import FeedHealthConfig, FeedHealthLogic, Silence, silent_feed
from operators.trading.kill_switch import FlattenAccount
from operators.trading.orders import (
    CancelOrder,
    FillEvent,
    OrderCancelled,
    OrderEvent,
    OrderExpired,
    OrderRejected,
    SubmitOrder,
    make_order_id,
)
from operators.trading.portfolio import PortfolioLogic, PositionChanged, TradeClosed
from operators.trading.risk import RiskLogic
from operators.trading.risk_limits import (
    OrderApproved,
    OrderDenied,
    OrderIntent,
    RiskLimits,
    fill_report,
)

AccountInput = Tick | SignalGenerated | OptionAnalytics | RegimeClassified | RiskEvent
AccountOutput = (
    OrderEvent
    | PositionChanged
    | TradeClosed
    | OrderApproved
    | OrderDenied
    | RiskEvent
    | AdaptiveStateChanged
    | ContractNote
)

# Tie-break among equal event times: feed health, regime and analytics first (they are
# context), then signals (decisions made at that instant), then ticks (what happens next).
_RANK = {RiskEvent: 0, RegimeClassified: 1, OptionAnalytics: 2, SignalGenerated: 3, Tick: 4}


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class AccountConfig:
    account: str
    run_id: str
    limits: RiskLimits
    adaptive: AdaptiveConfig
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    lateness: timedelta = timedelta(seconds=10)
    entry_lots: int = 10  # requested; risk sizing cuts it down
    mark_every: timedelta = timedelta(minutes=1)
    feed_health: FeedHealthConfig = field(default_factory=FeedHealthConfig)
    # Intraday only: from this IST time no new entries, and everything open is squared off
    # with market orders (brokers auto-square MIS positions around 15:15–15:20).
    square_off_at: time = time(15, 15)
    # Day-level cost ledger (operators.trading.cost_ledger): a ContractNote per trade date at its
    # session close (15:30 IST, or end of input), carrying the true-up against the per-fill
    # estimates. The flows turn it on; off, the stage's outputs are those the account
    # fingerprints (tests/operators/test_account_equivalence.py) pinned before it existed.
    contract_notes: bool = False


_NEVER = datetime.max.replace(tzinfo=UTC)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class AccountRuntime:
    """Everything one account remembers; deep-copied by the flow for recovery snapshots."""

    reorder: ReorderState
    execution: ExecutionLogic
    portfolio: PortfolioLogic
    risk: RiskLogic
    adaptive: AdaptiveLogic
    feed: FeedHealthLogic
    quotes: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # bid, ask, ltp
    deltas: dict[str, float] = field(default_factory=dict)
    working_entries: dict[tuple[str, str], str] = field(default_factory=dict)
    order_underlying: dict[str, str] = field(default_factory=dict)
    next_mark: datetime | None = None
    late_inputs: int = 0
    # the quiet spell (its start) the live heartbeat last reported as FEED_STALLED
    silence_reported: datetime | None = None
    squared_off_on: date | None = None
    ledger: CostLedger | None = None
    # earliest session close among the ledger's open days (a tick at or after it closes them)
    ledger_close_at: datetime = _NEVER
    disabled: dict[str, str] = field(default_factory=dict)  # strategy name -> why (failed)
    # the next expiry close (event time): a tick at or after it drops the expired, flat
    # instruments' per-token state (``AccountLogic._drop_expired``)
    expiry_sweep_at: datetime | None = None


def sort_key(item: AccountInput) -> tuple[Any, ...]:
    if type(item) is Tick:  # the common cases first (_RANK has exact types only)
        return (4, item.token, item.seq, item.ltp, item.cum_volume)
    if type(item) is OptionAnalytics:
        return (2, item.token)
    rank = _RANK[type(item)]
    if isinstance(item, Tick):
        return (rank, item.token, item.seq, item.ltp, item.cum_volume)
    if isinstance(item, SignalGenerated):
        return (rank, item.signal_id)
    if isinstance(item, OptionAnalytics):
        return (rank, item.token)
    if isinstance(item, RegimeClassified):
        return (rank, item.underlying)
    return (rank, item.kind, item.detail)


@mypyc_attr(allow_interpreted_subclasses=True)
class AccountLogic:
    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        config: AccountConfig,
        inputs: Sequence[Hashable] = (),
    ) -> None:
        """``inputs`` (the strategy stage's keys, i.e. underlyings): release by input
        watermarks (``on_item_from``, ``on_progress``; see ``operators.stages.reorder``)."""
        self.instruments = dict(instruments)
        self.expiries = ExpiryCalendar(self.instruments.values())
        self.config = config
        self.inputs = tuple(inputs)
        self.buffer: ReorderBuffer[AccountInput] = ReorderBuffer(config.lateness, self.inputs)
        # (day start, next day start, square-off instant) of the last IST day asked about
        self._cutoff_day: tuple[datetime, datetime, datetime] = (_EPOCH, _EPOCH, _EPOCH)

    def new_runtime(self) -> AccountRuntime:
        cfg = self.config
        costs = cfg.execution.costs
        ledger = None
        if cfg.contract_notes and costs is not None:
            symbols = {token: inst.symbol for token, inst in self.instruments.items()}
            ledger = CostLedger(costs.schedule, symbols)
        portfolio = PortfolioLogic(self.instruments)  # the one position book; risk reads it
        return AccountRuntime(
            reorder=ReorderState(),
            execution=ExecutionLogic(self.instruments, cfg.execution),
            portfolio=portfolio,
            risk=RiskLogic(cfg.limits, book=portfolio),
            adaptive=AdaptiveLogic(cfg.adaptive),
            feed=FeedHealthLogic(cfg.feed_health),
            ledger=ledger,
        )

    # ------------------------------------------------------------------------ entry points
    def on_item(self, rt: AccountRuntime, item: AccountInput) -> list[AccountOutput]:
        late_before = rt.reorder.late
        released = self.buffer.push(rt.reorder, item.ts_event, sort_key(item), item)
        return self._released(rt, released, late_before)

    def on_item_from(
        self, rt: AccountRuntime, source: Hashable, item: AccountInput
    ) -> list[AccountOutput]:
        """``on_item`` for an item of input ``source`` (input watermarks)."""
        late_before = rt.reorder.late
        # progress from the strategy stage's markers only: its bars close behind its ticks
        released = self.buffer.push_from(
            rt.reorder, source, item.ts_event, sort_key(item), item, False
        )
        return self._released(rt, released, late_before)

    def on_progress(
        self, rt: AccountRuntime, source: Hashable, ts: datetime
    ) -> list[AccountOutput]:
        """Input ``source`` sends nothing before ``ts`` (a marker from the strategy stage)."""
        return self._released(rt, self.buffer.progress(rt.reorder, source, ts))

    def _released(
        self, rt: AccountRuntime, released: list[AccountInput], late_before: int | None = None
    ) -> list[AccountOutput]:
        """Step the released items in order; with ``late_before`` (the reorder buffer's late
        count before a push), also count the inputs that push found late."""
        out: list[AccountOutput] = []
        for ready in released:
            if type(ready) is Tick:
                self._on_tick(rt, ready, out)
            else:
                out.extend(self._process(rt, ready))
        if late_before is not None:
            rt.late_inputs += rt.reorder.late - late_before
        return out

    def on_wall_clock(
        self, rt: AccountRuntime, now: datetime, silence: Silence | None = None
    ) -> list[AccountOutput]:
        """Live heartbeat: release inputs older than ``now`` − lateness, and declare the feed
        stalled when ``silence`` (measured by the flows layer from input *arrivals*, not from
        event time) lasted ``stall_after_s``; each quiet spell once. ``now`` and ``silence``
        are the caller's clock; replays never call this."""
        out: list[AccountOutput] = []
        released_to = now - self.config.lateness
        if self.inputs:  # input watermarks: the heartbeat only counts toward idle inputs
            out.extend(self._released(rt, self.buffer.beat(rt.reorder)))
        else:
            for ready in self.buffer.advance(rt.reorder, released_to):
                out.extend(self._process(rt, ready))
        if released_to >= rt.ledger_close_at:  # same notes as a replay: ts = the close
            out.extend(self._close_days(rt, released_to))
        last_event = rt.reorder.max_ts
        if silence is None or last_event is None or silence.since == rt.silence_reported:
            return out
        stalled = silent_feed(silence, last_event, self.config.feed_health.stall_after_s)
        if stalled is not None:
            rt.silence_reported = silence.since
            out.append(stalled)
            out.extend(self._risk(rt, rt.risk.on_risk_event(stalled)))
        return out

    def on_eof(self, rt: AccountRuntime) -> list[AccountOutput]:
        out: list[AccountOutput] = []
        for ready in self.buffer.flush(rt.reorder):
            out.extend(self._process(rt, ready))
        if rt.reorder.max_ts is not None:
            out.extend(rt.portfolio.mark_to_market(rt.reorder.max_ts))
        if rt.ledger is not None:
            out.extend(self._close_days(rt, None))
        return out

    # ------------------------------------------------------------------------ dispatch
    def _process(self, rt: AccountRuntime, item: AccountInput) -> list[AccountOutput]:
        if isinstance(item, Tick):
            out: list[AccountOutput] = []
            self._on_tick(rt, item, out)
            return out
        if isinstance(item, OptionAnalytics):  # the next most common input
            rt.portfolio.on_analytics(item)
            if item.delta is not None:
                rt.deltas[item.token] = item.delta
            return []
        if isinstance(item, SignalGenerated):
            return self._on_signal(rt, item)
        if isinstance(item, RegimeClassified):
            out = []
            changes = rt.adaptive.on_regime(item)
            atr = item.features.get("atr")
            if atr is not None:
                changes += rt.adaptive.on_atr(item.ts_event, item.underlying, atr)
            for change in changes:
                out.append(change)
                out.extend(self._risk(rt, rt.risk.on_adaptive(change)))
            return out
        if item.kind == "OPERATOR_RESET":  # `scalpflow risk reset`, journaled as it is
            return [item, *self._risk(rt, rt.risk.operator_reset(item.ts_event))]
        if item.kind in _STRATEGY_KINDS:
            return self._on_strategy_event(rt, item)
        return self._risk(rt, rt.risk.on_risk_event(item))  # e.g. a connector's FEED_STALLED

    def _on_strategy_event(self, rt: AccountRuntime, ev: RiskEvent) -> list[AccountOutput]:
        """The strategy stage flagged (STRATEGY_SLOW) or disabled (STRATEGY_FAILED) one of this
        account's strategies: journal it; on failure also refuse its entries from now on and
        close what it left open (its exits will never come), touching no other strategy."""
        out: list[AccountOutput] = [ev, *self._risk(rt, rt.risk.on_clock(ev.ts_event))]
        if ev.kind != "STRATEGY_FAILED" or ev.strategy in rt.disabled:
            return out
        rt.disabled[ev.strategy] = ev.detail
        out.extend(self._flatten_all(rt, ev.ts_event, "STRATEGY_FAILED", strategy=ev.strategy))
        return out

    def _drop_expired(self, rt: AccountRuntime, ts: datetime) -> None:
        """Forget the per-token state (quotes, deltas, marks, last volumes, feed lags) of
        options whose expiry day is over at ``ts``, unless the account still holds,
        has pending or has a working order in one: an open position's data is never dropped.
        Keeps memory (and the recovery store) bounded over a multi-day run."""
        expiries = self.expiries
        rt.expiry_sweep_at = expiries.next_after(ts)
        held: set[str] = {p.token for p in rt.portfolio.state.positions.values() if p.qty}
        risk = rt.risk.state
        held.update(p.instrument for p in risk.pending.values())
        execution = rt.execution.state
        held.update(token for token, ids in execution.working.items() if ids)

        def keep(token: str) -> bool:
            return token in held

        for tokens in (rt.quotes, rt.deltas, risk.marks, risk.deltas, execution.last_cum_volume):
            expiries.drop(tokens, ts, keep)
        expiries.drop(execution.working, ts, keep)
        expiries.drop(rt.portfolio.state.deltas, ts, keep)
        rt.feed.drop_tokens(lambda token: expiries.expired(token, ts) and not keep(token))

    def _on_tick(self, rt: AccountRuntime, tick: Tick, out: list[AccountOutput]) -> None:
        # Feed health first, on the same event-time ordered ticks: a gap ending here is a stall
        # (kill switch), a sustained ts_recv - ts_event above the threshold is lagging.
        # (Most ticks produce nothing at any step: the lists are only built when they do.)
        ts = tick.ts_event
        sweep = rt.expiry_sweep_at
        if sweep is None or ts >= sweep:
            self._drop_expired(rt, ts)
        if ts >= rt.ledger_close_at:
            out.extend(self._close_days(rt, ts))
        health = rt.feed.on_tick(tick)
        if health:
            for ev in health:
                out.append(ev)
                if ev.kind == "FEED_STALLED":
                    out.extend(self._risk(rt, rt.risk.on_risk_event(ev)))
        rt.quotes[tick.token] = (tick.bid, tick.ask, tick.ltp)
        orders = rt.execution.on_tick(tick)
        if orders:
            out.extend(self._order_events(rt, orders))
        if self._past_cutoff(ts) and rt.squared_off_on != ist_date(ts):
            out.extend(self._end_of_day(rt, ts))
        rt.portfolio.on_tick(tick)
        risk = rt.risk.on_tick(tick)
        if risk:
            out.extend(self._risk(rt, risk))
        next_mark = rt.next_mark
        if next_mark is None or ts >= next_mark:
            if next_mark is not None:
                out.extend(rt.portfolio.mark_to_market(ts))
            step = self.config.mark_every
            rt.next_mark = ts - (ts - _EPOCH) % step + step

    # ------------------------------------------------------------------------ signals
    def _on_signal(self, rt: AccountRuntime, sig: SignalGenerated) -> list[AccountOutput]:
        inst = self.instruments.get(sig.instrument)
        if inst is None:
            return [self._deny(sig, 0, f"UNKNOWN_INSTRUMENT: token={sig.instrument}")]
        if sig.action == "EXIT":
            return self._exit(rt, sig, inst)
        if sig.strategy in rt.disabled:
            return [self._deny(sig, inst.lot_size, f"STRATEGY_DISABLED: strategy={sig.strategy}")]
        if self._past_cutoff(sig.ts_event):
            cutoff = self.config.square_off_at.strftime("%H:%M")
            return [
                self._deny(sig, inst.lot_size, f"SESSION_CUTOFF: no entries after {cutoff} IST")
            ]
        quote = rt.quotes.get(sig.instrument)
        if quote is None or quote[1] <= 0:
            return [self._deny(sig, inst.lot_size, f"NO_QUOTE: token={sig.instrument}")]
        price = quote[1] if sig.side == "BUY" else quote[0]
        delta = sig.delta if sig.delta is not None else rt.deltas.get(sig.instrument)
        stop_distance = (
            max(inst.tick_size, round(sig.atr * 100 * abs(delta)))
            if sig.atr is not None and delta is not None
            # no ATR or delta yet: assume a stop 20% below the premium
            else max(inst.tick_size, price // 5)
        )
        qty = self.config.entry_lots * inst.lot_size
        order_id, out = self._ask_risk(
            rt, sig, 0, sig.side, qty, inst, price, stop_distance, delta, sig.atr
        )
        for decision in list(out):
            if isinstance(decision, OrderApproved) and decision.order_id == order_id:
                rt.working_entries[(sig.strategy, sig.instrument)] = order_id
                out.extend(self._submit(rt, sig, order_id, decision.qty, sig.side))
        return out

    def _exit(
        self, rt: AccountRuntime, sig: SignalGenerated, inst: Instrument
    ) -> list[AccountOutput]:
        out: list[AccountOutput] = []
        entry_id = rt.working_entries.pop((sig.strategy, sig.instrument), None)
        if entry_id is not None:
            working = rt.execution.order(entry_id)
            if working is not None and working.working:
                cancel = CancelOrder(
                    ts_event=sig.ts_event,
                    ts_recv=sig.ts_event,
                    order_id=entry_id,
                    account=self.config.account,
                    reason=f"EXIT_SIGNAL: {sig.reason}",
                    run_id=self.config.run_id,
                )
                out.extend(self._order_events(rt, rt.execution.on_command(cancel)))
        pos = rt.portfolio.position(self.config.account, sig.strategy, sig.instrument)
        if pos is None or pos.qty == 0:
            return out
        side: Side = "SELL" if pos.qty > 0 else "BUY"
        bid, ask, _ = rt.quotes.get(sig.instrument, (0, 0, 0))
        price = bid if side == "SELL" else ask
        order_id, decisions = self._ask_risk(
            rt, sig, 1, side, abs(pos.qty), inst, price, inst.tick_size,
            rt.deltas.get(sig.instrument), None,
        )  # fmt: skip
        out.extend(decisions)
        for decision in decisions:
            if isinstance(decision, OrderApproved) and decision.order_id == order_id:
                out.extend(self._submit(rt, sig, order_id, decision.qty, side))
        return out

    def _ask_risk(
        self, rt: AccountRuntime, sig: SignalGenerated, seq: int, side: Side, qty: int,
        inst: Instrument, price: int, stop_distance: int, delta: float | None,
        atr: float | None,
    ) -> tuple[str, list[AccountOutput]]:  # fmt: skip
        """The order intent for a signal (entry ``seq`` 0, exit 1), through risk: its order id
        and risk's outputs."""
        order_id = make_order_id(
            sig.strategy, sig.instrument, sig.ts_event, seq, account=self.config.account
        )
        intent = OrderIntent(
            ts_event=sig.ts_event,
            order_id=order_id,
            account=self.config.account,
            strategy=sig.strategy,
            instrument=sig.instrument,
            underlying=sig.underlying,
            side=side,
            qty=qty,
            lot_size=inst.lot_size,
            price=price,
            stop_distance=stop_distance,
            delta=delta,
            atr=atr,
        )
        rt.order_underlying[order_id] = sig.underlying
        return order_id, self._risk(rt, rt.risk.on_order(intent))

    def _submit(
        self, rt: AccountRuntime, sig: SignalGenerated, order_id: str, qty: int, side: str
    ) -> list[AccountOutput]:
        cmd = SubmitOrder(
            ts_event=sig.ts_event,
            ts_recv=sig.ts_event,
            order_id=order_id,
            account=self.config.account,
            strategy=sig.strategy,
            token=sig.instrument,
            side=side,  # type: ignore[arg-type]
            order_type="MARKET",
            qty=qty,
            reason=sig.reason,
            run_id=self.config.run_id,
        )
        return self._order_events(rt, rt.execution.on_command(cmd))

    def _deny(self, sig: SignalGenerated, qty: int, reason: str) -> OrderDenied:
        return OrderDenied(
            ts_event=sig.ts_event,
            ts_recv=sig.ts_event,
            account=self.config.account,
            strategy=sig.strategy,
            order_id=make_order_id(
                sig.strategy, sig.instrument, sig.ts_event, 0, account=self.config.account
            ),
            instrument=sig.instrument,
            side=sig.side,
            qty=qty,
            reason=reason,
        )

    # ------------------------------------------------------------------------ consequences
    def _order_events(self, rt: AccountRuntime, events: list[OrderEvent]) -> list[AccountOutput]:
        out: list[AccountOutput] = []
        for ev in events:
            out.append(ev)
            if isinstance(ev, FillEvent):
                out.extend(self._on_fill(rt, ev))
            elif isinstance(ev, OrderCancelled | OrderExpired | OrderRejected):
                out.extend(self._risk(rt, rt.risk.on_order_closed(ev.order_id, ev.ts_event)))
        return out

    def _on_fill(self, rt: AccountRuntime, fill: FillEvent) -> list[AccountOutput]:
        out: list[AccountOutput] = []
        if rt.ledger is not None:
            out.extend(self._book_fill(rt, rt.ledger, fill))
        inst = self.instruments.get(fill.token)
        underlying = inst.underlying if inst is not None else ""
        for change in rt.portfolio.on_fill(fill):
            out.append(change)
            if isinstance(change, TradeClosed):
                result = TradeResult(
                    ts_event=change.ts_event,
                    account=change.account,
                    strategy=change.strategy,
                    underlying=underlying,
                    pnl=change.net,
                )
                for adapt in rt.adaptive.on_trade_closed(result):
                    out.append(adapt)
                    out.extend(self._risk(rt, rt.risk.on_adaptive(adapt)))
        report = fill_report(fill, underlying, inst.lot_size if inst is not None else 1)
        out.extend(self._risk(rt, rt.risk.on_fill(report)))
        return out

    # ------------------------------------------------------------------------ cost ledger
    def _book_fill(
        self, rt: AccountRuntime, ledger: CostLedger, fill: FillEvent
    ) -> list[AccountOutput]:
        """Add a fill to its day's totals; a fill on an already noted day reissues the note."""
        day = ist_date(fill.ts_event)
        late = ledger.add(
            fill.account, day, fill.token, fill.order_id, fill.side, fill.fill_qty,
            fill.fill_price, estimated=fill.costs.total,
        )  # fmt: skip
        if late:
            ts = max(fill.ts_event, session_close(day))
            return [ledger.close(fill.account, day, ts, self.config.run_id)]
        close = session_close(day)
        if close < rt.ledger_close_at:
            rt.ledger_close_at = close
        return []

    def charges_so_far(self, rt: AccountRuntime, day: date) -> int | None:
        """The account's charges on ``day`` as its contract note computes them (None: no
        ledger configured)."""
        if rt.ledger is None:
            return None
        return rt.ledger.charges_so_far(self.config.account, day)

    def _close_days(self, rt: AccountRuntime, now: datetime | None) -> list[AccountOutput]:
        """Contract notes for every open day whose session closed by ``now`` (None: all, at
        end of input). A note's time is its session close, whatever triggered it."""
        ledger = rt.ledger
        out: list[AccountOutput] = []
        nxt = _NEVER
        if ledger is not None:
            for account, day in ledger.open_days():
                close = session_close(day)
                if now is None or close <= now:
                    out.append(ledger.close(account, day, close, self.config.run_id))
                elif close < nxt:
                    nxt = close
        rt.ledger_close_at = nxt
        return out

    def _risk(self, rt: AccountRuntime, outputs: list[Any]) -> list[AccountOutput]:
        out: list[AccountOutput] = []
        for ev in outputs:
            if isinstance(ev, FlattenAccount):
                out.extend(self._flatten(rt, ev))
            else:
                out.append(ev)
        return out

    def _past_cutoff(self, ts: datetime) -> bool:
        """At or after the square-off time of ``ts``'s IST day (asked on every tick: the
        day's bounds and cut-off instant are kept until a tick falls outside that day)."""
        day = self._cutoff_day
        if not day[0] <= ts < day[1]:
            local = ts.astimezone(IST).date()
            start = datetime.combine(local, time(0), IST).astimezone(UTC)
            cutoff = datetime.combine(local, self.config.square_off_at, IST).astimezone(UTC)
            day = self._cutoff_day = (start, start + timedelta(days=1), cutoff)
        return ts >= day[2]

    def _end_of_day(self, rt: AccountRuntime, ts: datetime) -> list[AccountOutput]:
        """Intraday square-off: cancel working orders, flatten with market orders, once a day."""
        rt.squared_off_on = ist_date(ts)
        open_legs = [p for p in rt.portfolio.state.positions.values() if p.qty != 0]
        working = [o for o in rt.execution.state.orders.values() if o.working]
        if not open_legs and not working:
            return []
        notice = RiskEvent(
            ts_event=ts,
            ts_recv=ts,
            account=self.config.account,
            kind="SQUARE_OFF",
            detail=(
                f"END_OF_DAY: {self.config.square_off_at.strftime('%H:%M')} IST, "
                f"positions={len(open_legs)}, working_orders={len(working)}"
            ),
        )
        return [notice, *self._flatten_all(rt, ts, "END_OF_DAY")]

    def _flatten(self, rt: AccountRuntime, cmd: FlattenAccount) -> list[AccountOutput]:
        """Kill switch: cancel every working order, then square off with market orders."""
        return self._flatten_all(rt, cmd.ts_event, f"KILL_SWITCH: {cmd.reason}")

    def _flatten_all(
        self, rt: AccountRuntime, ts: datetime, reason: str, strategy: str | None = None
    ) -> list[AccountOutput]:
        """Cancel working orders and square off (everything, or one ``strategy``'s)."""
        out: list[AccountOutput] = []
        for order_id in sorted(rt.execution.state.orders):
            working = rt.execution.order(order_id)
            if working is None or not working.working:
                continue
            if strategy is not None and working.strategy != strategy:
                continue
            cancel = CancelOrder(
                ts_event=ts,
                ts_recv=ts,
                order_id=order_id,
                account=self.config.account,
                reason=reason,
                run_id=self.config.run_id,
            )
            out.extend(self._order_events(rt, rt.execution.on_command(cancel)))
        for order in rt.portfolio.square_off(
            ts,
            reason=f"SQUARE_OFF: {reason}",
            account=self.config.account,
            strategy=strategy,
            run_id=self.config.run_id,
        ):
            out.extend(self._order_events(rt, rt.execution.on_command(order)))
        if strategy is None:
            rt.working_entries.clear()
        else:
            for key in [k for k in rt.working_entries if k[0] == strategy]:
                del rt.working_entries[key]
        return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STRATEGY_KINDS = ("STRATEGY_FAILED", "STRATEGY_SLOW")


_native.picklable(AccountConfig, AccountRuntime, AccountLogic)
