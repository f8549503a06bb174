"""Account stage: signal → risk → order → fill → position → round trip, kill switch, ordering."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import msgspec

from operators.ai.adaptive import AdaptiveConfig
from operators.events import Instrument, RiskEvent, SignalGenerated, Tick
from operators.market.sessions import IST
from operators.stages.account import AccountConfig, AccountLogic
from operators.trading.feed_health import Silence
from operators.trading.orders import OrderAccepted, OrderCancelled, OrderFilled
from operators.trading.portfolio import PositionChanged, TradeClosed
from operators.trading.risk_limits import OrderApproved, OrderDenied, RiskLimits
from tests.events import option
from tests.events import tick as nfo_tick

T0 = datetime(2026, 7, 8, 4, 0, tzinfo=UTC)  # 09:30 IST
INDEX = Instrument(
    token="26000", symbol="NIFTY", underlying="NIFTY", kind="INDEX", exchange="NSE", lot_size=1
)
CE = option("901", "NIFTY14JUL2626000CE", expiry=date(2026, 7, 14))
INSTRUMENTS = {i.token: i for i in (INDEX, CE)}


def make_logic(lateness_s: float = 10.0) -> AccountLogic:
    limits = RiskLimits(account="paper", capital=50_000_000, strategies=("s",))
    config = AccountConfig(
        account="paper",
        run_id="t",
        limits=limits,
        adaptive=AdaptiveConfig(account="paper", strategies=("s",)),
        lateness=timedelta(seconds=lateness_s),
        entry_lots=2,
    )
    return AccountLogic(INSTRUMENTS, config)


def tick(
    sec: float, bid: int, ask: int, cum: int, token: str = "901", seq: int = 0, t0: datetime = T0
) -> Tick:
    ts = t0 + timedelta(seconds=sec)
    mid = (bid + ask) // 2 // 5 * 5
    return nfo_tick(ts, token, mid, bid, ask, bid_qty=650, ask_qty=650, cum_volume=cum, seq=seq)


def signal(sec: float, action: Literal["ENTRY", "EXIT"], reason: str) -> SignalGenerated:
    ts = T0 + timedelta(seconds=sec)
    return SignalGenerated(
        ts_event=ts,
        ts_recv=ts,
        strategy="s",
        underlying="NIFTY",
        instrument="901",
        side="BUY" if action == "ENTRY" else "SELL",
        action=action,
        reason=reason,
        signal_id=f"s:{action}:{sec}",
        underlying_price=2_600_000,
    )


def scripted() -> list:
    items: list = [tick(s, 10_000, 10_100, 10_000 + 2_000 * s, seq=s) for s in range(0, 30)]
    items.insert(5, signal(4.5, "ENTRY", "ENTRY: test"))
    items.insert(20, signal(18.5, "EXIT", "TARGET: test"))
    items.sort(key=lambda x: x.ts_event)
    return items


def run(items, logic: AccountLogic | None = None) -> list:
    logic = logic or make_logic()
    rt = logic.new_runtime()
    out = []
    for item in items:
        out += logic.on_item(rt, item)
    return out + logic.on_eof(rt)


def test_round_trip_from_signals_to_trade() -> None:
    out = run(scripted())
    approved = [e for e in out if isinstance(e, OrderApproved)]
    assert len(approved) == 2  # entry, then the reducing exit
    accepted = [e for e in out if isinstance(e, OrderAccepted)]
    assert [a.side for a in accepted] == ["BUY", "SELL"]
    fills = [e for e in out if isinstance(e, OrderFilled)]
    assert [f.side for f in fills] == ["BUY", "SELL"]
    # never on the tick that caused it: the entry signal is at 4.5 s, the fill strictly after
    assert fills[0].ts_event > T0 + timedelta(seconds=4.5)
    assert fills[0].fill_price >= 10_100  # bought at the ask (plus slippage)
    assert fills[1].fill_price <= 10_000  # sold at the bid (minus slippage)
    (trade,) = [e for e in out if isinstance(e, TradeClosed)]
    assert trade.entry_reason == "ENTRY: test"
    assert trade.exit_reason == "TARGET: test"
    assert trade.qty == fills[0].fill_qty
    assert trade.net == trade.gross - trade.costs < 0
    last_position = [e for e in out if isinstance(e, PositionChanged)][-1]
    assert last_position.qty == 0


def test_entry_without_a_quote_is_denied_with_reason() -> None:
    out = run([signal(0, "ENTRY", "x"), tick(20, 10_000, 10_100, 100)])
    (denied,) = [e for e in out if isinstance(e, OrderDenied)]
    assert denied.reason == "NO_QUOTE: token=901"
    assert not [e for e in out if isinstance(e, OrderAccepted)]


def test_feed_stall_kills_cancels_and_squares_off() -> None:
    items: list[Any] = [tick(s, 10_000, 10_100, 10_000 + 2_000 * s, seq=s) for s in range(0, 12)]
    items.insert(5, signal(4.5, "ENTRY", "ENTRY: test"))
    stall = RiskEvent(
        ts_event=T0 + timedelta(seconds=12),
        ts_recv=T0,
        account="*",
        kind="FEED_STALLED",
        detail="no ticks for 10s",
    )
    later: list[Any] = [tick(s, 10_000, 10_100, 50_000 + 2_000 * s, seq=s) for s in range(13, 30)]
    later.insert(3, signal(15.5, "ENTRY", "ENTRY: again"))
    out = run([*items, stall, *later])
    kinds = [e.kind for e in out if isinstance(e, RiskEvent)]
    assert "KILL_SWITCH" in kinds
    assert "HALT" in kinds
    sells = [e for e in out if isinstance(e, OrderFilled) and e.side == "SELL"]
    assert sells
    assert sells[0].reason.startswith("SQUARE_OFF")
    denied = [e for e in out if isinstance(e, OrderDenied)]
    assert denied
    assert denied[-1].reason.startswith("KILL_SWITCH")
    assert [e for e in out if isinstance(e, PositionChanged)][-1].qty == 0


def test_exit_cancels_an_unfilled_entry() -> None:
    # no volume after the entry: the market order cannot fill before the exit signal
    items: list[Any] = [tick(s, 10_000, 10_100, 10_000, seq=s) for s in range(0, 20)]
    items.insert(3, signal(2.5, "ENTRY", "ENTRY: thin"))
    items.insert(10, signal(8.5, "EXIT", "TIMEOUT: thin"))
    out = run(items)
    cancelled = [e for e in out if isinstance(e, OrderCancelled)]
    assert len(cancelled) == 1
    assert "EXIT_SIGNAL" in cancelled[0].cancel_reason


def test_arrival_order_within_lateness_does_not_change_outputs() -> None:
    items = scripted()
    expected = msgspec.json.encode(run(items))
    rnd = random.Random(3)
    for _ in range(5):
        shuffled = sorted(items, key=lambda x: x.ts_event + timedelta(seconds=rnd.uniform(0, 4)))
        assert msgspec.json.encode(run(shuffled)) == expected


def test_feed_health_on_ordered_ticks_lagging_then_stall_kills() -> None:
    lagging: list[Any] = []
    for s in range(8):
        ts = T0 + timedelta(seconds=s)
        lagging.append(
            Tick(
                ts_event=ts,
                ts_recv=ts + timedelta(milliseconds=900),
                token="901",
                exchange="NFO",
                ltp=10_050,
                bid=10_000,
                ask=10_100,
                cum_volume=100 + s,
                seq=s,
            )
        )
    after_gap = tick(30, 10_000, 10_100, 500, seq=30)  # 22 s without a tick
    out = run([*lagging, after_gap])
    kinds = [e.kind for e in out if isinstance(e, RiskEvent)]
    assert kinds.count("FEED_LAGGING") == 1
    assert "FEED_STALLED" in kinds
    assert kinds.index("FEED_STALLED") < kinds.index("KILL_SWITCH")


def test_wall_clock_heartbeat_notices_a_silent_feed_and_releases_buffered_inputs() -> None:
    logic = make_logic()
    rt = logic.new_runtime()
    out: list[Any] = []
    for s in range(5):
        out += logic.on_item(rt, tick(s, 10_000, 10_100, 1_000 + s, seq=s))
    assert not [e for e in out if isinstance(e, OrderFilled)]
    # nothing arrives after the last tick (arrival clock = its event time here): the heartbeat
    # at +8 s releases nothing yet (lateness 10 s), at +16 s the last tick is released and
    # the 12 s quiet spell is declared a stall.
    last = T0 + timedelta(seconds=4)
    assert logic.on_wall_clock(rt, T0 + timedelta(seconds=8), Silence(last, 4.0)) == []
    beat = logic.on_wall_clock(rt, T0 + timedelta(seconds=16), Silence(last, 12.0))
    kinds = [e.kind for e in beat if isinstance(e, RiskEvent)]
    assert kinds[0] == "FEED_STALLED"
    assert "KILL_SWITCH" in kinds
    assert rt.reorder.heap == []
    stalled = next(e for e in beat if isinstance(e, RiskEvent) and e.kind == "FEED_STALLED")
    assert stalled.ts_event == last  # journaled at the last input's event time
    assert "no input arrived for 12.0s" in stalled.detail
    # the same quiet spell is reported once, however many heartbeats see it
    again = logic.on_wall_clock(rt, T0 + timedelta(seconds=17), Silence(last, 13.0))
    assert [e for e in again if isinstance(e, RiskEvent) and e.kind == "FEED_STALLED"] == []


OLD_DAY = datetime(2025, 1, 6, 4, 0, tzinfo=UTC)  # a replayed date, a year before "now"


def live_heartbeats(
    logic: AccountLogic, items: list[Any], wall: datetime, gaps: dict[int, float]
) -> list[Any]:
    """Feed ``items`` as a live run would: a heartbeat every 100 inputs, on a wall clock that
    has nothing to do with the items' event time; ``gaps`` (index → seconds) are quiet
    spells of the arrival clock before that item."""
    rt = logic.new_runtime()
    out: list[Any] = []
    last_arrival = wall
    for i, item in enumerate(items):
        if i in gaps:  # the input goes quiet: heartbeats every second meanwhile
            for s in range(1, int(gaps[i]) + 1):
                now = last_arrival + timedelta(seconds=s)
                out += logic.on_wall_clock(rt, now, Silence(last_arrival, float(s)))
            wall = last_arrival + timedelta(seconds=gaps[i])
        wall += timedelta(milliseconds=1)  # a backlog arrives fast
        last_arrival = wall
        out += logic.on_item(rt, item)
        if i % 100 == 0:
            out += logic.on_wall_clock(rt, wall, Silence(last_arrival, 0.0))
    return out


def stalls(out: list[Any]) -> list[str]:
    kinds = ("FEED_STALLED", "KILL_SWITCH")
    return [e.kind for e in out if isinstance(e, RiskEvent) and e.kind in kinds]


def old_day_backlog() -> list[Any]:
    items: list[Any] = [
        tick(s / 2, 10_000, 10_100, 1_000 + s, seq=s, t0=OLD_DAY) for s in range(2_000)
    ]
    return items


def test_live_mode_over_a_backlog_of_an_old_date_trips_no_kill_switch() -> None:
    """A year-old session caught up at full speed (wall clock − event time ≈ a year, and
    a skewed exchange clock looks the same): arrivals never pause, so nothing is stalled."""
    out = live_heartbeats(make_logic(), old_day_backlog(), datetime.now(UTC), {})
    assert stalls(out) == []


def test_a_12_s_silent_feed_trips_the_kill_switch_once() -> None:
    out = live_heartbeats(make_logic(), old_day_backlog(), datetime.now(UTC), {1_000: 12.0})
    assert stalls(out) == ["FEED_STALLED", "KILL_SWITCH"]


def test_a_9_s_pause_of_the_feed_is_not_a_stall() -> None:
    out = live_heartbeats(make_logic(), old_day_backlog(), datetime.now(UTC), {1_000: 9.0})
    assert stalls(out) == []


def test_end_of_day_square_off_and_no_entries_after_the_cutoff() -> None:
    close = datetime(2026, 7, 8, 9, 40, tzinfo=UTC)  # 15:10 IST
    offset = (close - T0).total_seconds()
    items: list[Any] = [
        tick(offset + s, 10_000, 10_100, 10_000 + 2_000 * s, seq=s) for s in range(0, 420, 2)
    ]
    items.insert(3, signal(offset + 4.5, "ENTRY", "ENTRY: late"))
    items.append(signal(offset + 400.5, "ENTRY", "ENTRY: too late"))  # 15:16:40 IST
    items.sort(key=lambda x: x.ts_event)
    out = run(items)
    notices = [e for e in out if isinstance(e, RiskEvent) and e.kind == "SQUARE_OFF"]
    assert len(notices) == 1
    assert notices[0].detail.startswith("END_OF_DAY: 15:15 IST, positions=1")
    sells = [e for e in out if isinstance(e, OrderFilled) and e.side == "SELL"]
    assert len(sells) == 1
    assert sells[0].reason == "SQUARE_OFF: END_OF_DAY"
    assert sells[0].ts_event.astimezone(IST).time() >= time(15, 15)
    denied = [e for e in out if isinstance(e, OrderDenied)]
    assert [d.reason for d in denied] == ["SESSION_CUTOFF: no entries after 15:15 IST"]
    assert [e for e in out if isinstance(e, PositionChanged)][-1].qty == 0
