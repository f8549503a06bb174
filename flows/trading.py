"""Trading stage wiring: per-underlying strategies, per-account feed health, risk + execution.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import bytewax.operators as op
import msgspec
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.dataflow import Stream
from bytewax.operators import KeyedStream

from connectors.serde import encode, ts_millis
from flows.accounts import (
    Isolation,
    account_configs,
    resolved_accounts,
    strategy_specs,
    subscribers,
)
from flows.adapters import run_keyed, values
from flows.arrivals import ArrivalClock
from operators.account_stage import AccountConfig, AccountLogic, AccountRuntime
from operators.adaptive import AdaptiveStateChanged
from operators.candles import CandleConfig
from operators.events import (
    Bar,
    Instrument,
    OptionAnalytics,
    RegimeClassified,
    RiskEvent,
    SignalGenerated,
    Tick,
)
from operators.feed_health import Silence
from operators.orders import FillEvent, OrderEvent
from operators.risk_limits import OrderApproved, OrderDenied
from operators.strategies.base import signal_strategy_key
from operators.underlying_stage import UnderlyingConfig, UnderlyingLogic, UnderlyingRuntime

log = logging.getLogger(__name__)


@dataclass
class TradingStreams:
    to_db: list[Stream[Any]] = field(default_factory=list)
    to_kafka: list[Stream[Any]] = field(default_factory=list)


@dataclass
class _Holder:
    """Bytewax builds state without telling the key: the runtime is made on the first item."""

    runtime: Any = None


class _UnderlyingStage:
    def __init__(self, logic: UnderlyingLogic) -> None:
        self.logic = logic

    def new_state(self) -> _Holder:
        return _Holder()

    def on_item(self, state: _Holder, item: Tick | Bar) -> Iterable[Any]:
        if state.runtime is None:
            token = item.candle.token if isinstance(item, Bar) else item.token
            underlying = self.logic.underlying_of(token)
            assert underlying is not None  # filtered upstream
            state.runtime = self.logic.new_runtime(underlying)
        runtime: UnderlyingRuntime = state.runtime
        return self.logic.on_item(runtime, item)

    def on_eof(self, state: _Holder) -> Iterable[Any]:
        return [] if state.runtime is None else self.logic.on_eof(state.runtime)

    def on_wall_clock(self, state: _Holder, now: datetime) -> Iterable[Any]:
        return [] if state.runtime is None else self.logic.on_wall_clock(state.runtime, now)


@dataclass
class _AccountHolder:
    """One account's state; like ``_Holder``, made on its first item (which names it)."""

    account: str = ""
    runtime: AccountRuntime | None = None


class _AccountStage:
    """Every account's logic; items arrive as ``(account, input)`` pairs (see module doc)."""

    def __init__(self, logics: Mapping[str, AccountLogic]) -> None:
        self.logics = dict(logics)

    def new_state(self) -> _AccountHolder:
        return _AccountHolder()

    def on_item(self, state: _AccountHolder, item: tuple[str, Any]) -> Iterable[Any]:
        runtime = state.runtime
        if runtime is None:
            state.account = item[0]
            runtime = state.runtime = self.logics[item[0]].new_runtime()
        return self.logics[state.account].on_item(runtime, item[1])

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


def account_config(config: Any) -> AccountConfig:
    """The operator config of a single-account pipeline config (its only account)."""
    configs = account_configs(resolved_accounts(config), config.run_id)
    if len(configs) != 1:
        msg = f"account_config: {len(configs)} accounts; use flows.accounts.account_configs"
        raise ValueError(msg)
    return next(iter(configs.values()))


