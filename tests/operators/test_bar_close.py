"""The strategy stage decides on a 1-minute bar at its end, on what was known before it.

Before issue 19 the driver's bar closed only after the candle lateness (2 s) had passed in
event time, so a decision stamped with the bar's end had already seen 2 s of later chain and
spot updates (lookahead in a replay, a 2 s wait in a live run). Now the bar closes at the first
released item at or after its end, or, live, as soon as every input is past its end.
"""

from __future__ import annotations

import random
import zlib
from datetime import datetime, timedelta

import msgspec
import pytest

from operators.events import Instrument, OptionAnalytics, RegimeClassified, SignalGenerated, Tick
from operators.market.candles import CandleConfig
from operators.stages.underlying import UnderlyingConfig, UnderlyingLogic, UnderlyingOutput
from tests.markets import synthetic_market

SOURCES = (0, 1, 2)


def _config() -> UnderlyingConfig:
    return UnderlyingConfig(
        bars_from_ticks=True, forward_ticks=True, candle=CandleConfig(intervals=("1m",))
    )


@pytest.fixture(scope="module")
def session() -> tuple[dict[str, Instrument], list[Tick]]:
    market = synthetic_market(11, minutes=45, strikes=3, rate=0.3, index_rate=1.0)
    return {i.token: i for i in market.instruments()}, list(market.ticks())


def _source(tick: Tick) -> int:
    """The Kafka partition a tick would come from (keyed by instrument)."""
    return zlib.crc32(tick.token.encode()) % len(SOURCES)


def _is_decision(ev: object) -> bool:
    return isinstance(ev, RegimeClassified | SignalGenerated)


def test_a_decision_on_a_bar_comes_before_any_data_from_after_its_end(session) -> None:
    instruments, ticks = session
    logic = UnderlyingLogic(instruments, _config())
    out = logic.run("NIFTY", ticks)
    regimes = [ev for ev in out if isinstance(ev, RegimeClassified)]
    assert len(regimes) >= 10
    latest_data: datetime | None = None  # the newest tick or analytics emitted so far
    for ev in out:
        if isinstance(ev, Tick | OptionAnalytics):
            latest_data = ev.ts_event if latest_data is None else max(latest_data, ev.ts_event)
        elif _is_decision(ev) and ev.ts_event.second == 0 and ev.ts_event.microsecond == 0:
            assert latest_data is not None
            assert latest_data < ev.ts_event, (ev, latest_data)


def _live(logic: UnderlyingLogic, ticks: list[Tick], rnd: random.Random) -> list[UnderlyingOutput]:
    """The ticks as a live run hands them over: per partition in order, partitions
    interleaved in random chunks, with progress markers from partitions that have nothing."""
    rt = logic.new_runtime("NIFTY")
    queues = {s: [t for t in ticks if _source(t) == s] for s in SOURCES}
    pos = dict.fromkeys(SOURCES, 0)
    out: list[UnderlyingOutput] = []
    while any(pos[s] < len(queues[s]) for s in SOURCES):
        s = rnd.choice([s for s in SOURCES if pos[s] < len(queues[s])])
        chunk = queues[s][pos[s] : pos[s] + rnd.randint(1, 40)]
        pos[s] += len(chunk)
        for tick in chunk:
            out += logic.on_item_from(rt, s, tick)
        if pos[s] < len(queues[s]):  # its next tick is no earlier than this
            out += logic.on_progress(rt, s, queues[s][pos[s]].ts_event)
        else:  # done: nothing more from it
            out += logic.on_progress(rt, s, chunk[-1].ts_event + timedelta(days=1))
    return out + logic.on_eof(rt)


@pytest.mark.parametrize("seed", [1, 2])
def test_live_inputs_give_exactly_the_replay_outputs(session, seed: int) -> None:
    """Bars closed by the input floor (no following tick yet) or by the next item: the same
    decisions, on the same state, in the same order."""
    instruments, ticks = session
    replay = UnderlyingLogic(instruments, _config()).run("NIFTY", ticks)
    live_logic = UnderlyingLogic(instruments, _config(), inputs=SOURCES)
    live = _live(live_logic, ticks, random.Random(seed))
    assert sum(map(_is_decision, live)) >= 10
    assert msgspec.msgpack.encode(live) == msgspec.msgpack.encode(replay)


def test_the_input_floor_closes_a_bar_before_any_later_tick_arrives(session) -> None:
    instruments, ticks = session
    logic = UnderlyingLogic(instruments, _config(), inputs=SOURCES)
    rt = logic.new_runtime("NIFTY")
    end = ticks[0].ts_event.replace(second=0, microsecond=0) + timedelta(minutes=40)
    for tick in (t for t in ticks if t.ts_event < end):
        logic.on_item_from(rt, _source(tick), tick)
    for s in SOURCES[:-1]:
        assert not any(map(_is_decision, logic.on_progress(rt, s, end)))
    # the last input reports it is past the end: the bar closes now, with no tick after it
    closed = logic.on_progress(rt, SOURCES[-1], end)
    decisions = [ev for ev in closed if _is_decision(ev)]
    assert [ev.ts_event for ev in decisions if isinstance(ev, RegimeClassified)] == [end]
    assert logic.output_floor(rt) == end
