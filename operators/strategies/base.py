"""The Strategy API: frozen parameters, a small serialisable state, bar and tick handlers.

Why one module (~560 lines): the plugin API a strategy author reads (base class, context,
parameters, deterministic signal ids) in one place.

A strategy instance trades one underlying. The flow's strategy stage (keyed by underlying)
feeds it the underlying's closed bars and ticks in event-time order, together with a
:class:`StrategyContext` (regime, latest option analytics, the option chain, positions), and
journals the :class:`~operators.events.SignalGenerated` events it returns.

Life of a trade, all in event time and on the *underlying's* price:

1. a subclass's ``evaluate_bar`` (or ``evaluate_tick``) returns an :class:`EntryPlan` (why,
   which option rights, exit levels, maximum holding time);
2. the base class checks the gates (regime, cooldown, no open position), maps each right to
   an option contract (ATM moved by ``strike_offset``; see ``option_map``) and emits one
   ``BUY``/``ENTRY`` signal per leg, remembering an :class:`OpenTrade`;
3. every later bar or tick of the underlying is checked against the trade's levels: a bar
   uses its high and low, a tick its last price. The first level touched exits the trade with
   a reason such as ``"TARGET: price=… >= level=…"``, ``"STOP: …"`` or ``"TIMEOUT: …"``;
   one ``SELL``/``EXIT`` signal per leg. If one bar touches both levels, a ``STOP`` wins
   (the conservative reading, since the bar does not say which came first).

Signals are decisions, so their ``ts_recv`` equals ``ts_event`` (the triggering event's
time): journals stay byte-identical between a live run and a replay. ``signal_id`` is derived
from strategy, parameter hash, underlying, instrument, action and time — never random.

The strategy tracks its own view of the trade (it cannot wait for fills, which are decided
downstream); ``ctx.positions`` only blocks a new entry while the account still holds a
position for this strategy (for example after a restart).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from operators.errors import OperatorError
from operators.events import (
    PAISE_PER_RUPEE,
    Bar,
    Interval,
    OptionAnalytics,
    Regime,
    RegimeClassified,
    SignalGenerated,
    Tick,
    to_rupees,
)
from operators.market.sessions import ist_date
from operators.strategies.option_map import OptionChain, OptionRight

STATE_VERSION = 1


class StrategyError(OperatorError):
    """Root of the strategy package's errors (raised at configuration time, never in a flow)."""


class StrategyParamsError(StrategyError, ValueError):
    """Parameters that do not validate."""


