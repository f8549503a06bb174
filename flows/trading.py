"""Trading stage wiring: per-underlying strategies, per-account feed health, risk + execution.

Why one module (~490 lines): the trading stage's Bytewax graph, both keyed stages and the
markers between them (progress, floors, arrivals), read as one picture.

ticks ─── key by underlying ─── underlying stage (reorders by event time, builds the driver's
                                1m bars itself) ─► analytics, regimes, signals + the ticks ─┐
                                                                       key by account ◄─────┘
                                 ─ account stage (feed health, risk, execution, portfolio,
                                   adaptive) ─► orders, fills, positions, trades, risk
                                   decisions/events (FEED_LAGGING/STALLED, kill switch), ai.state

Ticks reach the account through the underlying stage, already in event-time order with the
decisions taken on them, so fills do not depend on source batches or partitions.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Stream
from bytewax.operators import KeyedStream

from connectors import metrics
from connectors.routes import kafka_message
from flows.adapters import OneByOne, grouped, run_keyed, values
from flows.arrivals import ArrivalClock
from flows.config.accounts import (
    Isolation,
    account_configs,
    resolved_accounts,
    strategy_specs,
    subscribers,
)
from flows.market import Sourced
from flows.placement import Placement
from operators.events import (
    Bar,
    Instrument,
    OptionAnalytics,
    RiskEvent,
    SignalGenerated,
    Tick,
)
from operators.market.candles import CandleConfig
from operators.stages.account import AccountConfig, AccountLogic, AccountRuntime
from operators.stages.underlying import UnderlyingConfig, UnderlyingLogic, UnderlyingRuntime
from operators.strategies.base import signal_strategy_key
from operators.trading.feed_health import Silence
from operators.trading.orders import FillEvent

log = logging.getLogger(__name__)


@dataclass
class TradingStreams:
    to_db: list[Stream[Any]] = field(default_factory=list)
    to_kafka: list[Stream[Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Progress:
    """Marker: source partition ``source`` sends nothing for ``underlying`` before ``ts``."""

    underlying: str
    source: int
    ts: datetime


@dataclass(frozen=True)
class _Floor:
    """Marker: the strategy stage of ``underlying`` emits nothing more before ``ts``."""

    underlying: str
    ts: datetime


class _ByUnderlying:
    """Ticks → their underlying's strategy stage, as ``(underlying, Sourced)``; with input
    watermarks, each partition in the batch also tells every underlying that got none of its
    ticks how far it has got (a ``_Progress``), so a stage is never held back by a partition
    that carries none of its instruments."""

    def __init__(
        self, underlying_of: Mapping[str, str], markers: bool, key_of: Mapping[str, str]
    ) -> None:
        self.underlying_of = dict(underlying_of)
        self.underlyings = tuple(sorted(set(underlying_of.values())))
        self.markers = markers
        self.key_of = {u: key_of.get(u, u) for u in self.underlyings}  # flows.placement

    def __call__(self, xs: list[Sourced]) -> list[tuple[str, list[Any]]]:
        """One ``(underlying, items in order)`` per underlying in the batch (one exchange
        item per key and batch, see ``flows.market.group_by_token``)."""
        get = self.underlying_of.get
        keyed: list[tuple[str, Any]] = [(u, x) for x in xs if (u := get(x[2].token)) is not None]
        groups = dict(grouped(keyed))
        if self.markers:
            latest: dict[int, datetime] = {}
            for source, _, tick in xs:
                if source is not None:
                    at = latest.get(source)
                    if at is None or tick.ts_event > at:
                        latest[source] = tick.ts_event
            for u in self.underlyings:
                items = groups.get(u, [])
                covered = {x[0] for x in items}
                marks = [_Progress(u, s, ts) for s, ts in latest.items() if s not in covered]
                if marks:
                    groups[u] = items + marks
        key_of = self.key_of
        return [(key_of[u], items) for u, items in groups.items()]


@dataclass
class _Holder:
    """Bytewax builds state without telling the key: the runtime is made on the first item."""

    runtime: Any = None
    #: id(tick) -> arrival (wall clock) of ticks held in the reorder buffer (metrics only)
    arrivals: dict[int, float] = field(default_factory=dict)
    floor: datetime | None = None  # the last ``_Floor`` sent downstream
    last_arrival: float = 0.0  # arrival of the latest tick seen (metrics only)


class _UnderlyingStage(OneByOne[_Holder, "Sourced | _Progress", Any]):
    """The strategy stage of one underlying. Its outputs carry forwarded ticks as
    ``(tick, arrival)``; with input watermarks each batch ends with a ``_Floor``."""

    def __init__(self, logic: UnderlyingLogic, observe: bool = False) -> None:
        self.logic = logic
        self.inputs = bool(logic.inputs)
        self.observe = observe

    def new_state(self) -> _Holder:
        return _Holder()

    def _runtime(self, state: _Holder, item: Sourced | _Progress) -> UnderlyingRuntime:
        if state.runtime is None:
            if type(item) is _Progress:
                underlying: str | None = item.underlying
            else:
                underlying = self.logic.underlying_of(item[2].token)  # type: ignore[index]
            assert underlying is not None  # filtered upstream
            state.runtime = self.logic.new_runtime(underlying)
        runtime: UnderlyingRuntime = state.runtime
        return runtime

    def _on_one(self, state: _Holder, item: Sourced | _Progress) -> list[Any]:
        runtime = self._runtime(state, item)
        if type(item) is _Progress:
            return self._stamp(state, self.logic.on_progress(runtime, item.source, item.ts))
        source, arrived, tick = item  # type: ignore[misc]
        if self.observe:
            state.arrivals[id(tick)] = arrived
            state.last_arrival = arrived
        if self.inputs:
            return self._stamp(state, self.logic.on_item_from(runtime, source, tick))
        return self._stamp(state, self.logic.on_item(runtime, tick))

    def after_batch(self, state: _Holder) -> Iterable[Any]:
        if not self.inputs or state.runtime is None:
            return []
        floor = self.logic.output_floor(state.runtime)
        if floor is None or (state.floor is not None and floor <= state.floor):
            return []
        state.floor = floor
        return [_Floor(state.runtime.underlying, floor)]

    def _stamp(self, state: _Holder, out: list[Any]) -> list[Any]:
        """Forwarded ticks as ``(tick, arrival)``; each signal's tick → signal latency."""
        result: list[Any] = []
        arrivals = state.arrivals
        signals = 0
        for v in out:
            if type(v) is Tick:
                arrived = arrivals.pop(id(v), 0.0)
                if signals and arrived:  # a signal comes right before the tick it was made on
                    lag = time.time() - arrived
                    metrics.TICK_TO_SIGNAL.observe_many([lag] * signals)
                signals = 0
                result.append((v, arrived))
            else:
                if self.observe and type(v) is SignalGenerated:
                    signals += 1
                result.append(v)
        if signals and state.last_arrival:
            # a bar closed by the input floor: no tick follows, the latest arrival made it due
            lag = time.time() - state.last_arrival
            metrics.TICK_TO_SIGNAL.observe_many([lag] * signals)
        return result

    def on_eof(self, state: _Holder) -> Iterable[Any]:
        return [] if state.runtime is None else self._stamp(state, self.logic.on_eof(state.runtime))

    def on_wall_clock(self, state: _Holder, now: datetime) -> Iterable[Any]:
        if state.runtime is None:
            return []
        out = self._stamp(state, self.logic.on_wall_clock(state.runtime, now))
        return [*out, *self.after_batch(state)]


