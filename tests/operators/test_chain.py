"""Chain context: ATM, parity forward, IV/Greeks events, throttle, IV percentile, restore."""

from __future__ import annotations

import math
import pickle
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.events import Instrument, Tick
from operators.market.sessions import IST, session_close, session_open, years_to_expiry
from operators.options.chain import ChainConfig, ChainLogic
from operators.options.greeks import Flag, greeks, implied_vol, price
from tests.events import chain

EXPIRY = date(2026, 3, 10)  # a Tuesday
DAY = date(2026, 3, 3)
OPEN = session_open(DAY)
R = 0.065
INDEX = Instrument(token="26000", symbol="NIFTY", underlying="NIFTY", kind="INDEX", exchange="NSE")
STRIKES = [2_390_000 + 5_000 * i for i in range(5)]  # 23900 … 24100 in paise


def _option(strike: int, kind: str) -> Instrument:
    return Instrument(
        token=f"{kind}{strike}",
        symbol=f"NIFTY{strike // 100}{kind}",
        underlying="NIFTY",
        kind=kind,  # type: ignore[arg-type]
        strike=strike,
        expiry=EXPIRY,
        lot_size=65,
    )


OPTIONS = {(k, kind): _option(k, kind) for k in STRIKES for kind in ("CE", "PE")}


def _tick(inst: Instrument, ts: datetime, paise: int, book: bool = True) -> Tick:
    spread = 10 if book else 0
    return Tick(
        ts_event=ts,
        ts_recv=ts + timedelta(milliseconds=20),
        token=inst.token,
        exchange=inst.exchange,
        ltp=paise,
        bid=paise - spread // 2 if book else 0,
        ask=paise + spread // 2 if book else 0,
    )


def _model_paise(spot: float, strike: int, kind: str, ts: datetime, sigma: float) -> int:
    t = years_to_expiry(ts, EXPIRY)
    fwd = spot * math.exp(R * t)
    return round(price(fwd, strike / 100, t, R, sigma, "c" if kind == "CE" else "p") * 100)


def _feed_chain(logic: ChainLogic, ts: datetime, spot: float, sigma: float) -> list:
    out = logic.on_tick(_tick(INDEX, ts, round(spot * 100), book=False), INDEX)
    for (strike, kind), inst in OPTIONS.items():
        out += logic.on_tick(_tick(inst, ts, _model_paise(spot, strike, kind, ts, sigma)), inst)
    return out


def test_index_tick_emits_nothing_and_options_wait_for_a_price() -> None:
    logic = ChainLogic("NIFTY")
    inst = OPTIONS[(STRIKES[2], "CE")]
    assert logic.on_tick(_tick(inst, OPEN, 15_000), inst) == []  # no spot, no parity pair yet
    assert logic.on_tick(_tick(INDEX, OPEN, 2_400_000, book=False), INDEX) == []
    assert logic.state.spot == 24000.0


def test_atm_strike_is_nearest_listed_strike() -> None:
    logic = ChainLogic("NIFTY")
    _feed_chain(logic, OPEN, 24_012.0, 0.14)
    assert logic.atm_strike() == 2_400_000
    logic.on_tick(_tick(INDEX, OPEN + timedelta(seconds=1), 2_403_000, book=False), INDEX)
    assert logic.atm_strike() == 2_405_000
    assert logic.front_expiry() == EXPIRY


