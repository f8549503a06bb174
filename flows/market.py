"""Market stage wiring: raw messages → validated ticks (or dead letters) → candles → bars.

raw ─ parse/validate/plausible ─┬─ ticks ─ key by token ─ candles + indicators ─┬─ bars
                                └─ dead letters ◄──────────────── late ticks ◄────┘

Every check (``operators.validation``) runs in the parse step, before any candle, watermark or
strategy state sees the tick; the ``ticks`` stream the trading stage reads is the plausible
one, in arrival order (a keyed step would regroup a batch by token, and the trading stage's
bounded reordering would then see other tokens' ticks late). The per-instrument part (price
band, duplicates) keeps its state in the parse step of the process that reads the
instrument's partition (producers key ticks by token); that state is not in recovery
snapshots: a resumed run starts a fresh band reference and duplicate window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.dataflow import Stream
from bytewax.operators import KeyedStream

from connectors import metrics
from connectors.replay import ReplayRecord
from connectors.serde import decode_tick, encode
from flows.adapters import grouped, of_type, run_keyed, values
from operators.candles import CandleConfig, LateTick
from operators.events import Bar, DeadLetter, Instrument, Tick
from operators.market import MarketLogic, MarketState
from operators.validation import (
    DEFAULT_CONFIG,
    PlausibilityLogic,
    PlausibilityState,
    ValidationConfig,
    tick_problem,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
log = logging.getLogger(__name__)


# A live Kafka message (or a consumer error), or a replayed record: both carry key, value,
# topic, partition and offset.
RawMessage = (
    KafkaSourceMessage[bytes | None, bytes | None]
    | KafkaError[bytes | None, bytes | None]
    | ReplayRecord
)


MAX_REASON = 500  # characters of a dead letter's reason (it quotes input: bound it)


def clean_reason(reason: str) -> str:
    """A reason safe in a Kafka header and a PostgreSQL ``text`` column: printable, no NUL,
    bounded (a reason may quote a field name or value taken from the bad input)."""
    if reason.isprintable() and len(reason) <= MAX_REASON:
        return reason
    safe = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in reason[:MAX_REASON])
    return safe[:MAX_REASON]


def parse_message(
    msg: RawMessage,
    instruments: Mapping[str, Instrument] | None,
    config: ValidationConfig = DEFAULT_CONFIG,
    plausibility: Plausibility | None = None,
) -> Tick | DeadLetter:
    """Decode and check one raw message (against the instrument's band and recent ticks too
    when given ``plausibility``); anything unusable becomes a ``DeadLetter``, and so does a
    message on which a check itself fails (a bug must not stop the flow on one record)."""
    try:
        return _parse_message(msg, instruments, config, plausibility)
    except Exception as exc:
        log.exception("validation failed on a message; sent to the dead-letter topic")
        src = msg.msg if isinstance(msg, KafkaError) else msg
        return DeadLetter(
            reason=clean_reason(f"INTERNAL_ERROR: {type(exc).__name__}: {exc}"),
            raw=src.value or b"",
            key=src.key,
            source_topic=src.topic or "",
            source_partition=src.partition if src.partition is not None else -1,
            source_offset=src.offset if src.offset is not None else -1,
        )


def _parse_message(
    msg: RawMessage,
    instruments: Mapping[str, Instrument] | None,
    config: ValidationConfig,
    plausibility: Plausibility | None,
) -> Tick | DeadLetter:
    if isinstance(msg, KafkaError):
        src = msg.msg
        return DeadLetter(
            reason=clean_reason(f"KAFKA_ERROR: {msg.err}"),
            raw=src.value or b"",
            key=src.key,
            source_topic=src.topic or "",
            source_partition=src.partition if src.partition is not None else -1,
            source_offset=src.offset if src.offset is not None else -1,
        )
    raw = msg.value
    reason: str | None
    if raw is not None and len(raw) > config.max_payload_bytes:
        # keep only the head: a dead letter must fit the DLQ topic's record size limit
        reason = f"PAYLOAD_TOO_LARGE: {len(raw)} bytes > {config.max_payload_bytes}"
        raw = raw[: config.max_payload_bytes]
    else:
        decoded = decode_tick(raw, strict=config.strict)
        if isinstance(decoded, Tick):
            reason = tick_problem(decoded, instruments, config)
            if reason is None and plausibility is not None:
                reason = plausibility.check(decoded)
            if reason is None:
                return decoded
        else:
            reason = decoded
    return DeadLetter(
        reason=clean_reason(reason),
        raw=raw or b"",
        key=msg.key,
        source_topic=msg.topic or "",
        source_partition=msg.partition if msg.partition is not None else -1,
        source_offset=msg.offset if msg.offset is not None else -1,
    )


def late_to_dead_letter(late: LateTick) -> DeadLetter:
    """A late tick keeps a deterministic natural key: (token, interval, event time in µs)."""
    tick = late.tick
    micros = (tick.ts_event - EPOCH) // _MICRO
    return DeadLetter(
        reason=late.reason,
        raw=encode(tick),
        key=tick.token.encode(),
        source_topic=f"late-{late.interval}:{tick.token}",
        source_partition=-1,
        source_offset=micros,
    )


_MICRO = timedelta(microseconds=1)


class Plausibility:
    """Per-instrument state of the price band and duplicate checks
    (``operators.validation.PlausibilityLogic``) for one flow's parse step."""

    def __init__(self, config: ValidationConfig = DEFAULT_CONFIG) -> None:
        self.logic = PlausibilityLogic(config)
        self.states: dict[str, PlausibilityState] = {}

    def check(self, tick: Tick) -> str | None:
        state = self.states.get(tick.token)
        if state is None:
            state = self.states[tick.token] = PlausibilityState()
        return self.logic.check(state, tick)


