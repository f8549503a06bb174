"""Strategy stage, one per underlying: chain analytics, regime, strategies → signals.

Inputs are the underlying's ticks (index and options) and the driver's closed 1-minute bars.
They come from different upstream steps, so they are put back into event-time order first
(``operators.stages.reorder``) — that is what makes a live run and a replay agree.

Outputs: ``OptionAnalytics`` (IV/Greeks, at most once a second per option),
``RegimeClassified`` (once a minute) and ``SignalGenerated`` (enriched with the underlying's
price, ATR and the option's delta so the account stage can size the order).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from mypy_extensions import mypyc_attr

from operators import _native
from operators.ai.regime import RegimeConfig, RegimeLogic, RegimeModel
from operators.events import (
    Bar,
    Instrument,
    OptionAnalytics,
    RegimeClassified,
    RiskEvent,
    SignalGenerated,
    Tick,
)
from operators.market.candles import CandleConfig
from operators.market.expiry import ExpiryCalendar
from operators.options.chain import ChainConfig, ChainLogic
from operators.stages.market import MarketLogic, MarketState
from operators.stages.reorder import ReorderBuffer, ReorderState
from operators.strategies.base import ContextView, Strategy, StrategyContext, observe
from operators.strategies.option_map import OptionChain
from operators.strategies.registry import create_strategy

UnderlyingInput = Tick | Bar
UnderlyingOutput = OptionAnalytics | RegimeClassified | SignalGenerated | RiskEvent | Tick
Timer = Callable[[], float]

_BAR, _TICK = 0, 1


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class StrategySpec:
    """A strategy to run: registry name (or ``module:Class``) and parameter overrides."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class UnderlyingConfig:
    strategies: Sequence[StrategySpec] = (
        StrategySpec("momentum_breakout"),
        StrategySpec("vwap_reversal"),
        StrategySpec("gamma_scalp"),
    )
    lateness: timedelta = timedelta(seconds=5)
    # A fresh process has no trailing IV history: with 5 per-minute samples the percentile is
    # available from 09:20 on day one (it uses the full 5-session window once that exists).
    chain: ChainConfig = field(default_factory=lambda: ChainConfig(min_samples=5))
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    regime_model: RegimeModel | None = None
    # Build the driver's bars here from the released (event-time ordered) driver ticks instead
    # of taking them from the market stage: a bar closes right before the first released item
    # (any token) at or after its end, or as soon as the input floor passes its end, whatever
    # the batching, partitioning or polling upstream. Its decisions see exactly the data before
    # its end (no candle lateness to wait out: input here is already in order). (A bar from the
    # market stage reaches this stage after an arbitrary number of ticks: one source batch or
    # more, so with a bounded lateness its position, and the decisions taken on it, depended
    # on the batch size.) Incoming bars are then ignored.
    bars_from_ticks: bool = False
    candle: CandleConfig = field(default_factory=lambda: CandleConfig(intervals=("1m",)))
    # Also emit each released tick after its outputs, so a downstream stage (the account) gets
    # ticks, analytics and signals on one path already in event-time order.
    forward_ticks: bool = False
    # Opt-in wall-clock budget per strategy call (needs a timer, see UnderlyingLogic): the
    # first overrun emits STRATEGY_SLOW, the ``max_overruns``-th disables the strategy. Off by
    # default: with it, the decisions depend on the machine's speed, not only on the data.
    strategy_budget: timedelta | None = None
    max_overruns: int = 10


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class UnderlyingRuntime:
    """Everything one underlying remembers; deep-copied by the flow for recovery snapshots."""

    underlying: str
    driver_token: str
    reorder: ReorderState
    chain: ChainLogic
    regime: RegimeLogic
    strategies: list[Strategy[Any, Any]]
    ctx: StrategyContext
    atr: float | None = None
    bars: MarketState = field(default_factory=MarketState)
    view: ContextView | None = None  # read-only view of ``ctx``, what strategies are given
    disabled: dict[str, str] = field(default_factory=dict)  # strategy key -> why
    overruns: dict[str, int] = field(default_factory=dict)  # strategy key -> budget overruns
    # the next instant (event time) an option expires: a tick at or after it sweeps the chain
    # and the context's analytics (``UnderlyingLogic._drop_expired``)
    expiry_sweep_at: datetime | None = None