class StrategyParams(BaseModel):
    """Parameters every strategy has; subclasses add their thresholds with the issue's defaults.

    Frozen and validated; ``params_hash`` is a stable digest of the values (canonical JSON),
    recorded with every run so results can be tied to the exact configuration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: Interval = Field(default="1m", description="bar interval the strategy decides on")
    strike_offset: int = Field(
        default=0, description="strike steps away from ATM; positive = out of the money"
    )
    expiry_rank: int = Field(default=0, ge=0, description="0 = nearest expiry on or after today")
    regimes: tuple[Regime, ...] | None = Field(
        default=None, description="regimes in which entries are allowed; None = any (even unknown)"
    )
    cooldown_s: float = Field(default=0.0, ge=0, description="no new entry this long after an exit")
    signal_token: str | None = Field(
        default=None,
        description="token whose bars/ticks drive the strategy; None = chain's underlying",
    )

    @property
    def params_hash(self) -> str:
        """16 hex digits of SHA-256 over the canonical JSON of the parameter values."""
        return stable_hash(self.model_dump(mode="json"))


def stable_hash(obj: Any) -> str:
    """SHA-256 (16 hex digits) of ``obj`` as canonical JSON (sorted keys, no spaces)."""
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def strategy_key(name: str, params_hash: str) -> str:
    """Which strategy instance a signal came from: name and parameter hash (the prefix of
    its ``signal_id``), so accounts running the same strategy with other parameters can
    tell their signals apart."""
    return f"{name}-{params_hash[:8]}"


def signal_strategy_key(signal_id: str) -> str:
    """The :func:`strategy_key` a ``signal_id`` starts with."""
    return signal_id.partition(":")[0]


BAR_HISTORY = 500


class PositionLike(Protocol):
    """What a strategy needs to know about an open position (portfolio events fit this)."""

    @property
    def qty(self) -> int: ...


@dataclass(slots=True)
class StrategyContext:
    """Everything a strategy may look at besides the event itself, for one underlying.

    The strategy stage keeps one per underlying and updates it with :func:`observe` as
    ``RegimeClassified`` and ``OptionAnalytics`` events arrive. ``positions`` maps a strategy
    name to its open position (absent or qty 0 = flat). ``event_window`` flags a scheduled
    high-volatility event (RBI policy, budget...) for strategies that care.
    """

    chain: OptionChain
    regime: Regime | None = None
    analytics: dict[str, OptionAnalytics] = field(default_factory=dict)
    positions: dict[str, PositionLike] = field(default_factory=dict)
    event_window: bool = False
    #: the driver's last closed bars, oldest first (bounded: the last ``BAR_HISTORY`` only)
    bars: deque[Bar] = field(default_factory=lambda: deque(maxlen=BAR_HISTORY))

    @property
    def underlying(self) -> str:
        return self.chain.underlying


class ContextLike(Protocol):
    """What a strategy may read of its context: :class:`StrategyContext` itself, or the
    read-only :class:`ContextView` the strategy stage hands to strategies."""

    @property
    def chain(self) -> OptionChain: ...
    @property
    def regime(self) -> Regime | None: ...
    @property
    def analytics(self) -> Mapping[str, OptionAnalytics]: ...
    @property
    def positions(self) -> Mapping[str, PositionLike]: ...
    @property
    def event_window(self) -> bool: ...
    @property
    def bars(self) -> Sequence[Bar]: ...
    @property
    def underlying(self) -> str: ...


class _BarsView(Sequence[Bar]):
    """Read-only window onto the context's bar deque (no copy per call)."""

    __slots__ = ("_bars",)

    def __init__(self, bars: deque[Bar]) -> None:
        self._bars = bars

    def __len__(self) -> int:
        return len(self._bars)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self._bars)[index]
        return self._bars[index]

    def __iter__(self) -> Iterator[Bar]:
        return iter(self._bars)


