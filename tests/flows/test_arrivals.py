"""The arrival clock behind the live heartbeat: silence is measured by arrivals on the process
clock (a fake one here), the flow's own backpressure is not silence, and a quiet spell that
ended while no heartbeat could run is still reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from confluent_kafka import KafkaError as ConfluentError

from flows.adapters import _Adapter
from flows.arrivals import ArrivalClock


class FakeTime:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def test_no_silence_before_the_first_arrival_then_time_since_the_last() -> None:
    t = FakeTime()
    clock = ArrivalClock(t)
    t.t += 30
    assert clock.silence(since=t.t) is None  # still starting: never a stall
    clock.stamp(["x"])
    started = t.t
    t.t += 12
    silence = clock.silence(since=t.t - 1)
    assert silence is not None
    assert silence.seconds == 12
    assert silence.since == datetime.fromtimestamp(started, UTC)


def test_a_steady_backlog_is_never_silent() -> None:
    t = FakeTime()
    clock = ArrivalClock(t)
    longest = 0.0
    for _ in range(10_000):
        clock.stamp(["tick"])
        t.t += 0.002
        s = clock.silence(since=t.t - 1)
        assert s is not None
        longest = max(longest, s.seconds)
    assert longest < 0.01


def test_time_a_sink_held_the_flow_back_is_not_silence() -> None:
    t = FakeTime()
    clock = ArrivalClock(t)
    clock.stamp(["x"])
    t.t += 3
    t.t += 60  # PostgreSQL down: the sink held the flow thread for 60 s
    clock.excuse(60)
    s = clock.silence(since=t.t - 1)
    assert s is not None
    assert s.seconds == 3
    t.t += 1
    clock.excuse(0.5)  # more waits: the same spell (same start), shorter by what they took
    again = clock.silence(since=t.t - 1)
    assert again is not None
    assert again.since == s.since
    assert again.seconds == 3.5
    clock.stamp(["backlog"])
    t.t += 1
    s = clock.silence(since=t.t - 1)
    assert s is not None
    assert s.seconds == 1


def test_a_spell_that_ended_before_the_heartbeat_ran_is_still_reported_once() -> None:
    t = FakeTime()
    clock = ArrivalClock(t)
    clock.stamp(["x"])
    heartbeat = t.t
    t.t += 35  # broker down; the flow was blocked on it, no heartbeat ran
    clock.stamp(["after the outage"])
    t.t += 0.5
    s = clock.silence(since=heartbeat)
    assert s is not None
    assert s.seconds == 35
    s = clock.silence(since=t.t)  # the next heartbeat: that spell is older than it
    assert s is not None
    assert s.seconds == 0.5


def error(code: int, topic: str | None = None) -> KafkaError:
    msg: KafkaSourceMessage = KafkaSourceMessage(key=None, value=None, topic=topic)
    return KafkaError(ConfluentError(code), msg)


def test_transient_broker_errors_are_dropped_and_are_no_arrival() -> None:
    t = FakeTime()
    clock = ArrivalClock(t)
    down = [error(ConfluentError._TRANSPORT), error(ConfluentError._ALL_BROKERS_DOWN)]
    assert clock.stamp(down) == []
    assert clock.last is None
    bad = error(ConfluentError.UNKNOWN_TOPIC_OR_PART, topic="md.ticks")
    assert clock.stamp([*down, "tick", bad]) == ["tick", bad]  # a real error stays visible
    assert clock.last == t.t


class Recorder:
    """A keyed logic that records what its heartbeat is told."""

    def __init__(self) -> None:
        self.beats: list[Any] = []

    def new_state(self) -> list[Any]:
        return []

    def on_item(self, state: list[Any], item: Any) -> list[Any]:
        return []

    def on_eof(self, state: list[Any]) -> list[Any]:
        return []

    def on_wall_clock(self, state: list[Any], now: datetime, silence: Any = None) -> list[Any]:
        self.beats.append(silence)
        return []


def test_the_heartbeat_hands_the_stage_the_quiet_spell_since_its_previous_beat() -> None:
    t = FakeTime()
    clock = ArrivalClock(t)
    logic = Recorder()
    adapter = _Adapter(logic, logic.new_state(), timedelta(seconds=1), clock)
    adapter.on_notify()
    assert logic.beats == [None]  # nothing arrived yet
    clock.stamp(["x"])
    t.t += 12
    adapter.on_notify()
    t.t += 1
    clock.stamp(["y"])  # input resumes
    t.t += 0.5
    adapter.on_notify()  # the spell ended after the previous beat: told whole, same start
    t.t += 1
    adapter.on_notify()  # then only the current, short one
    spells = [(b.since, b.seconds) for b in logic.beats[1:]]
    assert [s for _, s in spells] == [12, 13, 1.5]
    assert spells[0][0] == spells[1][0] != spells[2][0]  # the stage reports a spell once