def test_forward_from_put_call_parity_and_analytics_match_direct_calls() -> None:
    logic = ChainLogic("NIFTY")
    spot, sigma = 24_012.0, 0.14
    # first pass: options before the ATM pair is known price off spot·e^{rT}
    assert len(_feed_chain(logic, OPEN, spot, sigma)) == len(OPTIONS)
    now = OPEN + timedelta(seconds=1)
    for inst in OPTIONS.values():  # refresh the quotes without new events at the same second
        logic.state.quotes[inst.token] = (logic.state.quotes[inst.token][0], now.timestamp())
    events = _feed_chain(logic, now, spot, sigma)
    assert len(events) == len(OPTIONS)
    t = years_to_expiry(now, EXPIRY)
    atm = logic.atm_strike()
    assert atm is not None
    call = logic.state.quotes[f"CE{atm}"][0]
    put = logic.state.quotes[f"PE{atm}"][0]
    fwd = atm / 100 + (call - put) * math.exp(R * t)
    assert logic.forward(EXPIRY, now) == pytest.approx(fwd, rel=1e-15)
    assert fwd == pytest.approx(spot * math.exp(R * t), abs=0.02)  # paise rounding only
    for ev in events:
        inst = next(i for i in OPTIONS.values() if i.token == ev.token)
        flag: Flag = "c" if inst.kind == "CE" else "p"
        assert ev.forward == pytest.approx(fwd, rel=1e-15)
        assert ev.t_years == t
        assert ev.underlying_price == spot
        assert ev.strike == inst.strike / 100
        expected = implied_vol(ev.price, fwd, ev.strike, t, R, flag)
        assert ev.iv == expected.iv
        assert ev.iv == pytest.approx(sigma, abs=2e-3)
        g = greeks(fwd, ev.strike, t, R, ev.iv, flag)
        assert g is not None
        assert (ev.delta, ev.gamma, ev.theta, ev.vega) == (g.delta, g.gamma, g.theta, g.vega)
        assert ev.iv_percentile is None  # not enough samples yet


def test_forward_falls_back_to_spot_carry_when_parity_quotes_are_stale() -> None:
    logic = ChainLogic("NIFTY", ChainConfig(parity_max_age_s=5.0))
    _feed_chain(logic, OPEN, 24_000.0, 0.14)
    later = OPEN + timedelta(seconds=30)
    logic.on_tick(_tick(INDEX, later, 2_410_000, book=False), INDEX)
    t = years_to_expiry(later, EXPIRY)
    assert logic.forward(EXPIRY, later) == pytest.approx(24_100.0 * math.exp(R * t), rel=1e-15)


def test_throttle_at_most_one_event_per_instrument_per_second() -> None:
    logic = ChainLogic("NIFTY")
    _feed_chain(logic, OPEN, 24_000.0, 0.14)
    inst = OPTIONS[(STRIKES[2], "CE")]
    emitted = []
    for ms in range(0, 3000, 100):  # 30 ticks over three seconds
        ts = OPEN + timedelta(seconds=1, milliseconds=ms)
        emitted += logic.on_tick(_tick(inst, ts, 15_000 + ms // 100), inst)
    assert [int(e.ts_event.timestamp()) - int(OPEN.timestamp()) for e in emitted] == [1, 2, 3]
    # the quote still follows every tick even when no event is emitted
    assert logic.state.quotes[inst.token][0] == pytest.approx((15_000 + 29) / 100)


def test_no_solution_is_an_event_with_iv_none() -> None:
    logic = ChainLogic("NIFTY")
    _feed_chain(logic, OPEN, 24_000.0, 0.14)
    inst = OPTIONS[(STRIKES[0], "CE")]  # 23900 call, intrinsic ~100 rupees
    events = logic.on_tick(_tick(inst, OPEN + timedelta(seconds=2), 1_000), inst)
    assert len(events) == 1
    assert events[0].iv is None
    assert events[0].delta is None
    assert events[0].gamma is None


def test_iv_percentile_ranks_current_atm_iv_in_a_bounded_window() -> None:
    cfg = ChainConfig(window_sessions=1, samples_per_session=20, min_samples=10)
    logic = ChainLogic("NIFTY", cfg)
    events: list = []
    for minute in range(30):  # IV rises every minute: the latest is the highest seen
        ts = OPEN + timedelta(minutes=minute)
        events = _feed_chain(logic, ts, 24_000.0, 0.10 + 0.002 * minute)
        assert logic.iv_sample_count == min(minute + 1, 20)
    assert logic.iv_percentile() == pytest.approx(100.0)
    assert events[-1].iv_percentile == pytest.approx(100.0)
    # the window holds the last 20 per-minute samples (~0.118 … 0.158): the early ones
    # (0.100 … 0.116) have left it, so 0.11 ranks at the bottom and 0.137 near the middle
    assert logic.iv_percentile(0.11) == 0.0
    assert logic.iv_percentile(0.137) == pytest.approx(50.0, abs=10.0)
    assert logic.iv_percentile(0.2) == 100.0


def test_snapshot_restore_continues_like_an_uninterrupted_run() -> None:
    cfg = ChainConfig(window_sessions=1, samples_per_session=15, min_samples=5)
    steps = [(OPEN + timedelta(minutes=m, seconds=s), 24_000 + 3 * m - s, 0.12 + 0.001 * (m % 7))
             for m in range(25) for s in (0, 20)]  # fmt: skip
    straight = ChainLogic("NIFTY", cfg)
    expected = [_feed_chain(straight, *step) for step in steps]
    first = ChainLogic("NIFTY", cfg)
    head = [_feed_chain(first, *step) for step in steps[:21]]
    state = pickle.loads(pickle.dumps(first.snapshot()))
    resumed = ChainLogic("NIFTY", cfg, state=state)
    tail = [_feed_chain(resumed, *step) for step in steps[21:]]
    assert head + tail == expected
    assert expected[-1][-1].iv_percentile is not None
    assert resumed.snapshot() == straight.snapshot()


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="window_sessions"):
        ChainConfig(window_sessions=0)


# ------------------------------------------------------------------------ cached look-ups
def _listed(strikes: list[int], expiry: date = EXPIRY) -> list[Instrument]:
    return chain([expiry], strikes, token="{kind}{k}@{e}", symbol="N{k}{kind}")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 400).map(lambda i: i * 5_000), min_size=1, max_size=25, unique=True),
    st.lists(st.integers(1, 2_200_000), min_size=1, max_size=8),
)
def test_atm_strike_equals_the_nearest_by_distance_then_lower(strikes, spots) -> None:
    """The cached, bisected ATM is what ``min`` over every strike gives, as the spot moves."""
    logic = ChainLogic("NIFTY")
    ts = OPEN
    for inst in _listed(strikes):
        logic.on_tick(_tick(inst, ts, 1_000), inst)
    for paise in [*spots, *(k + 2_500 for k in strikes)]:  # midpoints: ties go to the lower
        ts += timedelta(milliseconds=10)
        logic.on_tick(_tick(INDEX, ts, paise, book=False), INDEX)
        spot = paise / 100 * 100
        assert logic.atm_strike() == min(strikes, key=lambda k: (abs(k - spot), k))
        assert logic.atm_strike(EXPIRY) == logic.atm_strike()


