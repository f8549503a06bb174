"""Market stage wiring: raw messages → validated ticks (or dead letters) → candles → bars.

raw ─ parse/validate/plausible ─┬─ ticks ─ key by token ─ candles + indicators ─┬─ bars
                                └─ dead letters ◄──────────────── late ticks ◄────┘

Every check (``operators.market.validation``) runs in the parse step, before any candle, watermark
or strategy state sees the tick; the ``ticks`` stream the trading stage reads is the plausible
one, in arrival order. The parse step is keyed by *source partition* (``source_key``), not by
token: a source batch holds one partition's records, so keying by partition keeps each batch
whole and in order (keying by token regrouped batches, and the trading stage's bounded
reordering then saw other tokens' ticks late). Its state, the per-instrument price band and
duplicate window (``PartitionPlausibility``; producers key ticks by token, so an instrument
lives in one partition), is snapshotted with the rest: a resumed run keeps its references and
still refuses a duplicate that straddles the restart.
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
from connectors.kafka.replay import ReplayRecord
from connectors.kafka.serde import decode_tick, encode
from flows.adapters import grouped, of_type, run_keyed, values
from flows.exchange import register as _register_exchange
from flows.placement import Placement, name_of
from operators.events import Bar, DeadLetter, Instrument, Tick
from operators.market.candles import CandleConfig, LateTick
from operators.market.expiry import ExpiryCalendar, InstrumentExpired
from operators.market.validation import (
    DEFAULT_CONFIG,
    PartitionPlausibility,
    PlausibilityLogic,
    ValidationConfig,
    tick_problem,
)
from operators.stages.market import MarketLogic, MarketState

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_register_exchange()  # events cross processes as MessagePack (flows.exchange)
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
    """The price band and duplicate checks (``operators.market.validation.PlausibilityLogic``) over
    one partition's per-instrument state ``book`` (a new one unless given)."""

    def __init__(
        self,
        config: ValidationConfig = DEFAULT_CONFIG,
        book: PartitionPlausibility | None = None,
        logic: PlausibilityLogic | None = None,
    ) -> None:
        self.logic = logic if logic is not None else PlausibilityLogic(config)
        self.book = book if book is not None else PartitionPlausibility()
        self.dropped: list[str] = []  # tokens whose state expired, in order

    def check(self, tick: Tick) -> str | None:
        return self.logic.check_in(self.book, tick, self.dropped)


def source_key(msg: RawMessage) -> str:
    """The source partition a raw message came through: its Kafka partition, or ``replay``
    for a replay (``KafkaReplaySource`` is one Bytewax partition merging all of them)."""
    if type(msg) is ReplayRecord:
        return "replay"
    src = msg.msg if isinstance(msg, KafkaError) else msg
    return str(src.partition)


def by_source(
    msgs: Sequence[RawMessage], placement: Placement | None = None
) -> list[tuple[str, list[RawMessage]]]:
    """A source batch as one ``(source partition, records in order)`` per partition: one item
    (a Kafka source batch is one partition's, a replay batch is all ``replay``). With a
    ``placement`` of several workers, a partition's key is chosen to run on the worker that
    reads it (``flows.placement``), so the batch stays on its worker."""
    groups: dict[str, list[RawMessage]] = {}
    for m in msgs:
        key = source_key(m)
        if placement is not None and placement.placed and key != "replay":
            key = placement.partition_key(int(key))
        group = groups.get(key)
        if group is None:
            groups[key] = [m]
        else:
            group.append(m)
    return list(groups.items())


class ParseStage:
    """Keyed (by source partition) parse step: decode, check, stamp; its state is the
    partition's ``PartitionPlausibility``."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument] | None,
        observe: bool,
        config: ValidationConfig,
    ) -> None:
        self.instruments = instruments
        self.observe = observe
        self.config = config
        expiries = ExpiryCalendar(instruments.values()) if instruments is not None else None
        self.expiries = expiries
        self.logic = PlausibilityLogic(config, expiries)

    def new_state(self) -> PartitionPlausibility:
        return PartitionPlausibility()

    def on_item(self, state: PartitionPlausibility, msgs: list[RawMessage]) -> list[Any]:
        plausibility = Plausibility(self.config, state, self.logic)
        parsed = parse_batch(msgs, self.instruments, self.observe, self.config, plausibility)
        out = stamp_batch(msgs, parsed)
        if plausibility.dropped and self.expiries is not None:  # downstream drops theirs too
            gone_at = self.expiries.gone_at
            out.extend(InstrumentExpired(t, gone_at[t]) for t in plausibility.dropped)
        return out

    def on_eof(self, state: PartitionPlausibility) -> list[Any]:
        return []


#: What a token-keyed stage gets: a batch's ticks of the token, or its expiry.
TokenItem = list[Tick] | InstrumentExpired


def is_expiry(item: TokenItem) -> bool:
    """The item after which a token-keyed stage's state is dropped (``run_keyed``)."""
    return type(item) is InstrumentExpired