#: What the account stage gets: (account, source underlying, item, arrival of a tick or 0)
AccountItem = tuple[str, str, Any, float]


@dataclass
class _AccountHolder:
    """One account's state; like ``_Holder``, made on its first item (which names it)."""

    account: str = ""
    runtime: AccountRuntime | None = None
    #: (token, ts_event) -> arrival of held ticks, and their order (metrics only)
    arrivals: dict[tuple[str, datetime], float] = field(default_factory=dict)
    arrival_order: deque[tuple[datetime, tuple[str, datetime]]] = field(default_factory=deque)


class _AccountStage(OneByOne[_AccountHolder, AccountItem, Any]):
    """Every account's logic; items arrive as ``AccountItem`` (see module doc)."""

    def __init__(self, logics: Mapping[str, AccountLogic], observe: bool = False) -> None:
        self.logics = dict(logics)
        self.inputs = any(logic.inputs for logic in self.logics.values())
        self.observe = observe

    def new_state(self) -> _AccountHolder:
        return _AccountHolder()

    def _on_one(self, state: _AccountHolder, item: AccountItem) -> list[Any]:
        account, source, v, arrived = item
        runtime = state.runtime
        if runtime is None:
            state.account = account
            runtime = state.runtime = self.logics[account].new_runtime()
        logic = self.logics[state.account]
        if type(v) is _Floor:
            out = logic.on_progress(runtime, source, v.ts)
        elif self.inputs:
            out = logic.on_item_from(runtime, source, v)
        else:
            out = logic.on_item(runtime, v)
        if self.observe:
            self._observe(state, runtime, v, arrived, out)
        return out

    @staticmethod
    def _observe(
        state: _AccountHolder, runtime: AccountRuntime, v: Any, arrived: float, out: list[Any]
    ) -> None:
        """Tick → fill latency: a fill's time and token are those of the tick it was made on."""
        arrivals, order = state.arrivals, state.arrival_order
        if arrived and type(v) is Tick:
            key = (v.token, v.ts_event)
            arrivals[key] = arrived
            order.append((v.ts_event, key))
        if out:
            now = time.time()
            lags = [
                now - a
                for e in out
                if type(e) is FillEvent and (a := arrivals.get((e.token, e.ts_event))) is not None
            ]
            if lags:
                metrics.TICK_TO_FILL.observe_many(lags)
        released = runtime.reorder.released_ts
        while order and released is not None and order[0][0] < released:
            arrivals.pop(order.popleft()[1], None)

    def on_eof(self, state: _AccountHolder) -> Iterable[Any]:
        if state.runtime is None:
            return []
        return self.logics[state.account].on_eof(state.runtime)

    def on_wall_clock(
        self, state: _AccountHolder, now: datetime, silence: Silence | None = None
    ) -> Iterable[Any]:
        if state.runtime is None:
            return []
        return self.logics[state.account].on_wall_clock(state.runtime, now, silence)


