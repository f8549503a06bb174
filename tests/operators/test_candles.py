"""Candles by event time: boundaries, lateness, gaps, volume and OHLC invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from operators.events import Candle, Tick
from operators.market.candles import CandleConfig, CandleLogic, CandleState, window_start

T0 = datetime(2026, 7, 1, 4, 0, 0, tzinfo=UTC)  # 09:30 IST


def tick(sec: float, ltp: int, cum: int = 0, qty: int = 0, token: str = "1") -> Tick:
    ts = T0 + timedelta(seconds=sec)
    return Tick(
        ts_event=ts, ts_recv=ts, token=token, exchange="NFO", ltp=ltp, last_qty=qty, cum_volume=cum
    )


def run(ticks: list[Tick], lateness: float = 2.0, intervals=("1s", "1m")):
    logic = CandleLogic(
        CandleConfig(intervals=intervals, allowed_lateness=timedelta(seconds=lateness))
    )
    state = CandleState()
    candles: list[Candle] = []
    late = []
    for t in ticks:
        c, lt = logic.on_tick(state, t)
        candles += c
        late += lt
    candles += logic.flush(state, ts_recv=T0)
    return candles, late, state


def test_window_start_floors_to_second_and_minute() -> None:
    ts = T0 + timedelta(seconds=75, microseconds=999_999)
    assert window_start(ts, "1s") == T0 + timedelta(seconds=75)
    assert window_start(ts, "1m") == T0 + timedelta(minutes=1)


def test_boundaries_belong_to_the_window_they_start() -> None:
    ticks = [tick(0, 100, 10), tick(59.999, 110, 12), tick(60, 120, 15), tick(61, 90, 20)]
    candles, late, _ = run(ticks, intervals=("1m",))
    assert late == []
    assert [(c.start, c.open, c.high, c.low, c.close) for c in candles] == [
        (T0, 100, 110, 100, 110),
        (T0 + timedelta(minutes=1), 120, 120, 90, 90),
    ]
    assert candles[0].ts_event == T0 + timedelta(minutes=1)
    # first tick contributes 0 (no last_qty), then cumulative increases
    assert [c.volume for c in candles] == [2, 8]
    assert candles[1].vwap == (120 * 3 + 90 * 5) / 8


def test_window_closes_only_when_watermark_passes_its_end() -> None:
    logic = CandleLogic(CandleConfig(intervals=("1s",), allowed_lateness=timedelta(seconds=2)))
    state = CandleState()
    assert logic.on_tick(state, tick(0.5, 100))[0] == []
    assert logic.on_tick(state, tick(2.9, 101))[0] == []  # watermark 0.9 < end 1.0
    closed, _ = logic.on_tick(state, tick(3.0, 102))  # watermark 1.0 == end of [0, 1)
    assert [c.start for c in closed] == [T0]


def test_out_of_order_within_lateness_is_merged_by_event_time() -> None:
    ticks = [tick(10, 100, 1), tick(12, 105, 2), tick(11, 95, 3), tick(5, 90, 4)]
    candles, late, state = run(ticks, lateness=10, intervals=("1m",))
    assert late == []
    assert state.late_ticks == 0
    (c,) = candles
    # open is the earliest by ts_event (t=5), close the latest (t=12)
    assert (c.open, c.high, c.low, c.close, c.ticks) == (90, 105, 90, 105, 4)


def test_late_tick_beyond_lateness_is_reported_not_merged() -> None:
    ticks = [tick(0, 100, 1), tick(1, 101, 2), tick(5, 102, 3), tick(0.5, 50, 4)]
    candles, late, state = run(ticks, lateness=2, intervals=("1s",))
    assert state.late_ticks == 1
    assert len(late) == 1
    assert late[0].tick.ltp == 50
    assert "LATE_TICK" in late[0].reason
    assert all(c.low != 50 for c in candles)  # a published candle never changes
    assert [c.start for c in candles] == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)]


def test_gaps_produce_no_empty_candles() -> None:
    ticks = [tick(0, 100), tick(185, 110)]
    candles, _, _ = run(ticks, intervals=("1m",))
    assert [c.start for c in candles] == [T0, T0 + timedelta(minutes=3)]


def test_both_intervals_from_one_pass() -> None:
    ticks = [tick(s * 0.5, 100 + s) for s in range(240)]
    candles, _, _ = run(ticks)
    by = {
        "1s": [c for c in candles if c.interval == "1s"],
        "1m": [c for c in candles if c.interval == "1m"],
    }
    assert len(by["1s"]) == 120
    assert len(by["1m"]) == 2
    assert sum(c.ticks for c in by["1s"]) == sum(c.ticks for c in by["1m"]) == 240


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 300, allow_nan=False), st.integers(5, 10_000), st.integers(0, 50)),
        min_size=1,
        max_size=80,
    ),
    st.floats(0, 30),
)
def test_ohlc_invariants_and_no_tick_lost(raw, lateness) -> None:
    cum = 0
    ticks = []
    for sec, price, qty in raw:
        cum += qty
        ticks.append(tick(sec, price, cum))
    candles, late, _state = run(ticks, lateness=lateness)
    for c in candles:
        assert c.low <= c.open <= c.high
        assert c.low <= c.close <= c.high
        assert c.low <= c.vwap <= c.high
        assert c.volume >= 0
    for interval in ("1s", "1m"):
        merged = sum(c.ticks for c in candles if c.interval == interval)
        lost = sum(1 for lt in late if lt.interval == interval)
        assert merged + lost == len(ticks)
    starts = [(c.interval, c.start) for c in candles]
    assert len(starts) == len(set(starts))  # every window emitted once
