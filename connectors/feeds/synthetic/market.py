"""``SyntheticMarket``: a seeded NSE index + weekly option chain day, as Ticks or wire bytes.

Generation is vectorised numpy per instrument; instruments are merged by exchange time with
a deterministic tie-break (time, instrument, sequence). ``Tick`` objects and encoded messages
are built lazily while iterating, so a full day (~2M ticks) is held as arrays only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import NamedTuple

import msgspec
import numpy as np

from connectors.feeds.synthetic.chain import (
    Columns,
    build_instruments,
    index_ticks,
    option_ticks,
    session_start_utc,
)
from connectors.feeds.synthetic.config import CORRUPT_KINDS, FAULT_KINDS, SyntheticConfig
from connectors.feeds.synthetic.faults import FaultWindow, Wire, build_wire, code_of, kind_of
from connectors.feeds.synthetic.paths import (
    REGIMES,
    MarketPaths,
    Scenario,
    Streams,
    generate_paths,
)
from operators.events import Candle, Instrument, Regime, Tick
from operators.market.candles import CandleConfig, CandleLogic, CandleState

_CHUNK = 32_768
_MISSING_FIELDS = ("ltp", "token", "ts_event")
UNKNOWN_TOKEN = "999999"


class RawMessage(NamedTuple):
    """One message as the feed would put it on Kafka (timestamp = event time, ms)."""

    key: bytes
    value: bytes
    timestamp_ms: int
    fault: str | None


#: When the generator planted each strategy condition (UTC-aware).
ScenarioTimes = Scenario[datetime]


@dataclass(frozen=True)
class FaultRecord:
    """A gap or blow-out window and how many ticks it touched."""

    kind: str
    start: datetime
    end: datetime
    ticks: int


class SyntheticMarket:
    """A deterministic synthetic market day: same ``(seed, date, config)``, same bytes.

    >>> m = SyntheticMarket(SyntheticConfig(seed=1, duration_minutes=5, strikes_each_side=2))
    >>> m.instruments()[0].symbol
    'NIFTY'
    """

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self._config = config or SyntheticConfig()
        self._streams = Streams(self._config)
        self._instruments = build_instruments(self._config)
        self._start = session_start_utc(self._config)

    @property
    def config(self) -> SyntheticConfig:
        return self._config

    @property
    def start(self) -> datetime:
        """Session start (UTC-aware); ``t_us`` offsets are measured from here."""
        return self._start

    @property
    def end(self) -> datetime:
        return self._start + timedelta(minutes=self._config.minutes)

    def instruments(self) -> list[Instrument]:
        """The index first, then CE/PE pairs by ascending strike."""
        return list(self._instruments)

    @cached_property
    def _paths(self) -> MarketPaths:
        return generate_paths(self._config, self._streams)

    def true_regimes(self) -> dict[datetime, Regime]:
        """The regime the generator used for each minute, keyed by minute start (UTC)."""
        return {
            self._start + timedelta(minutes=m): REGIMES[int(r)]  # type: ignore[misc]
            for m, r in enumerate(self._paths.regimes)
        }

    def scenario(self) -> ScenarioTimes:
        return self._paths.scenario.map(lambda s: self._start + timedelta(seconds=s))

    @cached_property
    def _clean(self) -> Columns:
        """All instruments' ticks merged by (time, instrument, sequence)."""
        cfg = self._config
        idx_cols, index_state = index_ticks(cfg, self._paths, self._streams)
        parts = [idx_cols]
        for i, inst in enumerate(self._instruments[1:], start=1):
            parts.append(option_ticks(cfg, self._paths, index_state, inst, i, self._streams))
        merged = Columns.concat(parts)
        del parts
        merged.reorder(np.lexsort((merged.seq, merged.inst, merged.t_us)))
        return merged

    @cached_property
    def _wire(self) -> Wire:
        clean = self._clean
        recv = clean.t_us + clean.lat_us
        span_us = self._config.minutes * 60_000_000
        rng = self._streams.rng(Streams.FAULTS)
        wire = build_wire(clean, recv, self._config.faults, rng, span_us)
        del self.__dict__["_clean"]  # the wire owns the data now
        return wire

    def generate(self) -> SyntheticMarket:
        """Generate the arrays now (otherwise done on first use); returns self."""
        _ = self._wire
        return self

    def __len__(self) -> int:
        """Number of valid ticks ``ticks()`` yields."""
        return int(np.count_nonzero(~self._corrupt_mask()))

    @property
    def raw_count(self) -> int:
        """Number of messages ``raw_messages()`` yields."""
        return len(self._wire.code)

    def _corrupt_mask(self) -> np.ndarray:
        return np.isin(self._wire.code, [code_of(k) for k in CORRUPT_KINDS])

    def fault_counts(self) -> dict[str, int]:
        """How many emitted messages carry each fault (gaps: ticks removed)."""
        counts = np.bincount(self._wire.code, minlength=len(FAULT_KINDS) + 1)
        out = {kind: int(counts[i + 1]) for i, kind in enumerate(FAULT_KINDS)}
        out["feed_gap"] = sum(w.ticks for w in self._wire.windows if w.kind == "feed_gap")
        return out

    def fault_windows(self) -> list[FaultRecord]:
        return [self._record(w) for w in self._wire.windows]

    def _record(self, w: FaultWindow) -> FaultRecord:
        start = self._start + timedelta(microseconds=w.start_us)
        return FaultRecord(w.kind, start, self._start + timedelta(microseconds=w.end_us), w.ticks)

    def _rows(self, include_corrupt: bool) -> Iterator[tuple[Tick, int, int]]:
        wire = self._wire
        c = wire.cols
        tokens = [i.token for i in self._instruments]
        exchanges = [i.exchange for i in self._instruments]
        start = self._start
        td = timedelta
        corrupt = self._corrupt_mask()
        for lo in range(0, len(wire.code), _CHUNK):
            sl = slice(lo, lo + _CHUNK)
            rows = zip(
                c.t_us[sl].tolist(),
                wire.recv_us[sl].tolist(),
                c.inst[sl].tolist(),
                c.ltp[sl].tolist(),
                c.last_qty[sl].tolist(),
                c.cum_volume[sl].tolist(),
                c.bid[sl].tolist(),
                c.ask[sl].tolist(),
                c.bid_qty[sl].tolist(),
                c.ask_qty[sl].tolist(),
                c.oi[sl].tolist(),
                c.seq[sl].tolist(),
                wire.code[sl].tolist(),
                corrupt[sl].tolist(),
                strict=True,
            )
            for t, r, i, ltp, lq, cv, bid, ask, bq, aq, oi, seq, code, bad in rows:
                if bad and not include_corrupt:
                    continue
                tick = Tick(
                    ts_event=start + td(microseconds=t),
                    ts_recv=start + td(microseconds=r),
                    token=tokens[i],
                    exchange=exchanges[i],
                    ltp=ltp,
                    last_qty=lq,
                    cum_volume=cv,
                    bid=bid,
                    ask=ask,
                    bid_qty=bq,
                    ask_qty=aq,
                    oi=oi,
                    seq=seq,
                )
                yield tick, code, t

    def ticks(self) -> Iterator[Tick]:
        """Valid ticks in emission order: by ``ts_event`` unless late/out-of-order faults are on.

        Includes late, out-of-order, duplicate and blow-out ticks when those faults are enabled;
        never the corrupt kinds (those exist only in ``raw_messages``).
        """
        for tick, _code, _t in self._rows(include_corrupt=False):
            yield tick

    def index_candles(self) -> list[Candle]:
        """The index's 1-minute candles over the session, closed as the market stage closes
        them (the last one by the last index tick): what regime training and its checks read
        against ``true_regimes``."""
        logic = CandleLogic(CandleConfig(intervals=("1m",)))
        state = CandleState()
        candles: list[Candle] = []
        last = None
        for tick in self.ticks():
            if tick.token == self.config.index_token:
                candles += logic.on_tick(state, tick)[0]
                last = tick
        if last is not None:
            candles += logic.flush(state, last.ts_recv)
        return candles

    def raw_messages(self) -> Iterator[RawMessage]:
        """Every message on the wire: ``msgspec.json.encode(tick)``, byte-mutated when faulty."""
        encode = msgspec.json.encode
        unknown = code_of("unknown_token")
        invalid = code_of("invalid_json")
        missing = code_of("missing_field")
        mutation_rng = self._streams.rng(Streams.FAULTS, 1)
        start_ms = (self._start - _EPOCH) // timedelta(milliseconds=1)
        for tick, code, t_us in self._rows(include_corrupt=True):
            if code == unknown:
                tick = msgspec.structs.replace(tick, token=UNKNOWN_TOKEN)
            value = encode(tick)
            if code == invalid:
                value = value[: int(mutation_rng.integers(1, len(value) - 1))]
            elif code == missing:
                obj = msgspec.json.decode(value)
                del obj[_MISSING_FIELDS[int(mutation_rng.integers(0, len(_MISSING_FIELDS)))]]
                value = encode(obj)
            if code:
                yield RawMessage(tick.token.encode(), value, start_ms + t_us // 1000, kind_of(code))
            else:
                yield RawMessage(tick.token.encode(), value, start_ms + t_us // 1000, None)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
