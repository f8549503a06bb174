"""Per-minute quotes: the last tick of each minute, batching-independent, late ticks ignored."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from operators.events import Tick
from operators.market.quotes import Quote, QuoteLogic, QuoteState

T0 = datetime(2026, 7, 7, 3, 45, tzinfo=UTC)


def _tick(s: float, bid: int, ask: int, oi: int, seq: int = 0, token: str = "o1") -> Tick:
    ts = T0 + timedelta(seconds=s)
    return Tick(
        ts_event=ts, ts_recv=ts, token=token, exchange="NFO", ltp=bid + 5, bid=bid, ask=ask,
        bid_qty=75, ask_qty=150, oi=oi, seq=seq,
    )  # fmt: skip


def _run(ticks: list[Tick]) -> list[Quote]:
    logic = QuoteLogic()
    states: dict[str, QuoteState] = {}
    out: list[Quote] = []
    for t in ticks:
        out += logic.on_tick(states.setdefault(t.token, QuoteState()), t)
    for state in states.values():
        out += logic.flush(state)
    return out


def test_one_quote_per_minute_its_last_tick_and_the_first_ticks_oi() -> None:
    ticks = [
        _tick(1, 1000, 1010, 500),
        _tick(40, 1005, 1015, 525, seq=2),
        _tick(30, 990, 1000, 510, seq=1),  # earlier in the minute, arrived later: not last
        _tick(61, 1020, 1030, 600),
        _tick(59, 1, 2, 9),  # minute 0 already out: late, ignored
        _tick(200, 0, 0, 0),  # no book, no OI (an index tick): no quote
    ]
    got = _run(ticks)
    assert [(q.minute, q.ts_event, q.bid, q.ask, q.ltp, q.oi, q.open_oi) for q in got] == [
        (T0, T0 + timedelta(seconds=40), 1005, 1015, 1010, 525, 500),
        (T0 + timedelta(minutes=1), T0 + timedelta(seconds=61), 1020, 1030, 1025, 600, 600),
    ]


def test_quotes_do_not_depend_on_how_ticks_are_batched_or_interleaved() -> None:
    market = SyntheticMarket(
        SyntheticConfig(seed=3, date=date(2026, 7, 7), duration_minutes=4, strikes_each_side=1)
    )
    ticks = list(market.ticks())
    whole = _run(ticks)
    by_token: dict[str, list[Tick]] = {}
    for t in ticks:
        by_token.setdefault(t.token, []).append(t)
    one_by_one = _run([t for group in by_token.values() for t in group])
    key = lambda q: (q.token, q.minute)  # noqa: E731
    assert msgspec.json.encode(sorted(whole, key=key)) == msgspec.json.encode(
        sorted(one_by_one, key=key)
    )
    options = {t.token for t in ticks if t.bid > 0}
    assert {q.token for q in whole} == options  # every quoted option, no index
    minutes = {(t.token, int(t.ts_event.timestamp() // 60)) for t in ticks if t.bid > 0}
    assert len(whole) == len(minutes) > 3 * len(options)  # one per option and minute
    assert all(q.bid > 0 and q.ask >= q.bid and q.oi > 0 for q in whole)