@dataclass
class _AccountGroup:
    """The accounts placed on one worker (``flows.placement``): one keyed state, so a tick
    sent to them crosses processes once (pickled once: the accounts' items share it)."""

    holders: dict[str, _AccountHolder] = field(default_factory=dict)


class _AccountGroupStage(OneByOne[_AccountGroup, AccountItem, Any]):
    """``_AccountStage`` over a group of accounts: each item goes to its account's holder."""

    def __init__(self, stage: _AccountStage) -> None:
        self.stage = stage

    def new_state(self) -> _AccountGroup:
        return _AccountGroup()

    def _on_one(self, state: _AccountGroup, item: AccountItem) -> list[Any]:
        holder = state.holders.get(item[0])
        if holder is None:
            holder = state.holders[item[0]] = self.stage.new_state()
        return self.stage._on_one(holder, item)

    def on_eof(self, state: _AccountGroup) -> Iterable[Any]:
        return [e for a in sorted(state.holders) for e in self.stage.on_eof(state.holders[a])]

    def on_wall_clock(
        self, state: _AccountGroup, now: datetime, silence: Silence | None = None
    ) -> Iterable[Any]:
        on_wall_clock = self.stage.on_wall_clock
        return [
            e for a in sorted(state.holders) for e in on_wall_clock(state.holders[a], now, silence)
        ]