def sort_key(item: UnderlyingInput) -> tuple[Any, ...]:
    """Deterministic tie-break among equal event times: bars first, then ticks by token/seq."""
    if isinstance(item, Bar):
        return (_BAR, item.candle.token, item.candle.interval)
    return (_TICK, item.token, item.seq, item.ltp, item.cum_volume)


def driver_tokens(instruments: Iterable[Instrument]) -> dict[str, str]:
    """Each underlying's driver token: its one INDEX, else its nearest-expiry FUT.

    Two indices for one underlying make the choice arbitrary (and a wrong pick silently
    trades nothing, since its token never ticks), so that is an error naming them, raised
    when the flow is built rather than at the first tick.
    """
    indices: dict[str, list[str]] = {}
    futures: dict[str, list[tuple[date, str]]] = {}
    for inst in instruments:
        if inst.kind == "INDEX":
            indices.setdefault(inst.underlying, []).append(inst.token)
        elif inst.kind == "FUT":
            futures.setdefault(inst.underlying, []).append((inst.expiry or date.max, inst.token))
    drivers = {u: min(fs)[1] for u, fs in futures.items()}
    for underlying, tokens in indices.items():
        if len(tokens) > 1:
            listed = ", ".join(sorted(tokens)[:5]) + (" ..." if len(tokens) > 5 else "")
            msg = (
                f"the instrument master lists {len(tokens)} INDEX instruments for underlying "
                f"{underlying!r} ({listed}); keep exactly one so strategies know what drives them"
            )
            raise ValueError(msg)
        drivers[underlying] = tokens[0]
    return drivers