def test_atm_follows_a_strike_listed_while_the_spot_stands_still() -> None:
    logic = ChainLogic("NIFTY")
    logic.on_tick(_tick(INDEX, OPEN, 2_403_000, book=False), INDEX)
    (ce, _) = _listed([2_400_000])
    logic.on_tick(_tick(ce, OPEN, 10_000), ce)
    assert logic.atm_strike() == 2_400_000
    (ce, _) = _listed([2_405_000])
    logic.on_tick(_tick(ce, OPEN, 8_000), ce)
    assert logic.atm_strike() == 2_405_000


def test_front_expiry_rolls_at_midnight_ist_and_t_is_years_to_expiry() -> None:
    """The trading date is cached per day: the expiry stays front until its day is over."""
    near, far = date(2026, 3, 3), date(2026, 3, 10)
    logic = ChainLogic("NIFTY")
    midnight = datetime(2026, 3, 4, tzinfo=IST)
    for inst in _listed([2_400_000], near) + _listed([2_400_000], far):
        logic.on_tick(_tick(inst, session_open(near), 10_000), inst)
    logic.on_tick(_tick(INDEX, session_open(near), 2_400_000, book=False), INDEX)
    assert logic.front_expiry() == near
    seen = []
    for offset in (-1.0, -0.001, -0.000001, 0.0, 0.000001, 60.0):
        ts = midnight + timedelta(seconds=offset)
        logic.on_tick(_tick(INDEX, ts, 2_400_000, book=False), INDEX)
        seen.append(logic.front_expiry())
    assert seen == [near, near, near, far, far, far]
    inst = _listed([2_400_000], far)[0]
    for ts in (session_open(far), session_close(far) - timedelta(microseconds=1)):
        (event,) = logic.on_tick(_tick(inst, ts, 10_000), inst)
        assert event.t_years == years_to_expiry(ts, far)
        assert event.t_years > 0.0
