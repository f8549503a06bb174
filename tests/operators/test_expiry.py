"""Expired options' per-token state is dropped by event time (issue 12): over a multi-day run
each stage keeps only the instruments still alive (or still held), so its state is bounded by
the live chain, not by every weekly option ever seen; and dropping changes no output."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest

from operators.ai.adaptive import AdaptiveConfig
from operators.events import Instrument, OptionAnalytics, Tick
from operators.market.expiry import NEVER, ExpiryCalendar
from operators.market.validation import PartitionPlausibility, PlausibilityLogic, ValidationConfig
from operators.options.chain import ChainLogic
from operators.stages.account import AccountConfig, AccountLogic
from operators.trading.feed_health import FeedHealthLogic
from operators.trading.risk_limits import RiskLimits
from tests.events import chain

#: Five Tuesdays (weekly expiries) from 2026-07-07; 2 strikes × CE/PE each.
EXPIRIES = [date(2026, 7, 7) + timedelta(weeks=w) for w in range(5)]
STRIKES = (2_600_000, 2_605_000)  # paise
INDEX = Instrument(token="IDX", symbol="NIFTY", underlying="NIFTY", kind="INDEX", exchange="NSE")


def _options() -> list[Instrument]:
    return chain(EXPIRIES, STRIKES, "{e:%m%d}{kind}{k}", "NIFTY{e:%m%d}{k}{kind}", lot_size=65)


OPTIONS = _options()
INSTRUMENTS = {i.token: i for i in [INDEX, *OPTIONS]}


def _session_ticks(day: date) -> list[Tick]:
    """Ticks of every instrument alive on ``day`` (expiry on or after it), a minute apart
    from 09:20 IST for 20 minutes."""
    start = datetime(day.year, day.month, day.day, 3, 50, tzinfo=UTC)
    out: list[Tick] = []
    for m in range(20):
        ts = start + timedelta(minutes=m)
        recv = ts + timedelta(milliseconds=4)
        out.append(Tick(ts_event=ts, ts_recv=recv, token="IDX", exchange="NSE",
                        ltp=2_602_000 + 500 * (m % 3)))  # fmt: skip
        for inst in OPTIONS:
            assert inst.expiry is not None
            if inst.expiry >= day:
                price = 12_000 + 100 * (m % 4)
                out.append(Tick(ts_event=ts, ts_recv=recv, token=inst.token, exchange="NFO",
                                ltp=price, bid=price - 10, ask=price + 10,
                                cum_volume=100 * m, seq=m))  # fmt: skip
    return out


#: Every weekday of the five weeks (the expiry days included).
DAYS = [d for d in (EXPIRIES[0] + timedelta(days=n) for n in range(29)) if d.weekday() < 5]


def _alive(day: date) -> set[str]:
    return {i.token for i in OPTIONS if i.expiry is not None and i.expiry >= day}


def test_calendar_expires_a_token_when_its_expiry_day_is_over() -> None:
    calendar = ExpiryCalendar(INSTRUMENTS.values())
    token = OPTIONS[0].token  # expires 2026-07-07
    close = datetime(2026, 7, 7, 10, 0, tzinfo=UTC)  # 15:30 IST
    midnight = datetime(2026, 7, 7, 18, 30, tzinfo=UTC)  # 00:00 IST on the 8th
    assert not calendar.expired(token, close)  # a post-close tick of the day still finds it
    assert calendar.expired(token, midnight)
    assert not calendar.expired("IDX", datetime(2099, 1, 1, tzinfo=UTC))  # an index never
    assert calendar.next_after(close) == midnight
    assert calendar.next_after(midnight) == midnight + timedelta(weeks=1)
    assert calendar.next_after(midnight + timedelta(weeks=5)) == NEVER
    tokens = {i.token: 1 for i in OPTIONS}
    held = OPTIONS[1].token
    gone = calendar.drop(tokens, midnight, keep=lambda t: t == held)
    assert sorted(gone) == sorted(t for t in (o.token for o in OPTIONS[:4]) if t != held)
    assert held in tokens
    assert len(tokens) == len(OPTIONS) - 3


def test_plausibility_keeps_only_live_instruments_over_five_weeks() -> None:
    logic = PlausibilityLogic(ValidationConfig(), ExpiryCalendar(INSTRUMENTS.values()))
    book = PartitionPlausibility()
    dropped: list[str] = []
    sizes = []
    for day in DAYS:
        for t in _session_ticks(day):
            assert logic.check_in(book, t, dropped) is None
        assert set(book.tokens) == _alive(day) | {"IDX"}
        sizes.append(len(book.tokens))
    assert max(sizes) == len(OPTIONS) + 1  # the first week: every expiry listed
    assert sizes[-1] == 4 + 1  # the last week: one expiry left
    assert sorted(dropped) == sorted(i.token for i in OPTIONS if i.expiry != EXPIRIES[-1])


def test_chain_drops_expired_legs_and_computes_the_same_analytics() -> None:
    kept, swept = ChainLogic("NIFTY"), ChainLogic("NIFTY")
    for day in DAYS:
        first = True
        for t in _session_ticks(day):
            if first:
                swept.drop_expired(t.ts_event)  # what the strategy stage does at a sweep
                first = False
            inst = INSTRUMENTS[t.token]
            a: list[OptionAnalytics] = kept.on_tick(t, inst)
            assert swept.on_tick(t, inst) == a
        assert set(swept.state.quotes) == _alive(day)
        assert {date.fromordinal(k) for k in swept.state.legs} == {e for e in EXPIRIES if e >= day}
    assert len(kept.state.quotes) == len(OPTIONS)  # without the sweep: every option ever seen
    assert len(swept.state.quotes) == 4


def test_feed_health_forgets_the_lag_of_dropped_tokens() -> None:
    feed = FeedHealthLogic()
    for t in _session_ticks(DAYS[0]):
        feed.observe(t)
    assert len(feed.state.last_lag_ms) == len(OPTIONS) + 1
    gone = {o.token for o in OPTIONS[:4]}
    feed.drop_tokens(gone.__contains__)
    assert set(feed.state.last_lag_ms) == {"IDX"} | {o.token for o in OPTIONS[4:]}
    assert not gone & set(feed.state.streak)


@pytest.mark.parametrize("held", ["working", "none"])
def test_account_drops_an_expired_instrument_only_when_flat(held: str) -> None:
    config = AccountConfig(
        account="paper",
        run_id="t",
        limits=RiskLimits(account="paper", capital=50_000_000, strategies=("s",)),
        adaptive=AdaptiveConfig(account="paper", strategies=("s",)),
    )
    logic = AccountLogic(INSTRUMENTS, config)
    rt = logic.new_runtime()
    expired, alive = OPTIONS[0].token, OPTIONS[-1].token
    for token in (expired, alive):
        rt.quotes[token] = (100, 110, 105)
        rt.deltas[token] = 0.5
        rt.risk.state.marks[token] = 105
        rt.execution.state.last_cum_volume[token] = 1_000
    if held == "working":
        rt.execution.state.working[expired] = ["order-1"]
    before = copy.deepcopy(rt.quotes)
    day_after = datetime(2026, 7, 8, 3, 50, tzinfo=UTC)
    logic._drop_expired(rt, day_after)
    assert rt.expiry_sweep_at == datetime(2026, 7, 14, 18, 30, tzinfo=UTC)
    if held == "working":  # an order still works in it: nothing of it goes
        assert rt.quotes == before
        assert expired in rt.risk.state.marks
    else:
        assert set(rt.quotes) == set(rt.deltas) == {alive}
        assert set(rt.risk.state.marks) == set(rt.execution.state.last_cum_volume) == {alive}