class MarketStage:
    """Keyed (by instrument token) pure logic for Bytewax: see ``operators.stages.market``."""

    def __init__(self, config: CandleConfig) -> None:
        self.logic = MarketLogic(config)
        self._on_tick = self.logic.on_tick

    is_final = staticmethod(is_expiry)

    def on_item(self, state: MarketState, ticks: TokenItem) -> list[Bar | LateTick]:
        """One source batch's ticks of this token (grouped: one exchange item per token and
        batch, not per tick, when processes exchange them); at its expiry, the bars still
        open (the state is then dropped)."""
        if type(ticks) is InstrumentExpired:
            return list(self.on_eof(state))
        assert isinstance(ticks, list)
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
    ticks: KeyedStream[TokenItem]  # valid ticks by instrument token, a list per batch
    bars: Stream[Bar]
    dead_letters: Stream[DeadLetter]
    sourced: Stream[Sourced]  # the same ticks with their partition and arrival time


def group_by_token(xs: list[Any]) -> list[tuple[str, TokenItem]]:
    """``group_parsed_by_token`` of parse outputs without their partition key, one worker."""
    return group_parsed_by_token([("", x) for x in xs])


def group_parsed_by_token(
    kvs: list[tuple[str, Any]], placement: Placement | None = None
) -> list[tuple[str, TokenItem]]:
    """The ticks of a parsed batch (``(partition key, output)`` of the parse step) as one
    ``(token, ticks in order)`` per token: Bytewax routes and (across processes) pickles each
    item, so a list per key costs one item. An ``InstrumentExpired`` follows as an item of
    its own (after the token's ticks). With a ``placement`` of several workers a token's key
    lands on its partition's worker (``flows.placement``): a tick does not cross processes
    between parse and market stage."""
    if placement is None or not placement.placed:
        out: list[tuple[str, TokenItem]] = []
        out.extend(grouped((x[2].token, x[2]) for _, x in kvs if type(x) is tuple))
        out.extend((x.token, x) for _, x in kvs if type(x) is InstrumentExpired)
        return out
    key = placement.token_key
    out = list(grouped((key(x[2].token, x[0]), x[2]) for _, x in kvs if type(x) is tuple))
    for k, x in kvs:
        if type(x) is InstrumentExpired:
            part = name_of(k)
            out.append((key(x.token, int(part) if part.isdigit() else None), x))
    return out


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
    placement: Placement | None = None,
) -> MarketStreams:
    """Wire the market stage; ``observe_metrics`` off skips Prometheus bookkeeping in a
    process that serves no metrics (backtests, the embedded demo); ``placement``: where the
    parse and market steps' keys run with several workers (``flows.placement``)."""
    by_partition: KeyedStream[list[RawMessage]] = op.flat_map_batch(
        "raw_by_partition", raw, lambda msgs: by_source(msgs, placement)
    )
    stage = ParseStage(instruments, observe_metrics, validation)
    parsed_kv = run_keyed("parse", by_partition, lambda: stage)
    parsed = values("parsed", parsed_kv)
    by_token: KeyedStream[TokenItem] = op.flat_map_batch(
        "valid_by_token", parsed_kv, lambda kvs: group_parsed_by_token(kvs, placement)
    )
    sourced: Stream[Sourced] = op.flat_map_batch(
        "sourced", parsed, lambda xs: [x for x in xs if type(x) is tuple]
    )
    rejected = of_type("rejected", parsed, DeadLetter)
    out = values("market_values", run_keyed("market", by_token, lambda: MarketStage(config)))
    bars = of_type("bars", out, Bar)
    late = op.flat_map_batch("late_to_dlq", out, lambda xs: late_batch(xs, observe_metrics))
    dead_letters = op.merge("dead_letters", rejected, late)
    return MarketStreams(ticks=by_token, bars=bars, dead_letters=dead_letters, sourced=sourced)
