"""Feed health: sustained lag, stalls and recovery, all driven by the timestamps passed in."""

from __future__ import annotations

import dataclasses
import pickle
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from operators.events import Tick
from operators.trading.feed_health import FeedHealthConfig, FeedHealthLogic

T0 = datetime(2026, 3, 3, 4, 0, tzinfo=UTC)


def _tick(token: str, ts: datetime, lag_ms: float) -> Tick:
    return Tick(
        ts_event=ts,
        ts_recv=ts + timedelta(milliseconds=lag_ms),
        token=token,
        exchange="NFO",
        ltp=10_000,
    )


def _run(logic: FeedHealthLogic, lags: Sequence[float], token: str = "A", start: datetime = T0):
    events = []
    for i, lag in enumerate(lags):
        events += logic.observe(_tick(token, start + timedelta(milliseconds=250 * i), lag))
    return events


def test_short_lag_spikes_do_not_alert() -> None:
    logic = FeedHealthLogic()
    lags = [20, 900, 800, 30, 700, 950, 600, 900, 10] * 5  # never 5 slow ticks in a row
    assert _run(logic, lags) == []
    assert logic.lag_ms("A") == pytest.approx(10.0)


def test_sustained_lag_emits_one_lagging_event_then_recovers() -> None:
    logic = FeedHealthLogic(FeedHealthConfig(lag_threshold_ms=500, lag_ticks=5))
    events = _run(logic, [50] * 3 + [800] * 12 + [40] * 3 + [900] + [40] * 5)
    kinds = [(e.kind, e.instrument) for e in events]
    assert kinds == [("FEED_LAGGING", "A"), ("FEED_RECOVERED", "A")]
    lagging, recovered = events
    assert lagging.account == "*"
    assert "lag_ms=800" in lagging.detail
    assert "threshold_ms=500" in lagging.detail
    # the alert fires on the 5th slow tick (index 7) and recovery on the 5th good tick after
    assert lagging.ts_event == T0 + timedelta(milliseconds=250 * 7)
    assert recovered.ts_event == T0 + timedelta(milliseconds=250 * 23)


def test_lag_is_tracked_per_instrument() -> None:
    logic = FeedHealthLogic(FeedHealthConfig(lag_ticks=3))
    events = []
    for i in range(6):  # A is slow, B is fast, interleaved
        ts = T0 + timedelta(milliseconds=100 * i)
        events += logic.observe(_tick("A", ts, 700))
        events += logic.observe(_tick("B", ts, 5))
    assert [(e.kind, e.instrument) for e in events] == [("FEED_LAGGING", "A")]
    assert logic.lag_ms("B") == pytest.approx(5.0)


def test_stall_and_recovery_on_event_time() -> None:
    logic = FeedHealthLogic(FeedHealthConfig(stall_after_s=10))
    assert logic.check_stalled(T0) == []  # nothing seen yet: the feed may be starting
    logic.observe(_tick("A", T0, 10))
    assert logic.check_stalled(T0 + timedelta(seconds=9.9)) == []
    stalled = logic.check_stalled(T0 + timedelta(seconds=10))
    assert [e.kind for e in stalled] == ["FEED_STALLED"]
    assert stalled[0].account == "*"
    assert stalled[0].ts_event == T0 + timedelta(seconds=10)
    assert logic.check_stalled(T0 + timedelta(seconds=30)) == []  # reported once
    resumed = logic.observe(_tick("B", T0 + timedelta(seconds=31), 10))
    assert [e.kind for e in resumed] == ["FEED_RECOVERED"]
    assert logic.check_stalled(T0 + timedelta(seconds=35)) == []


def test_stall_on_receive_clock_uses_ts_recv() -> None:
    logic = FeedHealthLogic(FeedHealthConfig(stall_after_s=10, stall_clock="recv"))
    logic.observe(_tick("A", T0, 3000))  # received 3 s after the exchange stamped it
    assert logic.check_stalled(T0 + timedelta(seconds=12)) == []
    assert [e.kind for e in logic.check_stalled(T0 + timedelta(seconds=13))] == ["FEED_STALLED"]


def test_out_of_order_tick_does_not_rewind_the_stall_clock() -> None:
    logic = FeedHealthLogic(FeedHealthConfig(stall_after_s=10))
    logic.observe(_tick("A", T0 + timedelta(seconds=5), 10))
    logic.observe(_tick("A", T0, 10))  # late tick
    assert logic.check_stalled(T0 + timedelta(seconds=14)) == []
    assert len(logic.check_stalled(T0 + timedelta(seconds=15))) == 1


def test_snapshot_restore_continues() -> None:
    cfg = FeedHealthConfig(lag_ticks=4)
    lags = [100, 700, 700, 700, 700, 700, 100, 100, 100, 100, 100]
    straight = FeedHealthLogic(cfg)
    expected = _run(straight, lags)
    first = FeedHealthLogic(cfg)
    head = _run(first, lags[:3])
    resumed = FeedHealthLogic(cfg, pickle.loads(pickle.dumps(first.snapshot())))
    tail = _run(resumed, lags[3:], start=T0 + timedelta(milliseconds=750))
    assert head + tail == expected
    assert [e.kind for e in expected] == ["FEED_LAGGING", "FEED_RECOVERED"]


@pytest.mark.parametrize(
    "kwargs", [{"lag_ticks": 0}, {"stall_after_s": 0}, {"lag_threshold_ms": -1}]
)
def test_config_validation(kwargs) -> None:
    with pytest.raises(ValueError, match="must be"):
        FeedHealthConfig(**kwargs)


@pytest.mark.parametrize("clock", ["event", "recv"])
@pytest.mark.parametrize("seed", range(4))
def test_on_tick_is_check_stalled_then_observe(clock: Literal["event", "recv"], seed: int) -> None:
    """The per-tick shortcut gives the events and state of the two calls it stands for, over
    lags around the threshold, gaps around the stall limit and out-of-order ticks."""
    rng = random.Random(seed)
    config = FeedHealthConfig(lag_threshold_ms=40.0, lag_ticks=3, stall_after_s=2.5)
    config = dataclasses.replace(config, stall_clock=clock)
    fast, plain = FeedHealthLogic(config), FeedHealthLogic(config)
    got: list[object] = []
    expected: list[object] = []
    ts = T0
    for _ in range(3_000):
        step = rng.choice([rng.randrange(0, 300_000), 2_500_000 + rng.randrange(-2, 3)])
        ts += timedelta(microseconds=step)
        at = ts - timedelta(seconds=3) if rng.random() < 0.03 else ts
        tick = _tick(rng.choice("ABCD"), at, rng.choice([0.0, 39.999, 40.0, 40.001, 90.0]))
        got += fast.on_tick(tick)
        expected += plain.check_stalled(tick.ts_event)
        expected += plain.observe(tick)
        assert fast.state == plain.state
    assert got == expected
    kinds = {e.kind for e in expected}  # type: ignore[attr-defined]
    assert kinds == {"FEED_LAGGING", "FEED_RECOVERED", "FEED_STALLED"}
