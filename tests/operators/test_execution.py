"""Execution simulator: scripted tick sequences with exact expected fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.events import Tick
from operators.market.sessions import session_close
from operators.trading.costs import CostModel, compute_costs
from operators.trading.execution import ExecutionConfig, ExecutionLogic, ExecutionState
from operators.trading.fills import FillModel, FixedLatency, JitterLatency, SpreadSlippage
from operators.trading.orders import (
    CancelOrder,
    FillEvent,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderCommandRejected,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTriggered,
    SubmitOrder,
    make_order_id,
)
from tests.events import buy, option
from tests.events import tick as nfo_tick

TOKEN = "43650"
LOT = 65
INST = option(TOKEN, "NIFTY06JAN2626000CE", lot_size=LOT)
T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)  # 09:30 IST


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def tick(
    ms: int,
    *,
    ltp: int = 10_000,
    bid: int = 9_995,
    ask: int = 10_005,
    cum: int = 0,
    last_qty: int = 0,
    token: str = TOKEN,
) -> Tick:
    return nfo_tick(
        at(ms), token, ltp, bid, ask, bid_qty=1000, ask_qty=1000, cum_volume=cum, last_qty=last_qty
    )


def submit(oid: str, ms: int = 0, *, when: datetime | None = None, **kw: Any) -> SubmitOrder:
    """A1's MARKET BUY of one lot for strategy s1 at ``ms`` (or ``when``), unless ``kw`` say
    otherwise."""
    fields: dict[str, Any] = {"strategy": "s1", "token": TOKEN, "qty": LOT} | kw
    return buy(when or at(ms), oid, "A1", **fields)


def logic(
    *,
    participation: str = "1",
    slippage: str = "0",
    mode: str = "touch",
    pen: int = 1,
    costs: bool = False,
    latency_ms: int = 50,
) -> ExecutionLogic:
    cfg = ExecutionConfig(
        latency=FixedLatency(ms=latency_ms),
        slippage=SpreadSlippage(fraction=Decimal(slippage)),
        fill=FillModel(
            mode=mode,  # type: ignore[arg-type]
            penetration_ticks=pen,
            participation=Decimal(participation),
        ),
        costs=CostModel() if costs else None,
    )
    ex = ExecutionLogic({TOKEN: INST}, cfg)
    ex.on_tick(tick(-1000, cum=10_000))  # a volume baseline before any order
    return ex


def fills(events: list[OrderEvent]) -> list[tuple[str, str, int, int, datetime]]:
    return [
        (type(e).__name__, e.order_id, e.fill_qty, e.fill_price, e.ts_event)
        for e in events
        if isinstance(e, FillEvent)
    ]


def kinds(events: list[OrderEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


# --- order ids --------------------------------------------------------------------------


def test_order_ids_are_deterministic_and_distinct():
    a = make_order_id("ema", TOKEN, T0, 1)
    assert a == make_order_id("ema", TOKEN, T0, 1)
    assert a != make_order_id("ema", TOKEN, T0, 2)
    assert a != make_order_id("ema", TOKEN, at(1), 1)
    assert a != make_order_id("vwap", TOKEN, T0, 1)


# --- market -----------------------------------------------------------------------------


def test_market_buy_fills_at_ask_only_after_latency():
    ex = logic()
    assert kinds(ex.on_command(submit("m1"))) == ["OrderAccepted"]
    assert ex.on_tick(tick(0, cum=10_065)) == []  # the tick that caused it
    assert ex.on_tick(tick(50, cum=10_130)) == []  # exactly order time + latency: not after
    ev = ex.on_tick(tick(51, ask=10_010, cum=10_195))
    assert fills(ev) == [("OrderFilled", "m1", 65, 10_010, at(51))]
    assert fills_ev(ev).liquidity == "TAKER"


def test_market_sell_pays_half_spread_slippage_rounded_to_grid():
    ex = logic(slippage="0.5")
    ex.on_command(submit("m2", side="SELL", qty=130))
    # spread 10_020 − 9_990 = 30 paise; 0.5 × 30 = 15 → 3 ticks; sell at bid − 15 = 9_975
    ev = ex.on_tick(tick(100, bid=9_990, ask=10_020, cum=10_130))
    assert fills(ev) == [("OrderFilled", "m2", 130, 9_975, at(100))]


def test_slippage_rounds_half_up_to_tick():
    model = SpreadSlippage(fraction=Decimal("0.25"))
    assert model.slippage(10, 5, "x") == 5  # 2.5 paise = 0.5 tick → 1 tick
    assert model.slippage(8, 5, "x") == 0  # 2.0 paise = 0.4 tick → 0
    assert model.slippage(30, 5, "x") == 10  # 7.5 paise = 1.5 ticks → 2 ticks


def test_jitter_latency_is_seeded_and_bounded():
    a, b = (
        JitterLatency(base_ms=50, jitter_ms=20, seed=7),
        JitterLatency(base_ms=50, jitter_ms=20, seed=7),
    )
    delays = [a.delay(f"o{i}") for i in range(50)]
    assert delays == [b.delay(f"o{i}") for i in range(50)]
    assert all(timedelta(milliseconds=50) <= d <= timedelta(milliseconds=70) for d in delays)
    assert len(set(delays)) > 1


# --- limit ------------------------------------------------------------------------------


def test_marketable_limit_takes_the_ask():
    ex = logic()
    ex.on_command(submit("l1", order_type="LIMIT", price=10_100))
    ev = ex.on_tick(tick(60, ask=10_050, bid=10_040, cum=10_065))
    assert fills(ev) == [("OrderFilled", "l1", 65, 10_050, at(60))]
    assert fills_ev(ev).liquidity == "TAKER"


def test_resting_limit_touch_fills_at_limit_when_ask_reaches_it():
    ex = logic()
    ex.on_command(submit("l2", order_type="LIMIT", price=10_000))
    assert ex.on_tick(tick(60, ask=10_005, cum=10_065)) == []
    ev = ex.on_tick(tick(70, bid=9_990, ask=10_000, cum=10_130))
    assert fills(ev) == [("OrderFilled", "l2", 65, 10_000, at(70))]
    assert fills_ev(ev).liquidity == "MAKER"


def test_resting_limit_penetration_needs_the_book_through_by_n_ticks():
    ex = logic(mode="penetration", pen=2)
    ex.on_command(submit("l3", order_type="LIMIT", side="SELL", price=10_000))
    assert ex.on_tick(tick(60, bid=9_995, ask=10_005, cum=10_065)) == []
    assert ex.on_tick(tick(70, bid=10_000, ask=10_010, cum=10_130)) == []  # touch: not enough
    assert ex.on_tick(tick(80, bid=10_005, ask=10_015, cum=10_195)) == []  # 1 tick through
    ev = ex.on_tick(tick(90, bid=10_010, ask=10_020, cum=10_260))  # 2 ticks through
    assert fills(ev) == [("OrderFilled", "l3", 65, 10_000, at(90))]


# --- stops ------------------------------------------------------------------------------


def test_stop_limit_triggers_on_ltp_and_never_fills_on_the_triggering_tick():
    ex = logic()
    ex.on_command(submit("sl", order_type="SL", trigger=10_100, price=10_110))
    assert ex.on_tick(tick(60, ltp=10_095, bid=10_090, ask=10_100, cum=10_065)) == []
    ev = ex.on_tick(tick(70, ltp=10_100, bid=10_095, ask=10_105, cum=10_130))
    assert kinds(ev) == ["OrderTriggered"]  # the book would fill, but not on this tick
    assert isinstance(ev[0], OrderTriggered)
    assert ev[0].ltp == 10_100
    ev = ex.on_tick(tick(71, ltp=10_105, bid=10_100, ask=10_110, cum=10_195))
    assert fills(ev) == [("OrderFilled", "sl", 65, 10_110, at(71))]


def test_stop_limit_rests_as_limit_after_trigger_when_market_runs_away():
    ex = logic()
    ex.on_command(submit("sl2", order_type="SL", trigger=10_100, price=10_105))
    ex.on_tick(tick(60, ltp=10_100, bid=10_100, ask=10_110, cum=10_065))
    assert ex.on_tick(tick(61, ltp=10_120, bid=10_115, ask=10_125, cum=10_130)) == []
    ev = ex.on_tick(tick(62, ltp=10_105, bid=10_095, ask=10_105, cum=10_195))
    assert fills(ev) == [("OrderFilled", "sl2", 65, 10_105, at(62))]
    assert fills_ev(ev).liquidity == "MAKER"


def test_stop_market_sell_triggers_then_hits_the_bid():
    ex = logic()
    ex.on_command(submit("slm", side="SELL", order_type="SL-M", trigger=9_900))
    assert ex.on_tick(tick(60, ltp=9_905, bid=9_900, ask=9_910, cum=10_065)) == []
    assert kinds(ex.on_tick(tick(80, ltp=9_900, bid=9_895, ask=9_905, cum=10_130))) == [
        "OrderTriggered"
    ]
    ev = ex.on_tick(tick(90, ltp=9_890, bid=9_885, ask=9_895, cum=10_195))
    assert fills(ev) == [("OrderFilled", "slm", 65, 9_885, at(90))]


# --- volume -----------------------------------------------------------------------------


def test_partial_fills_are_capped_by_traded_volume_in_whole_lots():
    ex = logic(participation="0.5")
    ex.on_command(submit("p1", qty=195))
    ev1 = ex.on_tick(tick(60, cum=10_260))  # Δ260 × 0.5 = 130 → 2 lots
    ev2 = ex.on_tick(tick(70, cum=10_360))  # Δ100 × 0.5 = 50 → 0 lots
    ev3 = ex.on_tick(tick(80, cum=10_490, ask=10_010))  # Δ130 × 0.5 = 65 → 1 lot
    assert fills(ev1) == [("OrderPartiallyFilled", "p1", 130, 10_005, at(60))]
    assert ev2 == []
    assert fills(ev3) == [("OrderFilled", "p1", 65, 10_010, at(80))]
    last = ev3[0]
    assert isinstance(last, OrderFilled)
    assert (last.cum_qty, last.leaves_qty, last.cum_value) == (195, 0, 130 * 10_005 + 65 * 10_010)
    assert last.fill_id == "p1#2"


def test_two_resting_orders_never_share_volume_and_keep_time_priority():
    ex = logic()
    ex.on_command(submit("B-late", ms=10, order_type="LIMIT", price=10_000, qty=130))
    ex.on_command(submit("A-early", ms=0, order_type="LIMIT", price=10_000, qty=130))
    # priority is acceptance order: B-late was accepted first (commands arrive in time order)
    ev = ex.on_tick(tick(100, ask=10_000, cum=10_130))  # 130 units traded: one order's worth
    assert fills(ev) == [("OrderFilled", "B-late", 130, 10_000, at(100))]
    ev = ex.on_tick(tick(110, ask=10_000, cum=10_195))  # 65 more
    assert fills(ev) == [("OrderPartiallyFilled", "A-early", 65, 10_000, at(110))]
    ev = ex.on_tick(tick(120, ask=10_000, cum=10_455))  # 260 more, only 65 wanted
    assert fills(ev) == [("OrderFilled", "A-early", 65, 10_000, at(120))]


def test_competing_orders_split_a_thin_tick():
    ex = logic(participation="0.5")
    ex.on_command(submit("x", order_type="MARKET", qty=65))
    ex.on_command(submit("y", ms=1, order_type="MARKET", qty=130))
    ev = ex.on_tick(tick(100, cum=10_390))  # Δ390 × 0.5 = 195 → x 65, y 130
    assert fills(ev) == [
        ("OrderFilled", "x", 65, 10_005, at(100)),
        ("OrderFilled", "y", 130, 10_005, at(100)),
    ]
    ex.on_command(submit("z", ms=200, qty=130))
    ex.on_command(submit("w", ms=201, qty=130))
    ev = ex.on_tick(tick(300, cum=10_650))  # Δ260 × 0.5 = 130 → z all, w nothing
    assert fills(ev) == [("OrderFilled", "z", 130, 10_005, at(300))]


def test_first_tick_of_a_token_counts_its_last_qty():
    ex = ExecutionLogic(
        {TOKEN: INST},
        ExecutionConfig(
            costs=None,
            fill=FillModel(participation=Decimal(1)),
            slippage=SpreadSlippage(fraction=Decimal(0)),
        ),
    )
    ex.on_command(submit("f"))
    ev = ex.on_tick(tick(100, cum=5_000_000, last_qty=65))
    assert fills(ev) == [("OrderFilled", "f", 65, 10_005, at(100))]


# --- IOC / DAY ---------------------------------------------------------------------------


def test_ioc_remainder_is_cancelled_after_its_first_working_tick():
    ex = logic()
    ex.on_command(submit("ioc", order_type="LIMIT", price=10_005, qty=130, validity="IOC"))
    ev = ex.on_tick(tick(60, cum=10_065))
    assert kinds(ev) == ["OrderPartiallyFilled", "OrderCancelled"]
    assert isinstance(ev[1], OrderCancelled)
    assert (ev[1].cancel_reason, ev[1].filled_qty) == ("IOC_REMAINDER", 65)
    assert ex.on_tick(tick(70, cum=10_500)) == []


def test_ioc_that_cannot_trade_is_cancelled_whole():
    ex = logic()
    ex.on_command(submit("ioc2", order_type="LIMIT", price=9_000, validity="IOC"))
    ev = ex.on_tick(tick(60, cum=10_065))
    assert kinds(ev) == ["OrderCancelled"]
    assert isinstance(ev[0], OrderCancelled)
    assert ev[0].filled_qty == 0


def test_day_order_expires_at_1530_ist_and_not_before():
    ex = logic()
    ex.on_command(submit("d1", order_type="LIMIT", price=9_000))
    close = session_close(T0.date())
    assert close == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert ex.on_time(close - timedelta(microseconds=1)) == []
    ev = ex.on_time(close)
    assert kinds(ev) == ["OrderExpired"]
    assert isinstance(ev[0], OrderExpired)
    assert ev[0].ts_event == close
    assert ex.on_time(close + timedelta(seconds=1)) == []


def test_tick_at_the_close_expires_before_it_can_fill():
    ex = logic()
    ex.on_command(submit("d2", order_type="LIMIT", price=10_000))
    close = session_close(T0.date())
    late = nfo_tick(close, TOKEN, 9_990, 9_985, 9_990, cum_volume=20_000)
    assert kinds(ex.on_tick(late)) == ["OrderExpired"]


def test_submit_after_close_is_rejected():
    ex = logic()
    close = session_close(T0.date())
    ev = ex.on_command(submit("late", when=close))
    assert isinstance(ev[0], OrderRejected)
    assert ev[0].reject_reason.startswith("SESSION_CLOSED")


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"order_type": "LIMIT", "price": 10_003}, "PRICE_OFF_GRID"),
        ({"order_type": "SL-M", "trigger": 9_901}, "PRICE_OFF_GRID"),
        ({"order_type": "LIMIT", "price": 0}, "BAD_PRICE"),
        ({"qty": 100}, "QTY_NOT_LOT_MULTIPLE"),
        ({"qty": 0}, "BAD_QTY"),
        ({"token": "nope"}, "UNKNOWN_INSTRUMENT"),
        ({"order_type": "BRACKET", "target": 9_900, "stop": 10_100}, "BAD_BRACKET"),
        ({"order_type": "SL", "trigger": 10_100, "price": 10_000}, "BAD_STOP_LIMIT"),
    ],
)
def test_invalid_orders_are_rejected_with_a_reason(kw, code):
    ex = logic()
    ev = ex.on_command(submit("bad", **kw))
    assert len(ev) == 1
    assert isinstance(ev[0], OrderRejected)
    assert ev[0].reject_reason.startswith(code + ":")
    assert ex.on_tick(tick(100, ask=9_000, cum=20_000)) == []


def test_duplicate_submit_is_refused_without_touching_the_order():
    ex = logic()
    ex.on_command(submit("dup"))
    ev = ex.on_command(submit("dup"))
    assert isinstance(ev[0], OrderCommandRejected)
    assert ev[0].reject_reason == "DUPLICATE_ORDER_ID"
    assert len(fills(ex.on_tick(tick(100, cum=10_500)))) == 1


# --- cancel / modify ---------------------------------------------------------------------


def test_cancel_then_cancel_again():
    ex = logic()
    ex.on_command(submit("c1", order_type="LIMIT", price=9_000))
    ev = ex.on_command(CancelOrder(ts_event=at(10), ts_recv=at(10), order_id="c1", account="A1"))
    assert kinds(ev) == ["OrderCancelled"]
    ev = ex.on_command(CancelOrder(ts_event=at(20), ts_recv=at(20), order_id="c1", account="A1"))
    assert kinds(ev) == ["OrderCommandRejected"]
    assert ex.on_tick(tick(100, ask=8_000, bid=7_990, cum=20_000)) == []


def test_modify_reprices_and_restarts_latency_and_priority():
    ex = logic()
    ex.on_command(submit("m", order_type="LIMIT", price=9_000))
    ex.on_command(submit("n", ms=5, order_type="LIMIT", price=9_950))
    ev = ex.on_command(
        ModifyOrder(ts_event=at(100), ts_recv=at(100), order_id="m", account="A1", price=9_950)
    )
    assert isinstance(ev[0], OrderModified)
    assert ev[0].price == 9_950
    # at 120 only "n" is eligible (m waits until 150); at 151 both, "n" keeps priority
    assert fills(ex.on_tick(tick(120, bid=9_940, ask=9_950, cum=10_065))) == [
        ("OrderFilled", "n", 65, 9_950, at(120))
    ]
    assert fills(ex.on_tick(tick(151, bid=9_940, ask=9_950, cum=10_130))) == [
        ("OrderFilled", "m", 65, 9_950, at(151))
    ]
    bad = ex.on_command(
        ModifyOrder(ts_event=at(200), ts_recv=at(200), order_id="m", account="A1", price=9_955)
    )
    assert kinds(bad) == ["OrderCommandRejected"]


def test_modify_to_off_grid_price_is_refused():
    ex = logic()
    ex.on_command(submit("m", order_type="LIMIT", price=9_000))
    ev = ex.on_command(
        ModifyOrder(ts_event=at(1), ts_recv=at(1), order_id="m", account="A1", price=9_002)
    )
    assert isinstance(ev[0], OrderCommandRejected)
    assert ev[0].reject_reason.startswith("PRICE_OFF_GRID")


# --- brackets ---------------------------------------------------------------------------


def bracket(ex: ExecutionLogic, qty: int = LOT) -> None:
    ex.on_command(
        submit("br", order_type="BRACKET", qty=qty, target=10_200, stop=9_900, reason="ema cross")
    )


def test_bracket_target_fills_and_cancels_stop():
    ex = logic()
    bracket(ex)
    ev = ex.on_tick(tick(100, cum=10_065))
    assert kinds(ev) == ["OrderFilled", "OrderAccepted", "OrderAccepted"]
    tgt, stp = ev[1], ev[2]
    assert isinstance(tgt, OrderAccepted)
    assert isinstance(stp, OrderAccepted)
    assert (tgt.order_id, tgt.side, tgt.order_type, tgt.price, tgt.qty) == (
        "br.T",
        "SELL",
        "LIMIT",
        10_200,
        65,
    )
    assert (stp.order_id, stp.order_type, stp.trigger) == ("br.S", "SL-M", 9_900)
    assert tgt.reason == "BRACKET_TARGET: ema cross"
    assert ex.on_tick(tick(120, bid=10_100, ask=10_110, cum=10_130)) == []  # before latency
    assert ex.on_tick(tick(151, bid=10_150, ask=10_160, cum=10_195)) == []
    ev = ex.on_tick(tick(160, ltp=10_200, bid=10_200, ask=10_205, cum=10_260))
    assert fills(ev) == [("OrderFilled", "br.T", 65, 10_200, at(160))]
    assert isinstance(ev[1], OrderCancelled)
    assert ev[1].order_id == "br.S"
    assert ev[1].cancel_reason == "OCO: br.T filled"
    assert ex.on_tick(tick(200, ltp=9_800, bid=9_795, ask=9_805, cum=20_000)) == []


def test_bracket_stop_fills_and_cancels_target():
    ex = logic()
    bracket(ex)
    ex.on_tick(tick(100, cum=10_065))
    ev = ex.on_tick(tick(160, ltp=9_900, bid=9_895, ask=9_905, cum=10_130))
    assert kinds(ev) == ["OrderTriggered"]
    assert ev[0].order_id == "br.S"
    ev = ex.on_tick(tick(170, ltp=9_880, bid=9_875, ask=9_885, cum=10_195))
    assert fills(ev) == [("OrderFilled", "br.S", 65, 9_875, at(170))]
    assert isinstance(ev[1], OrderCancelled)
    assert ev[1].order_id == "br.T"


def test_bracket_children_follow_partial_entry_and_partial_exit():
    ex = logic(participation="0.5")
    bracket(ex, qty=130)
    ev = ex.on_tick(tick(100, cum=10_130))  # 65 of 130
    assert kinds(ev) == ["OrderPartiallyFilled", "OrderAccepted", "OrderAccepted"]
    assert [e.qty for e in ev[1:] if isinstance(e, OrderAccepted)] == [65, 65]
    ev = ex.on_tick(tick(110, cum=10_260))  # the other 65: children grow to 130
    assert kinds(ev) == ["OrderFilled", "OrderModified", "OrderModified"]
    assert [e.qty for e in ev[1:] if isinstance(e, OrderModified)] == [130, 130]
    ev = ex.on_tick(tick(200, ltp=10_200, bid=10_200, ask=10_205, cum=10_390))  # target 65
    assert kinds(ev) == ["OrderPartiallyFilled", "OrderModified"]
    assert isinstance(ev[1], OrderModified)
    assert (ev[1].order_id, ev[1].qty) == ("br.S", 65)
    assert ev[1].modify_reason == "OCO_REDUCE"
    ev = ex.on_tick(tick(210, ltp=9_900, bid=9_895, ask=9_905, cum=10_400))
    assert kinds(ev) == ["OrderTriggered"]
    ev = ex.on_tick(tick(220, ltp=9_890, bid=9_890, ask=9_900, cum=10_530))
    assert fills(ev) == [("OrderFilled", "br.S", 65, 9_890, at(220))]
    assert isinstance(ev[1], OrderCancelled)
    assert ev[1].order_id == "br.T"
    assert ev[1].filled_qty == 65


def test_cancelling_a_bracket_parent_cancels_its_children():
    ex = logic()
    bracket(ex)
    ex.on_tick(tick(100, cum=10_065))
    ev = ex.on_command(CancelOrder(ts_event=at(120), ts_recv=at(120), order_id="br", account="A1"))
    assert sorted(e.order_id for e in ev) == ["br.S", "br.T"]
    assert all(isinstance(e, OrderCancelled) for e in ev)


# --- costs, snapshots, determinism -------------------------------------------------------


def test_fills_carry_costs_with_brokerage_on_first_fill_only():
    ex = logic(costs=True, participation="0.5")
    ex.on_command(submit("c", qty=130))
    f1 = fills_ev(ex.on_tick(tick(100, cum=10_130)))
    f2 = fills_ev(ex.on_tick(tick(110, cum=10_260)))
    assert f1.costs == compute_costs("BUY", 65, 10_005, T0.date(), first_fill=True)
    assert f2.costs == compute_costs("BUY", 65, 10_005, T0.date(), first_fill=False)
    assert (f1.costs.brokerage, f2.costs.brokerage) == (2000, 0)


def fills_ev(events: list[OrderEvent]) -> FillEvent:
    found = [e for e in events if isinstance(e, FillEvent)]
    assert len(found) == 1
    return found[0]


def script() -> list[SubmitOrder | CancelOrder | Tick]:
    return [
        submit("a", order_type="BRACKET", qty=130, target=10_100, stop=9_900, reason="r1"),
        submit("b", ms=5, order_type="LIMIT", price=9_990, side="BUY", qty=65),
        tick(100, cum=10_130),
        tick(110, bid=9_985, ask=9_990, cum=10_300),
        submit("c", ms=120, order_type="SL-M", side="SELL", trigger=9_950, qty=65),
        tick(200, ltp=9_950, bid=9_945, ask=9_955, cum=10_400),
        tick(210, ltp=9_940, bid=9_935, ask=9_945, cum=10_600),
        tick(300, ltp=10_100, bid=10_100, ask=10_105, cum=10_800),
        tick(310, ltp=10_100, bid=10_100, ask=10_105, cum=11_000),
    ]


def run(ex: ExecutionLogic, items: list[SubmitOrder | CancelOrder | Tick]) -> list[OrderEvent]:
    out: list[OrderEvent] = []
    for item in items:
        out.extend(ex.on_tick(item) if isinstance(item, Tick) else ex.on_command(item))
    return out


def test_snapshot_restore_continue_equals_uninterrupted_run():
    items = script()
    whole = run(logic(costs=True, participation="0.5"), items)
    assert any(isinstance(e, OrderFilled) for e in whole)
    for cut in range(1, len(items)):
        first = logic(costs=True, participation="0.5")
        head = run(first, items[:cut])
        blob = msgspec.msgpack.encode(first.snapshot())
        restored = ExecutionLogic(
            {TOKEN: INST}, first.config, msgspec.msgpack.decode(blob, type=ExecutionState)
        )
        assert head + run(restored, items[cut:]) == whole


def test_events_round_trip_through_json():
    events = run(logic(costs=True), script())
    union = (
        OrderAccepted
        | OrderRejected
        | OrderModified
        | OrderCommandRejected
        | OrderTriggered
        | OrderPartiallyFilled
        | OrderFilled
        | OrderCancelled
        | OrderExpired
    )
    for e in events:
        assert msgspec.json.decode(msgspec.json.encode(e), type=union) == e


# --- properties -------------------------------------------------------------------------

order_st = st.fixed_dictionaries(
    {
        "order_type": st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M", "BRACKET"]),
        "side": st.sampled_from(["BUY", "SELL"]),
        "lots": st.integers(1, 4),
        "offset": st.integers(-6, 6),
        "ioc": st.booleans(),
        "ms": st.integers(0, 2_000),
    }
)
tick_st = st.tuples(
    st.integers(0, 3_000), st.integers(-10, 10), st.integers(1, 4), st.integers(0, 400)
)


def build(orders: list[dict], ticks: list[tuple[int, int, int, int]]) -> list:
    items: list[tuple[int, int, object]] = []
    for i, o in enumerate(orders):
        px = 10_000 + 5 * o["offset"]
        buy = o["side"] == "BUY"
        kw: dict[str, object] = {
            "side": o["side"],
            "order_type": o["order_type"],
            "qty": LOT * o["lots"],
            "ms": o["ms"],
            "validity": "IOC" if o["ioc"] else "DAY",
        }
        if o["order_type"] == "LIMIT":
            kw["price"] = px
        elif o["order_type"] == "SL":
            kw.update(trigger=px, price=px + (10 if buy else -10))
        elif o["order_type"] == "SL-M":
            kw["trigger"] = px
        elif o["order_type"] == "BRACKET":
            kw.update(target=px + (50 if buy else -50), stop=px - (50 if buy else -50))
        items.append((o["ms"], 0, submit(f"o{i}", **kw)))  # type: ignore[arg-type]
    cum = 10_000
    for j, (ms, move, spread_ticks, dv) in enumerate(sorted(ticks)):
        cum += dv
        mid = 10_000 + 5 * move
        items.append(
            (
                ms,
                1 + j,
                tick(ms, ltp=mid, bid=mid - 5 * spread_ticks, ask=mid + 5 * spread_ticks, cum=cum),
            )
        )
    return [x for _, _, x in sorted(items, key=lambda t: (t[0], t[1]))]


@settings(max_examples=60, deadline=None)
@given(st.lists(order_st, max_size=6), st.lists(tick_st, max_size=25))
def test_same_inputs_give_identical_events_and_fills_respect_limits(orders, ticks):
    items = build(orders, ticks)
    first = run(logic(costs=True, participation="0.5"), items)
    second = run(logic(costs=True, participation="0.5"), items)
    assert msgspec.json.encode(first) == msgspec.json.encode(second)
    accepted = {e.order_id: e for e in first if isinstance(e, OrderAccepted)}
    filled: dict[str, int] = {}
    for e in first:
        if isinstance(e, FillEvent):
            acc = accepted[e.order_id]
            assert e.ts_event > acc.ts_event + timedelta(milliseconds=50)
            assert e.fill_qty % LOT == 0
            assert e.fill_price % 5 == 0
            assert e.fill_price > 0
            filled[e.order_id] = filled.get(e.order_id, 0) + e.fill_qty
            assert e.cum_qty == filled[e.order_id]
            assert e.costs.total >= 0
    for oid, qty in filled.items():
        assert qty <= max(
            e.qty
            for e in first
            if isinstance(e, OrderAccepted | OrderModified) and e.order_id == oid
        )
    # volume: fills on one tick never exceed floor(Δcum × 0.5)
    prev = 10_000
    for item in items:
        if isinstance(item, Tick):
            cap = (item.cum_volume - prev) // 2
            prev = item.cum_volume
            taken = sum(
                e.fill_qty
                for e in first
                if isinstance(e, FillEvent) and e.ts_event == item.ts_event
            )
            same_ts = [i for i in items if isinstance(i, Tick) and i.ts_event == item.ts_event]
            if len(same_ts) == 1:
                assert taken <= cap
