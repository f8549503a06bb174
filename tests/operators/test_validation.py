"""Plausibility before state (issue 12): every check rejects with a reason code and leaves the
per-instrument state as if the tick had never arrived."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from connectors.kafka.serde import decode_tick, encode
from operators.events import Instrument, Tick
from operators.market.validation import (
    MAX_PRICE_PAISE,
    PlausibilityLogic,
    PlausibilityState,
    ValidationConfig,
    tick_problem,
)

T0 = datetime(2026, 7, 7, 4, 0, tzinfo=UTC)  # 09:30 IST
INSTRUMENTS = {"1": Instrument(token="1", symbol="X", underlying="NIFTY", kind="CE")}


def tick(**kw: object) -> Tick:
    fields: dict[str, object] = {
        "ts_event": T0,
        "ts_recv": T0 + timedelta(milliseconds=5),
        "token": "1",
        "exchange": "NFO",
        "ltp": 10_000,
        "cum_volume": 100,
        "bid": 9_995,
        "ask": 10_005,
    }
    fields.update(kw)
    return Tick(**fields)  # type: ignore[arg-type]


def code(reason: str | None) -> str | None:
    return None if reason is None else reason.split(":", 1)[0]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"ltp": 10**15}, "PRICE_LIMIT"),
        ({"ltp": 2**63 - 3}, "PRICE_LIMIT"),
        ({"ltp": 10**30}, "PRICE_LIMIT"),
        ({"ask": MAX_PRICE_PAISE + 1}, "PRICE_LIMIT"),
        ({"ltp": -5}, "NEGATIVE_PRICE"),
        ({"ltp": 0}, "ZERO_PRICE"),
        ({"bid": 10_010, "ask": 10_000}, "CROSSED_BOOK"),
        ({"cum_volume": 2**63 - 3}, "QUANTITY_LIMIT"),
        ({"oi": -1}, "NEGATIVE_QUANTITY"),
        ({"seq": 2**64}, "QUANTITY_LIMIT"),
        ({"ts_event": datetime(1970, 1, 1, tzinfo=UTC)}, "TIME_RANGE"),
        ({"ts_event": datetime(2100, 1, 1, 4, tzinfo=UTC)}, "TIME_RANGE"),
        (
            {
                "ts_event": datetime(2100, 1, 1, tzinfo=UTC),
                "ts_recv": T0.replace(tzinfo=None),
            },
            "NAIVE_TIMESTAMP",
        ),
        ({"ts_event": T0 + timedelta(minutes=5)}, "TIME_SKEW"),
        ({"ts_event": T0 - timedelta(hours=1)}, "TIME_SKEW"),
        (
            {"ts_event": T0 - timedelta(minutes=5), "ts_recv": T0 + timedelta(days=1)},
            "TIME_SKEW",
        ),
        ({"token": "nope"}, "UNKNOWN_TOKEN"),
        ({"ltp": 10_001}, "OFF_GRID_PRICE"),
    ],
)
def test_stateless_checks_give_a_reason_code(changes: dict[str, object], expected: str) -> None:
    assert code(tick_problem(tick(**changes), INSTRUMENTS)) == expected


def test_ticks_off_the_day_they_were_received_or_outside_the_session_are_refused() -> None:
    midnight_ist = datetime(2026, 7, 6, 18, 30, tzinfo=UTC)
    late_evening = tick(ts_event=midnight_ist - timedelta(seconds=2), ts_recv=midnight_ist)
    assert code(tick_problem(late_evening, INSTRUMENTS)) == "SESSION_DAY"
    night = tick(
        ts_event=midnight_ist + timedelta(hours=1), ts_recv=midnight_ist + timedelta(hours=1)
    )
    assert tick_problem(night, INSTRUMENTS) is None  # the session window is opt-in
    windowed = ValidationConfig(session_margin=timedelta(minutes=15))
    assert code(tick_problem(night, INSTRUMENTS, windowed)) == "SESSION_DAY"
    assert tick_problem(tick(), INSTRUMENTS, windowed) is None


def test_skew_limits_are_configurable() -> None:
    lagging = tick(ts_event=T0 - timedelta(minutes=20), ts_recv=T0)
    assert code(tick_problem(lagging, INSTRUMENTS)) == "TIME_SKEW"
    relaxed = ValidationConfig(max_lag=timedelta(hours=1))
    assert tick_problem(lagging, INSTRUMENTS, relaxed) is None


def test_decoder_reasons_for_missing_type_unknown_fields_in_strict_mode() -> None:
    good = encode(tick())
    obj = msgspec.json.decode(good)
    del obj["type"]
    assert code(str(decode_tick(msgspec.json.encode(obj)))) == "MISSING_TYPE"
    obj = msgspec.json.decode(good)
    obj["padding"] = "x" * 10
    padded = msgspec.json.encode(obj)
    assert isinstance(decode_tick(padded), Tick)  # lenient by default: newer producers
    assert code(str(decode_tick(padded, strict=True))) == "UNKNOWN_FIELD"
    strict = decode_tick(good, strict=True)
    assert type(strict) is Tick
    assert strict == tick()


def check_all(logic: PlausibilityLogic, state: PlausibilityState, ticks: list[Tick]) -> list:
    return [code(logic.check(state, t)) for t in ticks]


def test_price_band_from_the_first_price_of_the_session_and_previous_close() -> None:
    logic = PlausibilityLogic(ValidationConfig(band_factor=10, band_slack_paise=0))
    state = PlausibilityState()
    ticks = [
        tick(ltp=10_000),
        tick(ltp=100_000, ts_event=T0 + timedelta(seconds=1), ts_recv=T0 + timedelta(seconds=1)),
        tick(ltp=100_005, ts_event=T0 + timedelta(seconds=2), ts_recv=T0 + timedelta(seconds=2)),
        tick(ltp=995, ts_event=T0 + timedelta(seconds=3), ts_recv=T0 + timedelta(seconds=3)),
        tick(ltp=50_000, ts_event=T0 + timedelta(seconds=4), ts_recv=T0 + timedelta(seconds=4)),
    ]
    assert check_all(logic, state, ticks) == [None, None, "PRICE_BAND", "PRICE_BAND", None]
    # next day: the reference is the previous close (50_000), so 10_000 is still inside
    day2 = T0 + timedelta(days=1)
    assert check_all(logic, state, [tick(ltp=4_995, ts_event=day2, ts_recv=day2)]) == ["PRICE_BAND"]
    assert state.day == T0.date()  # a refused tick moves nothing, not even the day
    assert check_all(logic, state, [tick(ltp=10_000, ts_event=day2, ts_recv=day2)]) == [None]
    assert state.reference == 50_000
    pinned = PlausibilityLogic(ValidationConfig(bands={"1": (9_000, 11_000)}))
    assert check_all(pinned, PlausibilityState(), [tick(ltp=12_000)]) == ["PRICE_BAND"]
    configured = PlausibilityLogic(ValidationConfig(references={"1": 200}, band_factor=10))
    assert check_all(configured, PlausibilityState(), [tick(ltp=30_000)]) == ["PRICE_BAND"]


def test_price_band_leaves_a_cheap_option_room_to_rally() -> None:
    """₹0.10 → ₹2.05 is ×20.5 and ₹2.50 → ₹0.10 is ÷25 (both seen in a synthetic session);
    the band's ₹200 slack lets them through; beyond slack and factor is still refused."""
    logic = PlausibilityLogic(ValidationConfig())
    later = T0 + timedelta(seconds=1)
    rally = [tick(ltp=10), tick(ltp=205, ts_event=later, ts_recv=later)]
    assert check_all(logic, PlausibilityState(), rally) == [None, None]
    jump = [tick(ltp=10), tick(ltp=20_015, ts_event=later, ts_recv=later)]
    assert check_all(logic, PlausibilityState(), jump) == [None, "PRICE_BAND"]
    fall = [tick(ltp=250), tick(ltp=10, bid=10, ask=35, ts_event=later, ts_recv=later)]
    assert check_all(logic, PlausibilityState(), fall) == [None, None]
    crash = [tick(ltp=2_600_000), tick(ltp=125_000, ts_event=later, ts_recv=later)]
    assert check_all(logic, PlausibilityState(), crash) == [None, "PRICE_BAND"]


def test_exact_duplicates_are_refused_within_a_bounded_window_and_state() -> None:
    logic = PlausibilityLogic(ValidationConfig(dedupe_window=timedelta(seconds=5), dedupe_max=3))
    state = PlausibilityState()
    first = tick()
    resent = msgspec.structs.replace(first, ts_recv=first.ts_recv + timedelta(seconds=1), seq=9)
    requote = msgspec.structs.replace(first, bid=10_000)
    assert check_all(logic, state, [first, resent, requote]) == [None, "DUPLICATE", None]
    for i in range(1, 10):
        at = T0 + timedelta(seconds=i)
        assert logic.check(state, tick(ts_event=at, ts_recv=at)) is None
        assert len(state.seen) <= 3
    assert logic.check(state, first) is None  # long evicted: no unbounded memory


def test_a_rejected_tick_leaves_the_state_unchanged() -> None:
    logic = PlausibilityLogic()
    state = PlausibilityState()
    assert logic.check(state, tick()) is None
    before = copy.deepcopy(state)
    assert code(logic.check(state, tick(ltp=10_000 * 21, cum_volume=5))) == "PRICE_BAND"
    assert code(logic.check(state, tick())) == "DUPLICATE"
    assert state == before