@mypyc_attr(allow_interpreted_subclasses=True)
class UnderlyingLogic:
    """Pure per-underlying logic; ``new_runtime`` builds the state for one underlying."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        config: UnderlyingConfig | None = None,
        timer: Timer | None = None,
        inputs: Sequence[Hashable] = (),
    ) -> None:
        """``timer`` (seconds, e.g. ``time.perf_counter``) is only read when the config sets
        a strategy budget; it is injected so this module never reads a clock itself.
        ``inputs`` (the source's partitions): release by input watermarks (``on_item_from``,
        ``on_progress``; see ``operators.stages.reorder``) instead of the bounded lateness."""
        self.instruments = dict(instruments)
        self.expiries = ExpiryCalendar(self.instruments.values())
        self._drivers = driver_tokens(self.instruments.values())
        self.config = config or UnderlyingConfig()
        self.inputs = tuple(inputs)
        self.buffer: ReorderBuffer[UnderlyingInput] = ReorderBuffer(
            self.config.lateness, self.inputs
        )
        self.market = MarketLogic(self.config.candle)
        self._bars_from_ticks = self.config.bars_from_ticks
        self._forward_ticks = self.config.forward_ticks
        budget = self.config.strategy_budget
        self._timer = timer if budget is not None else None
        self._budget_s = budget.total_seconds() if budget is not None else 0.0

    def underlying_of(self, token: str) -> str | None:
        inst = self.instruments.get(token)
        return inst.underlying if inst is not None else None

    def driver_token(self, underlying: str) -> str:
        """The token whose bars drive strategies: the underlying's index (or its future)."""
        driver = self._drivers.get(underlying)
        if driver is None:
            msg = f"no INDEX or FUT instrument for underlying {underlying!r}"
            raise ValueError(msg)
        return driver

    def new_runtime(self, underlying: str) -> UnderlyingRuntime:
        driver = self.driver_token(underlying)
        chain = OptionChain.from_instruments(
            underlying, driver, [i for i in self.instruments.values() if i.underlying == underlying]
        )
        ctx = StrategyContext(chain=chain)
        return UnderlyingRuntime(
            underlying=underlying,
            driver_token=driver,
            reorder=ReorderState(),
            chain=ChainLogic(underlying, self.config.chain),
            regime=RegimeLogic(
                underlying, self.config.regime, self.config.regime_model, token=driver
            ),
            strategies=[create_strategy(s.name, dict(s.params)) for s in self.config.strategies],
            ctx=ctx,
            view=ContextView(ctx),
        )

    def wants(self, item: UnderlyingInput) -> bool:
        """Only the driver's 1-minute bars and the underlying's ticks matter here."""
        if isinstance(item, Bar):
            if self.config.bars_from_ticks:
                return False
            inst = self.instruments.get(item.candle.token)
            return (
                item.candle.interval == "1m" and inst is not None and inst.kind in ("INDEX", "FUT")
            )
        return item.token in self.instruments

    def on_item(self, rt: UnderlyingRuntime, item: UnderlyingInput) -> list[UnderlyingOutput]:
        if type(item) is Tick:  # sort_key(item), spelled out: this runs for every tick
            tie: tuple[Any, ...] = (_TICK, item.token, item.seq, item.ltp, item.cum_volume)
        else:
            tie = sort_key(item)
        ready = self.buffer.push(rt.reorder, item.ts_event, tie, item)
        if len(ready) == 1:  # the steady state: one tick in, one out
            return self._process(rt, ready[0])
        out: list[UnderlyingOutput] = []
        for each in ready:
            out.extend(self._process(rt, each))
        return out

    def on_item_from(
        self, rt: UnderlyingRuntime, source: Hashable, item: UnderlyingInput
    ) -> list[UnderlyingOutput]:
        """``on_item`` for an item of input ``source`` (input watermarks)."""
        if type(item) is Tick:
            tie: tuple[Any, ...] = (_TICK, item.token, item.seq, item.ltp, item.cum_volume)
        else:
            tie = sort_key(item)
        out = self._process_all(
            rt, self.buffer.push_from(rt.reorder, source, item.ts_event, tie, item)
        )
        return self._close_due_bars(rt, out)

    def on_progress(
        self, rt: UnderlyingRuntime, source: Hashable, ts: datetime
    ) -> list[UnderlyingOutput]:
        """Input ``source`` sends nothing for this underlying before ``ts``."""
        out = self._process_all(rt, self.buffer.progress(rt.reorder, source, ts))
        return self._close_due_bars(rt, out)

    def _close_due_bars(
        self, rt: UnderlyingRuntime, out: list[UnderlyingOutput]
    ) -> list[UnderlyingOutput]:
        """Input watermarks: once the floor passes a bar's end nothing before it can still
        come, so the bar closes now instead of at the next released item. The decisions are
        the same as a replay's (taken on the same state, before that next item); only sooner."""
        if not self._bars_from_ticks:
            return out
        pending = rt.bars.candles.next_end
        if pending is None:
            return out
        floor = self.buffer.floor(rt.reorder)
        if floor is None or floor < pending:
            return out
        for bar in self.market.close_through(rt.bars, floor):
            out.extend(self._on_bar(rt, bar))
        return out

    def output_floor(self, rt: UnderlyingRuntime) -> datetime | None:
        """Input watermarks: nothing this stage emits from now on is before this time (the
        input watermark, or the end of a 1-minute bar that is due but not yet closed)."""
        mark = self.buffer.floor(rt.reorder)
        pending = rt.bars.candles.next_end
        if mark is not None and pending is not None and pending < mark:
            return pending
        return mark

    def on_wall_clock(self, rt: UnderlyingRuntime, now: datetime) -> list[UnderlyingOutput]:
        """Live heartbeat: with input watermarks, count it toward idle inputs; else release
        what is older than ``now`` − lateness (replays never call this, so their output
        depends on data only)."""
        if self.inputs:
            return self._close_due_bars(rt, self._process_all(rt, self.buffer.beat(rt.reorder)))
        return self._process_all(rt, self.buffer.advance(rt.reorder, now - self.config.lateness))

    def _process_all(
        self, rt: UnderlyingRuntime, ready: list[UnderlyingInput]
    ) -> list[UnderlyingOutput]:
        if len(ready) == 1:
            return self._process(rt, ready[0])
        out: list[UnderlyingOutput] = []
        for each in ready:
            out.extend(self._process(rt, each))
        return out

    def on_eof(self, rt: UnderlyingRuntime) -> list[UnderlyingOutput]:
        out: list[UnderlyingOutput] = []
        for ready in self.buffer.flush(rt.reorder):
            out.extend(self._process(rt, ready))
        if self.config.bars_from_ticks and rt.bars.candles.max_ts is not None:
            for bar in self.market.on_eof(rt.bars, ts_recv=rt.bars.candles.max_ts):
                out.extend(self._on_bar(rt, bar))
        return out

    def run(self, underlying: str, items: Iterable[UnderlyingInput]) -> list[UnderlyingOutput]:
        """Everything the stage emits for a finite input, end of input included, as the flow
        would hand it on (offline use: research, benchmarks, tests)."""
        rt = self.new_runtime(underlying)
        out: list[UnderlyingOutput] = []
        for item in items:
            if self.wants(item):
                out += self.on_item(rt, item)
        return out + self.on_eof(rt)

    def _process(self, rt: UnderlyingRuntime, item: UnderlyingInput) -> list[UnderlyingOutput]:
        if isinstance(item, Bar):
            return [] if self._bars_from_ticks else self._on_bar(rt, item)
        out: list[UnderlyingOutput] = []
        inst = self.instruments.get(item.token)
        if inst is None:
            return out
        if self._bars_from_ticks:
            pending = rt.bars.candles.next_end
            if pending is not None and item.ts_event >= pending:
                # the first item at or after a bar's end closes it, before that item is seen
                for closed in self.market.close_through(rt.bars, item.ts_event):
                    out.extend(self._on_bar(rt, closed))
        sweep = rt.expiry_sweep_at
        if sweep is None or item.ts_event >= sweep:
            self._drop_expired(rt, item.ts_event)
        driver = item.token == rt.driver_token
        if driver and self._bars_from_ticks:
            for bar in self.market.on_tick(rt.bars, item):
                if isinstance(bar, Bar):
                    out.extend(self._on_bar(rt, bar))
        analytics = rt.chain.on_tick(item, inst)
        if analytics:
            for event in analytics:
                observe(rt.ctx, event)
                out.append(event)
        if driver:
            for strategy in rt.strategies:
                out.extend(self._call(rt, strategy, item))
        if self._forward_ticks:
            out.append(item)
        return out

    def _drop_expired(self, rt: UnderlyingRuntime, ts: datetime) -> None:
        """Forget the options whose expiry day is over at ``ts``: the chain's legs and quotes,
        and the strategies' context analytics. The context's positions do not name their
        instrument, so while any strategy holds one the analytics wait for the next sweep (an
        open position's data is never dropped)."""
        expiries = self.expiries
        rt.expiry_sweep_at = expiries.next_after(ts)
        rt.chain.drop_expired(ts)
        if not any(p.qty for p in rt.ctx.positions.values()):
            expiries.drop(rt.ctx.analytics, ts)

    def _on_bar(self, rt: UnderlyingRuntime, item: Bar) -> list[UnderlyingOutput]:
        out: list[UnderlyingOutput] = []
        if item.candle.token != rt.driver_token:
            return out
        rt.ctx.bars.append(item)
        if item.indicators.atr14 is not None:
            rt.atr = item.indicators.atr14
        regime = rt.regime.on_bar(item)
        if regime is not None:
            observe(rt.ctx, regime)
            out.append(regime)
        for strategy in rt.strategies:
            out.extend(self._call(rt, strategy, item))
        return out

    def _call(
        self, rt: UnderlyingRuntime, strategy: Strategy[Any, Any], item: Tick | Bar
    ) -> list[UnderlyingOutput]:
        """One strategy call, isolated: an exception (or a result that is not a list of
        signals) disables that strategy with a STRATEGY_FAILED event and the stage goes on;
        with a budget, slow calls are counted (STRATEGY_SLOW, then disabled)."""
        key = strategy.key
        if key in rt.disabled:
            return []
        view: Any = rt.view if rt.view is not None else rt.ctx
        timer = self._timer
        started = timer() if timer is not None else 0.0
        try:
            signals = (
                strategy.on_tick(item, view)
                if isinstance(item, Tick)
                else strategy.on_bar(item, view)
            )
            out: list[UnderlyingOutput] = []
            for signal in signals:
                if not isinstance(signal, SignalGenerated):
                    msg = f"returned {type(signal).__name__}, not a SignalGenerated"
                    raise TypeError(msg)
                out.append(self._enrich(rt, signal))
        except Exception as exc:
            return [self._disable(rt, strategy, item.ts_event, _describe(exc))]
        if timer is not None:
            spent = timer() - started
            if spent > self._budget_s:
                out.extend(self._overrun(rt, strategy, item.ts_event, spent))
        return out

    def _overrun(
        self, rt: UnderlyingRuntime, strategy: Strategy[Any, Any], ts: datetime, spent: float
    ) -> list[UnderlyingOutput]:
        key = strategy.key
        count = rt.overruns.get(key, 0) + 1
        rt.overruns[key] = count
        text = (
            f"call took {spent * 1000:.1f} ms > budget {self._budget_s * 1000:.1f} ms "
            f"(overrun {count} of {self.config.max_overruns})"
        )
        if count >= self.config.max_overruns:
            return [self._disable(rt, strategy, ts, f"TIME_BUDGET: {text}")]
        if count == 1:
            return [self._strategy_event(rt, strategy, ts, "STRATEGY_SLOW", text)]
        return []

    def _disable(
        self, rt: UnderlyingRuntime, strategy: Strategy[Any, Any], ts: datetime, why: str
    ) -> RiskEvent:
        rt.disabled[strategy.key] = why
        return self._strategy_event(rt, strategy, ts, "STRATEGY_FAILED", f"disabled: {why}")

    @staticmethod
    def _strategy_event(
        rt: UnderlyingRuntime, strategy: Strategy[Any, Any], ts: datetime, kind: str, text: str
    ) -> RiskEvent:
        """Account ``""`` and ``strategy`` = the instance key: the flow fans it out to each
        account running that instance (as that account's event, with the strategy's name)."""
        return RiskEvent(
            ts_event=ts,
            ts_recv=ts,
            account="",
            kind=kind,  # type: ignore[arg-type]
            strategy=strategy.key,
            detail=f"{rt.underlying}: {text}",
        )

    @staticmethod
    def _enrich(rt: UnderlyingRuntime, signal: SignalGenerated) -> SignalGenerated:
        spot = rt.chain.state.spot
        analytics = rt.ctx.analytics.get(signal.instrument)
        return msgspec.structs.replace(
            signal,
            underlying_price=round(spot * 100) if spot is not None else 0,
            atr=rt.atr,
            delta=analytics.delta if analytics is not None else None,
        )


def _describe(exc: BaseException) -> str:
    """``Type: message (at file:line)`` of an exception, one line, bounded."""
    text = " ".join(str(exc).split())[:300]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {text}{where}"


_native.picklable(StrategySpec, UnderlyingConfig, UnderlyingRuntime, UnderlyingLogic)