class MarketStage:
    """Keyed (by instrument token) pure logic for Bytewax: see ``operators.market``."""

    def __init__(self, config: CandleConfig) -> None:
        self.logic = MarketLogic(config)
        self._on_tick = self.logic.on_tick

    def on_item(self, state: MarketState, ticks: list[Tick]) -> list[Bar | LateTick]:
        """One source batch's ticks of this token (grouped: one exchange item per token and
        batch, not per tick, when processes exchange them)."""
        on_tick = self._on_tick
        if len(ticks) == 1:
            return on_tick(state, ticks[0])
        out: list[Bar | LateTick] = []
        for tick in ticks:
            out.extend(on_tick(state, tick))
        return out

    def new_state(self) -> MarketState:
        return MarketState()

    def on_eof(self, state: MarketState) -> Iterable[Bar | LateTick]:
        last = state.candles.max_ts or EPOCH
        return self.logic.on_eof(state, ts_recv=last)


#: A valid tick with where and when it was consumed: (source partition or None, wall-clock
#: arrival in epoch seconds, tick). The partition is the input id of the trading stage's input
#: watermarks (live Kafka only; a replay merges partitions itself); the arrival time feeds the
#: tick → signal/fill latency metrics and never a decision.
Sourced = tuple[int | None, float, Tick]


@dataclass(frozen=True)
class MarketStreams:
    ticks: KeyedStream[list[Tick]]  # valid ticks by instrument token, a list per batch
    bars: Stream[Bar]
    dead_letters: Stream[DeadLetter]
    sourced: Stream[Sourced]  # the same ticks with their partition and arrival time


def group_by_token(xs: list[Any]) -> list[tuple[str, list[Tick]]]:
    """The ticks of a parsed batch as one ``(token, ticks in order)`` per token (``grouped``)."""
    return grouped((x[2].token, x[2]) for x in xs if type(x) is tuple)


def stamp_batch(msgs: Sequence[RawMessage], parsed: list[Tick | DeadLetter]) -> list[Any]:
    """Ticks of a parsed source batch as ``Sourced`` (one wall-clock read per batch; only a
    live Kafka message names its partition); dead letters unchanged."""
    arrived = time.time()
    return [
        (m.partition if type(m) is KafkaSourceMessage else None, arrived, p)
        if type(p) is Tick
        else p
        for m, p in zip(msgs, parsed, strict=True)
    ]


def parse_batch(
    msgs: Sequence[RawMessage],
    instruments: Mapping[str, Instrument] | None,
    observe: bool = True,
    config: ValidationConfig = DEFAULT_CONFIG,
    plausibility: Plausibility | None = None,
) -> list[Tick | DeadLetter]:
    """``parse_message`` over a source batch, observing tick and dead-letter metrics unless
    ``observe`` is off (a process that exposes no metrics endpoint)."""
    parsed = [parse_message(m, instruments, config, plausibility) for m in msgs]
    if not observe:
        return parsed
    ticks = [p for p in parsed if isinstance(p, Tick)]
    metrics.observe_ticks(ticks)
    if len(ticks) != len(parsed):
        for p in parsed:
            if isinstance(p, DeadLetter):
                metrics.observe_dead_letter(p)
    return parsed


def late_batch(items: Sequence[Bar | LateTick], observe: bool = True) -> list[DeadLetter]:
    """The late ticks among the market stage's outputs, as (counted) dead letters."""
    late = [late_to_dead_letter(x) for x in items if isinstance(x, LateTick)]
    if observe:
        for d in late:
            metrics.observe_dead_letter(d)
    return late


def market_stage(
    raw: Stream[KafkaSourceMessage[bytes | None, bytes | None]],
    instruments: Mapping[str, Instrument] | None,
    config: CandleConfig,
    observe_metrics: bool = True,
    validation: ValidationConfig = DEFAULT_CONFIG,
) -> MarketStreams:
    """Wire the market stage; ``observe_metrics`` off skips Prometheus bookkeeping in a
    process that serves no metrics (backtests, the embedded demo)."""
    plausibility = Plausibility(validation)
    parsed = op.flat_map_batch(
        "parse",
        raw,
        lambda msgs: stamp_batch(
            msgs, parse_batch(msgs, instruments, observe_metrics, validation, plausibility)
        ),
    )
    by_token: KeyedStream[list[Tick]] = op.flat_map_batch("valid_by_token", parsed, group_by_token)
    sourced: Stream[Sourced] = op.flat_map_batch(
        "sourced", parsed, lambda xs: [x for x in xs if type(x) is tuple]
    )
    rejected = of_type("rejected", parsed, DeadLetter)
    out = values("market_values", run_keyed("market", by_token, lambda: MarketStage(config)))
    bars = of_type("bars", out, Bar)
    late = op.flat_map_batch("late_to_dlq", out, lambda xs: late_batch(xs, observe_metrics))
    dead_letters = op.merge("dead_letters", rejected, late)
    return MarketStreams(ticks=by_token, bars=bars, dead_letters=dead_letters, sourced=sourced)
