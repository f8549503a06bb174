"""Issue 13 item 5: an operator's reset re-arms a killed or halted account, and the account
stage journals the command in event-time order with its other inputs."""

from __future__ import annotations

from datetime import timedelta

from operators.events import RiskEvent
from operators.trading.risk import RiskLogic
from operators.trading.risk_limits import OrderApproved, OrderDenied, RiskLimits
from tests.operators.test_account_stage import T0, make_logic, tick
from tests.operators.test_kill_switch import armed
from tests.operators.test_risk import SMALL, at, book, fill, intent


def _kinds(out: list) -> list[tuple[str, str]]:
    return [(o.kind, o.detail) for o in out if isinstance(o, RiskEvent)]


def test_reset_lifts_a_daily_loss_halt() -> None:
    limits = RiskLimits(
        account="A1", capital=SMALL, max_daily_loss_pct=3, kill_drawdown_pct=50, max_position_lots=5
    )
    logic = RiskLogic(limits)
    book(logic, fill(at(0), "BUY", 10_000))
    assert [k for k, _ in _kinds(book(logic, fill(at(1), "SELL", 5_000)))] == ["HALT"]
    assert isinstance(logic.on_order(intent("o1", at(2)))[-1], OrderDenied)
    assert _kinds(logic.operator_reset(at(3))) == [("RESUME", "DAILY_LOSS_HALT_RESET")]
    assert isinstance(logic.on_order(intent("o2", at(4)))[-1], OrderApproved)


def test_reset_re_arms_the_kill_switch_and_rebases_the_drawdown() -> None:
    logic = armed()
    stalled = RiskEvent(
        ts_event=at(4), ts_recv=at(4), account="A1", kind="FEED_STALLED", detail="x"
    )
    assert "KILL_SWITCH" in [k for k, _ in _kinds(logic.on_risk_event(stalled))]
    assert isinstance(logic.on_order(intent("o10", at(5)))[-1], OrderDenied)
    assert _kinds(logic.operator_reset(at(6))) == [("RESUME", "KILL_SWITCH_RESET")]
    assert logic.state.peak_equity == logic.equity()
    assert isinstance(logic.on_order(intent("o11", at(7)))[-1], OrderApproved)


def test_account_stage_journals_the_reset_in_event_time_order() -> None:
    logic = make_logic()
    rt = logic.new_runtime()
    reset = RiskEvent(
        ts_event=T0 + timedelta(seconds=5),
        ts_recv=T0 + timedelta(seconds=5),
        account="paper",
        kind="OPERATOR_RESET",
        detail="by ops: feed is back",
    )
    out = logic.on_item(rt, reset)  # held back by the reorder buffer like any input
    assert out == []
    for sec in (1, 2, 30):
        out += logic.on_item(rt, tick(sec, 100, 110, 65 * sec))
    out += logic.on_eof(rt)
    journaled = [o for o in out if isinstance(o, RiskEvent) and o.kind == "OPERATOR_RESET"]
    assert journaled == [reset]