class ContextView:
    """A read-only view of a :class:`StrategyContext`: what plug-in strategies are given.

    Mappings come as ``MappingProxyType`` and bars as a read-only sequence, built on access
    (nothing is copied, and the view itself holds no state of its own, so it pickles with
    the context). Events inside are frozen structs and the option chain a frozen dataclass.
    This stops accidents, not a determined plug-in (see NOTES.md on isolation).
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: StrategyContext) -> None:
        self._ctx = ctx

    @property
    def chain(self) -> OptionChain:
        return self._ctx.chain

    @property
    def regime(self) -> Regime | None:
        return self._ctx.regime

    @property
    def analytics(self) -> Mapping[str, OptionAnalytics]:
        return MappingProxyType(self._ctx.analytics)

    @property
    def positions(self) -> Mapping[str, PositionLike]:
        return MappingProxyType(self._ctx.positions)

    @property
    def event_window(self) -> bool:
        return self._ctx.event_window

    @property
    def bars(self) -> Sequence[Bar]:
        return _BarsView(self._ctx.bars)

    @property
    def underlying(self) -> str:
        return self._ctx.chain.underlying

    def __getstate__(self) -> StrategyContext:
        return self._ctx

    def __setstate__(self, ctx: StrategyContext) -> None:
        self._ctx = ctx


def observe(ctx: StrategyContext, event: RegimeClassified | OptionAnalytics) -> StrategyContext:
    """Fold a regime or option-analytics event into ``ctx`` (in place); other underlyings are
    ignored. Returns ``ctx`` for chaining."""
    if isinstance(event, RegimeClassified):
        if event.underlying == ctx.underlying:
            ctx.regime = event.regime
    elif event.underlying == ctx.underlying:
        ctx.analytics[event.token] = event
    return ctx


class OpenTrade(msgspec.Struct, frozen=True, kw_only=True):
    """The strategy's own view of a trade it entered, with exit levels on the underlying.

    ``upper``/``lower`` are underlying prices in paise; touching one exits with its reason
    (``TARGET`` or ``STOP``). ``deadline`` is the event time at which the trade times out.
    """

    legs: tuple[str, ...]
    entry_ts: datetime
    entry_price: int
    entry_reason: str
    upper: int | None = None
    upper_reason: str = "TARGET"
    lower: int | None = None
    lower_reason: str = "STOP"
    deadline: datetime | None = None


class StrategyState(msgspec.Struct, frozen=True, kw_only=True):
    """Serialisable state shared by every strategy; subclasses add their own memory.

    Immutable: a handler replaces it, so ``snapshot()`` can return it without copying.
    """

    version: int = STATE_VERSION
    trade: OpenTrade | None = None
    last_exit_ts: datetime | None = None
    last_price: int | None = None


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """A subclass's decision to enter: which option rights to buy, why, and how to get out.

    ``rights``: ``("CE",)`` for a long view, ``("PE",)`` for a short view, both for a
    non-directional (straddle) view. Levels are underlying prices in paise.
    """

    rights: tuple[OptionRight, ...]
    reason: str
    upper: int | None = None
    upper_reason: str = "TARGET"
    lower: int | None = None
    lower_reason: str = "STOP"
    max_hold: timedelta | None = None


P = TypeVar("P", bound=StrategyParams)
S = TypeVar("S", bound=StrategyState)


def rupees(paise: int | float) -> str:
    """Format paise as rupees with two decimals, for reason texts."""
    return f"{to_rupees(paise):.2f}"


def rupee_level_paise(rupees_value: float, pct: float) -> float:
    """``rupees_value`` moved by ``pct`` percent, in paise, with float noise rounded away
    (so 23400 × 1.005 compares equal to a close of exactly ₹23517.00)."""
    return round(rupees_value * (1.0 + pct / 100.0) * PAISE_PER_RUPEE, 6)


def pct_level(price: int, pct: float) -> int:
    """``price`` moved by ``pct`` percent, rounded to the paisa."""
    return round(price * (1.0 + pct / 100.0))


class Strategy(ABC, Generic[P, S]):
    """Base class of every strategy. Subclasses set ``name``, ``Params``, ``State`` and
    override ``evaluate_bar`` (and optionally ``evaluate_tick``/``refresh_trade``).

    >>> from operators.strategies.registry import create_strategy
    >>> s = create_strategy("momentum_breakout", {"target_pct": 0.6})
    >>> s.params.target_pct
    0.6
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    State: ClassVar[type[StrategyState]] = StrategyState

    def __init__(self, params: P | Mapping[str, Any] | None = None, state: S | None = None) -> None:
        self.params: P = self.validate_params(params)
        self.state: S = state if state is not None else self.initial_state()
        if not isinstance(self.state, self.State):
            msg = f"{self.name}: state must be {self.State.__name__}, got {type(self.state)}"
            raise StrategyError(msg)
        self.params_hash = self.params.params_hash
        self.config_hash = stable_hash({"strategy": self.name, "params": self.params_hash})
        self.key = strategy_key(self.name, self.params_hash)

    # ----- configuration -------------------------------------------------------------

    @classmethod
    def validate_params(cls, params: StrategyParams | Mapping[str, Any] | None) -> P:
        """Validate ``params`` (a mapping, an instance of ``Params`` or None = defaults)."""
        if isinstance(params, cls.Params):
            return params  # type: ignore[return-value]
        raw: Mapping[str, Any]
        if params is None:
            raw = {}
        elif isinstance(params, StrategyParams):
            raw = params.model_dump()
        else:
            raw = params
        try:
            return cls.Params.model_validate(dict(raw))  # type: ignore[return-value]
        except ValidationError as exc:
            msg = f"invalid parameters for strategy {cls.name!r}: {exc}"
            raise StrategyParamsError(msg) from exc

    def initial_state(self) -> S:
        return self.State()  # type: ignore[return-value]

    def snapshot(self) -> S:
        """The current state (immutable, so no copy is needed)."""
        return self.state

    def encode_state(self) -> bytes:
        """The state as JSON bytes (for recovery or inspection)."""
        return msgspec.json.encode(self.state)

    @classmethod
    def decode_state(cls, data: bytes) -> S:
        return msgspec.json.decode(data, type=cls.State)  # type: ignore[return-value]

    # ----- hooks for subclasses ------------------------------------------------------

    def evaluate_bar(self, state: S, bar: Bar, ctx: ContextLike) -> tuple[S, EntryPlan | None]:
        """Update the strategy's memory with ``bar``; return an entry plan if it would enter.

        Called on every bar of the driving token and interval, flat or not; the base class
        decides whether a plan is acted on (flat, gates open, contracts exist).
        """
        return state, None

    def evaluate_tick(self, state: S, tick: Tick, ctx: ContextLike) -> tuple[S, EntryPlan | None]:
        """Like ``evaluate_bar`` for ticks of the driving token; built-ins enter on bars only."""
        return state, None

    def refresh_trade(self, state: S, trade: OpenTrade, bar: Bar) -> OpenTrade:
        """Move an open trade's levels on a new bar (e.g. a target that follows VWAP)."""
        return trade

    # ----- handlers --------------------------------------------------------------------

    def driver_token(self, ctx: ContextLike) -> str:
        return self.params.signal_token or ctx.chain.underlying_token

    def on_bar(self, bar: Bar, ctx: ContextLike) -> list[SignalGenerated]:
        """Handle a closed bar: exits first, then a possible entry. Other tokens/intervals
        are ignored."""
        candle = bar.candle
        if candle.token != self.driver_token(ctx) or candle.interval != self.params.interval:
            return []
        state = self.state
        trade = state.trade
        if trade is not None and bar.ts_event > trade.entry_ts:
            state = msgspec.structs.replace(state, trade=self.refresh_trade(state, trade, bar))
        return self._step(
            state,
            bar.ts_event,
            (candle.high, candle.low, candle.close),
            ctx,
            lambda s: self.evaluate_bar(s, bar, ctx),
        )

    def on_tick(self, tick: Tick, ctx: ContextLike) -> list[SignalGenerated]:
        """Handle a tick of the driving token: exit checks on its last price (and entries if a
        subclass plans on ticks). Other tokens are ignored."""
        if tick.token != self.driver_token(ctx) or tick.ltp <= 0:
            return []
        return self._step(
            self.state,
            tick.ts_event,
            (tick.ltp, tick.ltp, tick.ltp),
            ctx,
            lambda s: self.evaluate_tick(s, tick, ctx),
        )

    def _step(
        self,
        state: S,
        ts: datetime,
        prices: tuple[int, int, int],
        ctx: ContextLike,
        evaluate: Callable[[S], tuple[S, EntryPlan | None]],
    ) -> list[SignalGenerated]:
        """The one order of work for bars and ticks: exits on ``prices`` (high, low, last),
        then the subclass's ``evaluate`` and, when nothing exited, its entry plan at last."""
        high, low, last = prices
        out: list[SignalGenerated] = []
        trade = state.trade
        if trade is not None and ts > trade.entry_ts:
            out = self._check_exit(trade, high, low, last, ts, ctx)
            if out:
                state = msgspec.structs.replace(state, trade=None, last_exit_ts=ts)
        state = msgspec.structs.replace(state, last_price=last)
        state, plan = evaluate(state)
        self.state = state
        if plan is not None and not out:
            out = self._enter(plan, last, ts, ctx)
        return out

    # ----- machinery -------------------------------------------------------------------

    def entry_blocked(self, ts: datetime, ctx: ContextLike) -> str | None:
        """Why an entry is not allowed now (None: allowed)."""
        if self.state.trade is not None:
            return "IN_TRADE"
        regimes = self.params.regimes
        if regimes is not None and ctx.regime not in regimes:
            return f"REGIME: {ctx.regime} not in {list(regimes)}"
        last_exit = self.state.last_exit_ts
        if last_exit is not None and (ts - last_exit).total_seconds() < self.params.cooldown_s:
            return "COOLDOWN"
        pos = ctx.positions.get(self.name)
        if pos is not None and pos.qty != 0:
            return "POSITION_OPEN"
        return None

    def _enter(
        self, plan: EntryPlan, price: int, ts: datetime, ctx: ContextLike
    ) -> list[SignalGenerated]:
        if self.entry_blocked(ts, ctx) is not None:
            return []
        day = ist_date(ts)
        legs: list[str] = []
        for right in plan.rights:
            inst = ctx.chain.select(
                price, right, day, self.params.strike_offset, self.params.expiry_rank
            )
            if inst is None:
                return []  # all legs or none: a missing strike means no trade
            legs.append(inst.token)
        deadline = ts + plan.max_hold if plan.max_hold is not None else None
        self.state = msgspec.structs.replace(
            self.state,
            trade=OpenTrade(
                legs=tuple(legs),
                entry_ts=ts,
                entry_price=price,
                entry_reason=plan.reason,
                upper=plan.upper,
                upper_reason=plan.upper_reason,
                lower=plan.lower,
                lower_reason=plan.lower_reason,
                deadline=deadline,
            ),
        )
        return [self._signal(token, "BUY", "ENTRY", plan.reason, ts, ctx) for token in legs]

    def _check_exit(
        self, trade: OpenTrade, high: int, low: int, last: int, ts: datetime, ctx: ContextLike
    ) -> list[SignalGenerated]:
        hit_upper = trade.upper is not None and high >= trade.upper
        hit_lower = trade.lower is not None and low <= trade.lower
        if hit_upper and hit_lower:
            # One bar touched both: assume the worse happened first.
            hit_upper = trade.upper_reason == "STOP" or trade.lower_reason != "STOP"
            hit_lower = not hit_upper
        entry = trade.entry_price
        reason: str | None = None
        if hit_upper and trade.upper is not None:
            reason = (
                f"{trade.upper_reason}: price={rupees(high)} >= level={rupees(trade.upper)} "
                f"entry={rupees(entry)} move={100.0 * (high - entry) / entry:+.3f}%"
            )
        elif hit_lower and trade.lower is not None:
            reason = (
                f"{trade.lower_reason}: price={rupees(low)} <= level={rupees(trade.lower)} "
                f"entry={rupees(entry)} move={100.0 * (low - entry) / entry:+.3f}%"
            )
        elif trade.deadline is not None and ts >= trade.deadline:
            held = (ts - trade.entry_ts).total_seconds()
            limit = (trade.deadline - trade.entry_ts).total_seconds()
            reason = (
                f"TIMEOUT: held={held:.0f}s >= {limit:.0f}s price={rupees(last)} "
                f"entry={rupees(entry)} move={100.0 * (last - entry) / entry:+.3f}%"
            )
        if reason is None:
            return []
        return [self._signal(token, "SELL", "EXIT", reason, ts, ctx) for token in trade.legs]

    def _signal(
        self,
        token: str,
        side: str,
        action: str,
        reason: str,
        ts: datetime,
        ctx: ContextLike,
    ) -> SignalGenerated:
        stamp = ts.strftime("%Y%m%dT%H%M%S.%f%z")
        signal_id = f"{self.key}:{ctx.underlying}:{token}:{action}:{stamp}"
        return SignalGenerated(
            ts_event=ts,
            ts_recv=ts,
            strategy=self.name,
            underlying=ctx.underlying,
            instrument=token,
            side=side,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
            reason=reason,
            signal_id=signal_id,
        )


def parse_param_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Turn CLI ``k=v`` pairs into a params mapping: each value is read as JSON when it
    parses (numbers, ``null``, ``["TRENDING"]``), else kept as a string.

    >>> parse_param_overrides(["target_pct=0.6", "regimes=null", "interval=1s"])
    {'target_pct': 0.6, 'regimes': None, 'interval': '1s'}
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            msg = f"expected key=value, got {pair!r}"
            raise StrategyParamsError(msg)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out