def account_config(config: Any) -> AccountConfig:
    """The operator config of a single-account pipeline config (its only account)."""
    configs = account_configs(resolved_accounts(config), config.run_id)
    if len(configs) != 1:
        msg = f"account_config: {len(configs)} accounts; use flows.config.accounts.account_configs"
        raise ValueError(msg)
    return next(iter(configs.values()))


class _FanOut:
    """Strategy-stage outputs → the accounts they concern, as ``(account, AccountItem)``.

    Market context (ticks, analytics, regimes) and ``_Floor`` markers go to every account; a
    signal to the accounts that run its strategy instance (``signal_id`` prefix); a
    STRATEGY_FAILED/SLOW event to the same accounts, rewritten as each account's own event
    with the strategy's name.
    """

    def __init__(
        self,
        accounts: Sequence[str],
        subscribers: Mapping[str, Sequence[str]],
        placement: Placement | None = None,
    ) -> None:
        self.accounts = tuple(accounts)
        self.subscribers = {k: tuple(v) for k, v in subscribers.items()}
        self.key_of = {a: a for a in self.accounts}
        # the underlying stage's key -> its underlying (an input of the account stage)
        self.underlying_of: dict[str, str] = {}
        if placement is not None and placement.placed:
            self.key_of = {a: placement.account_key(a) for a in self.accounts}
            self.underlying_of = {placement.underlying_key(u): u for u in placement.underlyings}

    def __call__(self, kvs: list[tuple[str, Any]]) -> list[tuple[str, list[AccountItem]]]:
        """One ``(account key, items in order)`` per account in the batch (one exchange item
        per key and batch)."""
        if self.underlying_of:
            names = self.underlying_of
            kvs = [(names.get(k, k), v) for k, v in kvs]
        key_of = self.key_of
        return grouped((key_of[a], item) for a, item in self._route(kvs))

    def _route(self, kvs: list[tuple[str, Any]]) -> list[tuple[str, AccountItem]]:
        accounts = self.accounts
        out: list[tuple[str, AccountItem]] = []
        for u, v in kvs:
            if type(v) is tuple:  # a forwarded tick and its arrival
                tick, arrived = v
                out.extend((a, (a, u, tick, arrived)) for a in accounts)
            elif isinstance(v, SignalGenerated):
                out.extend(
                    (a, (a, u, v, 0.0))
                    for a in self.subscribers.get(signal_strategy_key(v.signal_id), ())
                )
            elif isinstance(v, RiskEvent):
                name = v.strategy.rpartition("-")[0] or v.strategy
                for a in self.subscribers.get(v.strategy, ()):
                    event = msgspec.structs.replace(v, account=a, strategy=name)
                    out.append((a, (a, u, event, 0.0)))
            else:
                out.extend((a, (a, u, v, 0.0)) for a in accounts)
        return out


def stage_configs(config: Any) -> tuple[UnderlyingConfig, dict[str, AccountConfig]]:
    """The strategy stage's and each account stage's configuration for a pipeline config:
    where the run's settings (lateness, capital, limits, feed-lag threshold) reach them."""
    accounts = resolved_accounts(config)
    isolation = getattr(config, "isolation", None) or Isolation()
    budget = isolation.strategy_budget_ms
    underlying = UnderlyingConfig(
        strategies=strategy_specs(accounts),
        regime_model=config.regime_model,
        bars_from_ticks=True,
        candle=CandleConfig(intervals=("1m",), allowed_lateness=config.candle.allowed_lateness),
        forward_ticks=True,
        strategy_budget=timedelta(milliseconds=budget) if budget is not None else None,
        max_overruns=isolation.max_overruns,
    )
    lag = getattr(config, "feed_lag_threshold_ms", None)
    return underlying, account_configs(accounts, config.run_id, feed_lag_threshold_ms=lag)