class _FanOut:
    """Strategy-stage outputs → the accounts they concern, as ``(account, (account, item))``.

    Market context (ticks, analytics, regimes) goes to every account; a signal to the accounts
    that run its strategy instance (``signal_id`` prefix); a STRATEGY_FAILED/SLOW event to the
    same accounts, rewritten as each account's own event with the strategy's name.
    """

    def __init__(self, accounts: Sequence[str], subscribers: Mapping[str, Sequence[str]]) -> None:
        self.accounts = tuple(accounts)
        self.subscribers = {k: tuple(v) for k, v in subscribers.items()}

    def __call__(self, kvs: list[tuple[str, Any]]) -> list[tuple[str, tuple[str, Any]]]:
        accounts = self.accounts
        out: list[tuple[str, tuple[str, Any]]] = []
        for _, v in kvs:
            if isinstance(v, SignalGenerated):
                out.extend(
                    (a, (a, v)) for a in self.subscribers.get(signal_strategy_key(v.signal_id), ())
                )
            elif isinstance(v, RiskEvent):
                name = v.strategy.rpartition("-")[0] or v.strategy
                for a in self.subscribers.get(v.strategy, ()):
                    out.append((a, (a, msgspec.structs.replace(v, account=a, strategy=name))))
            else:
                out.extend((a, (a, v)) for a in accounts)
        return out


def _kafka_message(topics: Any, event: Any) -> KafkaSinkMessage[bytes, bytes] | None:
    if isinstance(event, SignalGenerated):
        topic, key = topics.signals, event.underlying
    elif isinstance(event, RegimeClassified):
        topic, key = topics.regime, event.underlying
    elif isinstance(event, AdaptiveStateChanged):
        topic, key = topics.ai_state, event.account
    elif isinstance(event, RiskEvent):
        topic, key = topics.risk, event.account
    elif isinstance(event, FillEvent):
        topic, key = topics.fills, event.account
    elif isinstance(event, OrderEvent | OrderApproved | OrderDenied):
        topic, key = topics.orders, event.account
    else:
        return None  # analytics, positions and trades live in PostgreSQL only
    return KafkaSinkMessage(
        key=key.encode(), value=encode(event), topic=topic, timestamp=ts_millis(event)
    )


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
    ticks: KeyedStream[Tick],
    bars: Stream[Bar],
    instruments: Mapping[str, Instrument],
    config: Any,
    commands: Stream[Any] | None = None,
    arrivals: ArrivalClock | None = None,
) -> TradingStreams:
    """Wire the trading stage onto the market stage's ticks (see module doc).

    The strategy stage builds its driver's 1-minute bars itself from its event-time ordered
    ticks and forwards those ticks to the account stage with its own outputs, so the order in
    which decisions meet market data does not depend on source batches or partitions (``bars``
    from the market stage are stored and published, not traded on). ``commands``: operator
    commands as ``(account, (account, command))`` (``flows.controls``), merged into the
    account stage's inputs.
    """
    accounts = resolved_accounts(config)
    underlying_config, account_cfgs = stage_configs(config)
    budget = underlying_config.strategy_budget
    underlying_logic = UnderlyingLogic(
        instruments,
        underlying_config,
        timer=time.perf_counter if budget is not None else None,
    )
    logics = {name: AccountLogic(instruments, cfg) for name, cfg in account_cfgs.items()}
    underlying_of = {token: inst.underlying for token, inst in instruments.items()}
    by_underlying: KeyedStream[Tick] = op.flat_map_batch(
        "by_underlying",  # unknown tokens have no underlying stage to go to
        ticks,
        lambda kts: [(underlying_of[k], t) for k, t in kts if k in underlying_of],
    )
    underlying_out = run_keyed(
        "underlying",
        by_underlying,
        lambda: _UnderlyingStage(underlying_logic),
        heartbeat=config.heartbeat,
    )
    # ordered ticks + analytics, regimes and signals, re-keyed from underlying to account
    fan_out = _FanOut([a.id for a in accounts], subscribers(accounts))
    for_account: KeyedStream[Any] = op.flat_map_batch("by_account", underlying_out, fan_out)
    if commands is not None:
        for_account = cast("KeyedStream[Any]", op.merge("with_commands", for_account, commands))
    account_out = values(
        "account_values",
        run_keyed(
            "account",
            for_account,
            lambda: _AccountStage(logics),
            heartbeat=config.heartbeat,
            arrivals=arrivals,  # stall = no input arrived, whatever the event times
        ),
    )
    decisions: Stream[Any] = op.flat_map_batch(
        "not_ticks",  # strategy events are journaled by each account they concern
        underlying_out,
        lambda kvs: [v for _, v in kvs if not isinstance(v, Tick | RiskEvent)],
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
            lambda xs: [m for m in (_kafka_message(topics, e) for e in xs) if m is not None],
        )
        streams.to_kafka.append(messages)
    return streams
