"""Kill switch: each trigger fires, cancels, squares off, halts; nothing trades after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from operators.events import RiskEvent, Tick
from operators.trading.kill_switch import (
    FlattenAccount,
    SquareOffLeg,
    drawdown_breach,
    spread_breach,
    stall_breach,
)
from operators.trading.risk import RiskLogic
from operators.trading.risk_limits import OrderApproved, OrderDenied, RiskLimits
from tests.operators.test_risk import SMALL, at, book, fill, intent, tick

T0 = datetime(2026, 1, 6, 4, 30, tzinfo=UTC)  # Tuesday 10:00 IST


def armed() -> RiskLogic:
    """Long 65 OPT1 (s1) and short 65 OPT2 (s2), plus one open order o9 on OPT3."""
    lim = RiskLimits(account="A1", capital=SMALL, max_daily_loss_pct=20, max_position_lots=5)
    logic = RiskLogic(lim)
    book(logic, fill(T0, "BUY", 10_000))
    book(logic, fill(T0, "SELL", 10_000, strategy="s2", instrument="OPT2"))
    out = logic.on_order(intent("o9", at(1), instrument="OPT3"))
    assert isinstance(out[-1], OrderApproved)
    return logic


def assert_killed(out: list, ts: datetime, reason: str) -> None:
    risk = [o for o in out if isinstance(o, RiskEvent)]
    assert [(e.kind, e.ts_event) for e in risk] == [
        ("KILL_SWITCH", ts),
        ("CANCEL_ALL", ts),
        ("SQUARE_OFF", ts),
        ("SQUARE_OFF", ts),
        ("HALT", ts),
    ]
    assert risk[0].detail == reason
    assert risk[1].detail == "orders=o9"
    assert [(e.strategy, e.instrument, e.detail) for e in risk[2:4]] == [
        ("s1", "OPT1", "side=SELL, qty=65, type=MARKET"),
        ("s2", "OPT2", "side=BUY, qty=65, type=MARKET"),
    ]
    assert risk[4].detail == "KILL_SWITCH: trading halted until manual reset"
    cmd = out[-1]
    assert isinstance(cmd, FlattenAccount)
    assert cmd.reason == reason
    assert cmd.cancel_order_ids == ("o9",)
    assert cmd.legs == (
        SquareOffLeg(strategy="s1", instrument="OPT1", side="SELL", qty=65),
        SquareOffLeg(strategy="s2", instrument="OPT2", side="BUY", qty=65),
    )


def assert_nothing_trades(logic: RiskLogic, ts: datetime, reason: str) -> None:
    for i, kw in enumerate([{}, {"side": "SELL"}, {"strategy": "s9", "instrument": "OPT7"}]):
        out = logic.on_order(intent(f"after{i}", ts + timedelta(seconds=i), **kw))  # type: ignore[arg-type]
        d = out[-1]
        assert isinstance(d, OrderDenied)
        assert d.reason == f"KILL_SWITCH: {reason}"
    # a later trigger does not fire a second sequence
    again = logic.on_tick(tick(ts + timedelta(seconds=5), bid=1_000, ask=9_000, ltp=5_000))
    assert not any(isinstance(o, RiskEvent) and o.kind == "KILL_SWITCH" for o in again)


def test_session_drawdown_trigger() -> None:
    logic = armed()
    out = logic.on_tick(tick(at(2), ltp=9_000, bid=8_990, ask=9_010))  # long -₹650
    assert not any(isinstance(o, RiskEvent) for o in out)
    ts = at(3)
    out = logic.on_tick(tick(ts, ltp=2_000, bid=1_995, ask=2_005))  # -₹5,200 = 5.2 %
    reason = "SESSION_DRAWDOWN: limit_pct=5.00, drawdown_pct=5.20, peak=100000.00, equity=94800.00"
    assert_killed(out, ts, reason)
    assert_nothing_trades(logic, at(10), reason)


def test_drawdown_is_measured_from_the_session_peak() -> None:
    assert drawdown_breach(100_000, 95_000, 5.0) is not None
    assert drawdown_breach(100_000, 95_001, 5.0) is None
    logic = RiskLogic(RiskLimits(account="A1", capital=SMALL, max_daily_loss_pct=20))
    book(logic, fill(T0, "BUY", 10_000, qty=650))
    logic.on_tick(tick(at(1), ltp=11_000))  # +₹6,500 → peak ₹1,06,500
    out = logic.on_tick(tick(at(2), ltp=10_100))  # equity ₹1,00,650: -5.49 % from peak
    kinds = [o.kind for o in out if isinstance(o, RiskEvent)]
    assert kinds[0] == "KILL_SWITCH"
    assert logic.session_pnl() > 0  # a profit on the day, still killed


def test_feed_stalled_event_trigger() -> None:
    logic = armed()
    ts = at(4)
    ev = RiskEvent(
        ts_event=ts, ts_recv=ts, account="feed", kind="FEED_STALLED", detail="no data 12s"
    )
    out = logic.on_risk_event(ev)
    reason = "FEED_STALLED: no data 12s"
    assert_killed(out, ts, reason)
    assert_nothing_trades(logic, at(10), reason)


def test_other_risk_events_do_not_kill() -> None:
    logic = armed()
    ev = RiskEvent(ts_event=at(4), ts_recv=at(4), account="feed", kind="FEED_LAGGING", detail="2s")
    assert logic.on_risk_event(ev) == []
    assert not logic.state.killed


def test_no_ticks_for_ten_seconds_trigger() -> None:
    logic = armed()
    logic.on_tick(tick(at(2), ltp=10_000))
    assert logic.on_clock(at(12)) == []  # exactly 10 s: not yet
    ts = at(12.5)
    out = logic.on_clock(ts)
    reason = "FEED_STALLED: gap_s=10.500, limit_s=10.000"
    assert_killed(out, ts, reason)
    assert_nothing_trades(logic, at(20), reason)


def test_a_tick_after_a_long_gap_trips_before_it_is_used() -> None:
    logic = armed()
    logic.on_tick(tick(at(2)))
    out = logic.on_tick(tick(at(14)))
    assert_killed(out, at(14), "FEED_STALLED: gap_s=12.000, limit_s=10.000")


def test_overnight_gap_is_not_a_stall() -> None:
    close_ist = datetime(2026, 1, 6, 9, 59, 58, tzinfo=UTC)  # 15:29:58 IST
    assert stall_breach(close_ist, close_ist + timedelta(hours=18), 10.0) is None
    assert stall_breach(close_ist - timedelta(seconds=20), close_ist + timedelta(hours=18), 10.0)
    assert stall_breach(None, close_ist, 10.0) is None


def test_spread_blowout_on_held_instrument_trigger() -> None:
    logic = armed()
    # not held and no order: ignored
    assert logic.on_tick(tick(at(2), token="OPT5", ltp=10_000, bid=9_000, ask=11_000)) == []
    ts = at(3)
    out = logic.on_tick(tick(ts, token="OPT1", ltp=9_300, bid=9_000, ask=9_600))
    reason = (
        "SPREAD_BLOWOUT: instrument=OPT1, spread_pct=6.45, limit_pct=5.00, bid=90.00, ask=96.00"
    )
    assert_killed(out, ts, reason)
    assert_nothing_trades(logic, at(10), reason)


def test_spread_on_instrument_with_open_order_only_trips() -> None:
    logic = armed()
    out = logic.on_tick(tick(at(2), token="OPT3", ltp=10_000, bid=9_700, ask=10_300))
    assert next(o.kind for o in out if isinstance(o, RiskEvent)) == "KILL_SWITCH"


def test_spread_rule_edges() -> None:
    t = Tick(ts_event=T0, ts_recv=T0, token="X", exchange="NFO", ltp=10_000, bid=9_750, ask=10_250)
    assert spread_breach(t, 5.0) is None  # exactly 5 %
    wide = Tick(
        ts_event=T0, ts_recv=T0, token="X", exchange="NFO", ltp=10_000, bid=9_700, ask=10_300
    )
    assert spread_breach(wide, 5.0) is not None
    no_book = Tick(ts_event=T0, ts_recv=T0, token="X", exchange="NSE", ltp=10_000)
    assert spread_breach(no_book, 5.0) is None


def test_square_off_fills_flatten_and_reset_rearms() -> None:
    logic = armed()
    logic.on_risk_event(
        RiskEvent(ts_event=at(4), ts_recv=at(4), account="A1", kind="FEED_STALLED", detail="x")
    )
    assert logic.state.pending == {}
    book(logic, fill(at(5), "SELL", 9_900))
    book(logic, fill(at(5), "BUY", 10_100, strategy="s2", instrument="OPT2"))
    assert logic.position_qty("OPT1") == 0
    assert logic.position_qty("OPT2") == 0
    assert logic.on_order(intent("o10", at(6)))[-1].reason == "KILL_SWITCH: FEED_STALLED: x"  # type: ignore[union-attr]
    out = logic.reset_kill_switch(at(60))
    assert [(o.kind, o.detail) for o in out if isinstance(o, RiskEvent)] == [
        ("RESUME", "KILL_SWITCH_RESET")
    ]
    assert isinstance(logic.on_order(intent("o11", at(61)))[-1], OrderApproved)