def trading_stage(
    ticks: Stream[Sourced],
    bars: Stream[Bar],
    instruments: Mapping[str, Instrument],
    config: Any,
    commands: Stream[Any] | None = None,
    arrivals: ArrivalClock | None = None,
    inputs: Sequence[int] = (),
    placement: Placement | None = None,
) -> TradingStreams:
    """Wire the trading stage onto the market stage's ticks (see module doc).

    The strategy stage builds its driver's 1-minute bars itself from its event-time ordered
    ticks and forwards those ticks to the account stage with its own outputs, so the order in
    which decisions meet market data does not depend on source batches or partitions (``bars``
    from the market stage are stored and published, not traded on). ``commands``: operator
    commands as ``(account, [account item])`` (``flows.sources.controls``), merged into the
    account stage's inputs.

    from the market stage are stored and published, not traded on).

    ``inputs`` (the source's partitions, live Kafka only): both merging stages release by
    input watermarks (``operators.stages.reorder``): the strategy stage over the partitions, the
    account stage over the underlyings; empty: by bounded lateness, as replays do.
    ``placement``: which worker runs each underlying and account with several workers
    (``flows.placement``); None: Bytewax's hash of the plain names.
    """
    accounts = resolved_accounts(config)
    underlying_config, account_cfgs = stage_configs(config)
    budget = underlying_config.strategy_budget
    underlying_logic = UnderlyingLogic(
        instruments,
        underlying_config,
        timer=time.perf_counter if budget is not None else None,
        inputs=tuple(inputs),
    )
    underlying_of = {token: inst.underlying for token, inst in instruments.items()}
    underlyings = sorted(set(underlying_of.values())) if inputs else []
    logics = {
        name: AccountLogic(instruments, cfg, inputs=underlyings)
        for name, cfg in account_cfgs.items()
    }
    observe = bool(getattr(config, "metrics", False))
    by_underlying: KeyedStream[Any] = op.flat_map_batch(
        "by_underlying",  # unknown tokens have no underlying stage to go to
        ticks,
        _ByUnderlying(
            underlying_of,
            markers=bool(inputs),
            key_of={u: placement.underlying_key(u) for u in placement.underlyings}
            if placement is not None and placement.placed
            else {},
        ),
    )
    underlying_out = run_keyed(
        "underlying",
        by_underlying,
        lambda: _UnderlyingStage(underlying_logic, observe),
        heartbeat=config.heartbeat,
    )
    # ordered ticks + analytics, regimes and signals, re-keyed from underlying to account
    fan_out = _FanOut([a.id for a in accounts], subscribers(accounts), placement)
    for_account: KeyedStream[Any] = op.flat_map_batch("by_account", underlying_out, fan_out)
    if commands is not None:
        for_account = cast("KeyedStream[Any]", op.merge("with_commands", for_account, commands))
    account_out = values(
        "account_values",
        run_keyed(
            "account",
            for_account,
            lambda: cast(
                "Any",
                _AccountGroupStage(_AccountStage(logics, observe))
                if placement is not None and placement.placed
                else _AccountStage(logics, observe),
            ),
            heartbeat=config.heartbeat,
            arrivals=arrivals,  # stall = no input arrived, whatever the event times
        ),
    )
    decisions: Stream[Any] = op.flat_map_batch(
        "not_ticks",  # strategy events are journaled by each account they concern
        underlying_out,
        lambda kvs: [
            v for _, v in kvs if type(v) is not tuple and not isinstance(v, RiskEvent | _Floor)
        ],
    )
    results = op.merge("trading_results", decisions, account_out)
    to_db = op.flat_map_batch(
        "db_events",  # option analytics without an IV (no solution) are not stored
        results,
        lambda xs: [e for e in xs if not isinstance(e, OptionAnalytics) or e.iv is not None],
    )
    streams = TradingStreams(to_db=[to_db])
    if config.kafka_bootstrap:
        topics = config.topics
        messages = op.flat_map_batch(
            "trading_to_kafka",
            results,
            lambda xs: [m for m in (kafka_message(topics, e) for e in xs) if m is not None],
        )
        streams.to_kafka.append(messages)
    return streams
