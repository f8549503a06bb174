"""Risk engine: each limit with a scripted sequence and its exact denial reason."""

from __future__ import annotations

import copy
import pickle
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pydantic
import pytest

from operators._native import attributes
from operators.ai.adaptive import AdaptiveStateChanged
from operators.events import RiskEvent, Tick
from operators.trading.costs import CostBreakdown
from operators.trading.orders import FillEvent, OrderFilled
from operators.trading.risk import RiskLogic, next_session_open
from operators.trading.risk_limits import (
    OrderApproved,
    OrderDenied,
    OrderIntent,
    RiskLimits,
    fill_report,
    record_trade_result,
    stop_lots,
    volatility_lots,
)
from tests.events import filled
from tests.events import tick as nfo_tick

T0 = datetime(2026, 1, 6, 4, 30, tzinfo=UTC)  # Tuesday 10:00 IST
BIG = 100_000_000  # ₹10,00,000 in paise
SMALL = 10_000_000  # ₹1,00,000 in paise


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _leg(
    ts: datetime, order_id: str, account: str, strategy: str, instrument: str, side: str, qty: int
) -> dict[str, Any]:
    """What an intent and a fill report share: who trades how much of which NIFTY option."""
    return dict(
        ts_event=ts,
        order_id=order_id,
        account=account,
        strategy=strategy,
        instrument=instrument,
        underlying="NIFTY",
        side=side,
        qty=qty,
    )


def intent(
    order_id: str,
    ts: datetime = T0,
    *,
    strategy: str = "s1",
    instrument: str = "OPT1",
    side: str = "BUY",
    qty: int = 65,
    lot: int = 65,
    price: int = 10_000,
    stop: int = 1_000,
    delta: float | None = 0.5,
    atr: float | None = None,
    account: str = "A1",
) -> OrderIntent:
    leg = _leg(ts, order_id, account, strategy, instrument, side, qty)
    return OrderIntent(**leg, lot_size=lot, price=price, stop_distance=stop, delta=delta, atr=atr)


def fill(
    ts: datetime,
    side: str,
    price: int,
    *,
    qty: int = 65,
    strategy: str = "s1",
    instrument: str = "OPT1",
    order_id: str = "",
    costs: int = 0,
) -> OrderFilled:
    return filled(
        ts,
        order_id,
        "A1",
        strategy,
        instrument,
        side,
        qty,
        price,
        fill_id=f"{order_id}:{ts.isoformat()}",
        costs=CostBreakdown(brokerage=costs, total=costs),
    )


def book(logic: RiskLogic, fill: FillEvent) -> list:
    """Book the fill in the portfolio first, then tell risk what the account stage would (risk
    reads positions from the portfolio's book)."""
    logic.book.on_fill(fill)
    return logic.on_fill(fill_report(fill, "NIFTY", 65))


def tick(ts: datetime, token: str = "OPT1", ltp: int = 10_000, bid: int = 0, ask: int = 0) -> Tick:
    return nfo_tick(ts, token, ltp, bid, ask)


def decision(out: list) -> OrderApproved | OrderDenied:
    last = out[-1]
    assert isinstance(last, OrderApproved | OrderDenied)
    return last


def risk_events(out: list) -> list[RiskEvent]:
    return [o for o in out if isinstance(o, RiskEvent)]


# ------------------------------------------------------------------ config and sizing
def test_config_hash_is_stable_and_config_frozen() -> None:
    a = RiskLimits(account="A1", capital=BIG)
    b = RiskLimits(account="A1", capital=BIG)
    c = RiskLimits(account="A1", capital=BIG, max_daily_loss_pct=2.0)
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != c.config_hash()
    assert len(a.config_hash()) == 64
    with pytest.raises(pydantic.ValidationError):
        a.capital = 5
    with pytest.raises(pydantic.ValidationError):
        RiskLimits(account="A1", capital=0)


def test_derived_limits_in_paise() -> None:
    lim = RiskLimits(account="A1", capital=BIG)
    assert lim.risk_per_trade == 1_000_000  # 1 % of ₹10 lakh = ₹10,000
    assert lim.daily_loss_limit == 3_000_000  # 3 %
    assert lim.gross_exposure_limit == BIG
    assert lim.cooldown == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("budget", "atr", "lot", "delta", "mult", "expected"),
    [
        (1_000_000, 20.0, 65, 0.5, 1.0, 15),  # 65,000 paise per lot → 15.38 → 15
        (1_000_000, 20.0, 65, 0.5, 1.2, 18),  # 15 × 1.2
        (1_000_000, 20.0, 65, 0.5, 0.5, 7),  # floor(7.5)
        (1_000_000, 20.0, 65, -0.5, 1.0, 15),  # |delta|
        (1_000_000, 20.0, 65, None, 1.0, 7),  # no delta → 1
        (1_000_000, 50.0, 30, 0.4, 1.5, 24),  # BANKNIFTY: 60,000/lot → 16 → 24
        (1_000_000, 100.0, 100, 1.0, 1.0, 1),  # exactly one lot
        (999_999, 100.0, 100, 1.0, 1.0, 0),
        (1_000_000, 0.0, 65, 0.5, 1.0, 0),
    ],
)
def test_volatility_lots_worked_numbers(
    budget: int, atr: float, lot: int, delta: float | None, mult: float, expected: int
) -> None:
    assert volatility_lots(budget, atr, lot, delta, mult) == expected


def test_stop_lots_and_cooldown_counter() -> None:
    assert stop_lots(1_000_000, 1_000, 65) == 15
    assert stop_lots(1_000_000, 0, 65) == 0
    n, until = record_trade_result(2, -1, T0, 4, timedelta(minutes=15))
    assert (n, until) == (3, None)
    n, until = record_trade_result(3, -1, T0, 4, timedelta(minutes=15))
    assert (n, until) == (0, T0 + timedelta(minutes=15))
    assert record_trade_result(3, 0, T0, 4, timedelta(minutes=15)) == (0, None)


def test_next_session_open_skips_weekend() -> None:
    assert next_session_open(T0) == datetime(2026, 1, 7, 3, 45, tzinfo=UTC)
    friday = datetime(2026, 1, 9, 8, 0, tzinfo=UTC)
    assert next_session_open(friday) == datetime(2026, 1, 12, 3, 45, tzinfo=UTC)


# ------------------------------------------------------------------ sizing in the engine
def test_order_resized_by_volatility_and_stop() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG, max_position_lots=50))
    d = decision(logic.on_order(intent("o1", qty=65 * 20, stop=500, atr=20.0)))
    assert isinstance(d, OrderApproved)
    assert d.qty == 65 * 15
    assert d.requested_qty == 65 * 20
    assert d.reason == "RESIZED: requested_lots=20, approved_lots=15, stop_lots=30, vol_lots=15"


def test_adaptive_multiplier_scales_volatility_size() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG, max_position_lots=50))
    logic.on_adaptive(
        AdaptiveStateChanged(
            ts_event=T0,
            ts_recv=T0,
            account="A1",
            strategy="s1",
            size_multiplier=1.2,
            stop_atr_mult=1.5,
            weight=1.0,
            paused_until=None,
        )
    )
    d = decision(logic.on_order(intent("o1", qty=65 * 30, stop=500, atr=20.0)))
    assert isinstance(d, OrderApproved)
    assert d.qty == 65 * 18


def test_unresized_order_has_empty_reason() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG))
    d = decision(logic.on_order(intent("o1", qty=130, atr=20.0)))
    assert isinstance(d, OrderApproved)
    assert (d.qty, d.reason) == (130, "")


# ------------------------------------------------------------------ each static limit
def test_max_loss_per_trade_denied() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG))
    d = decision(logic.on_order(intent("o1", stop=20_000)))
    assert isinstance(d, OrderDenied)
    assert d.reason == "MAX_LOSS_PER_TRADE: limit=10000.00, risk=13000.00"


def test_volatility_size_zero_denied() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG))
    d = decision(logic.on_order(intent("o1", atr=400.0)))
    assert isinstance(d, OrderDenied)
    assert d.reason == "VOLATILITY_SIZE: budget=10000.00, per_lot_risk=13000.00, multiplier=1.0000"


def test_max_position_lots_counts_open_orders_and_positions() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG, max_position_lots=2))
    assert isinstance(decision(logic.on_order(intent("o1", qty=130))), OrderApproved)
    d = decision(logic.on_order(intent("o2", at(1))))
    assert isinstance(d, OrderDenied)
    assert d.reason == "MAX_POSITION_LOTS: limit=2, lots=3"
    book(logic, fill(at(2), "BUY", 10_000, qty=130, order_id="o1"))
    assert logic.position_qty("OPT1") == 130
    assert logic.state.pending == {}
    d = decision(logic.on_order(intent("o3", at(3))))
    assert d.reason == "MAX_POSITION_LOTS: limit=2, lots=3"
    # the opposite side reduces the position: always allowed
    d = decision(logic.on_order(intent("o4", at(4), side="SELL")))
    assert isinstance(d, OrderApproved)
    assert d.reason == "REDUCING"


def test_max_gross_exposure_denied() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG, max_gross_exposure=1_000_000))
    assert isinstance(decision(logic.on_order(intent("o1"))), OrderApproved)
    d = decision(logic.on_order(intent("o2", at(1), instrument="OPT2")))
    assert isinstance(d, OrderDenied)
    assert d.reason == "MAX_GROSS_EXPOSURE: limit=10000.00, exposure=13000.00"


def test_max_net_delta_denied_and_hedge_allowed() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG, max_net_delta=50))
    assert isinstance(decision(logic.on_order(intent("o1"))), OrderApproved)  # +32.5
    d = decision(logic.on_order(intent("o2", at(1), instrument="OPT2")))
    assert isinstance(d, OrderDenied)
    assert d.reason == "MAX_NET_DELTA: limit=50.00, delta=65.00"
    hedge = intent("o3", at(2), instrument="PE1", delta=-0.5)
    assert isinstance(decision(logic.on_order(hedge)), OrderApproved)  # back to 0


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"qty": 100}, "INVALID_ORDER: qty=100, lot_size=65"),
        ({"qty": 0}, "INVALID_ORDER: qty=0, lot_size=65"),
        ({"price": 0}, "INVALID_ORDER: price=0"),
        ({"account": "B2"}, "INVALID_ORDER: account=B2, expected=A1"),
        ({"stop": 0}, "INVALID_ORDER: stop_distance=0"),
    ],
)
def test_invalid_orders_denied(kwargs: dict, reason: str) -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG))
    d = decision(logic.on_order(intent("o1", **kwargs)))
    assert isinstance(d, OrderDenied)
    assert d.reason == reason


def test_duplicate_order_id_denied() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG))
    logic.on_order(intent("o1"))
    d = decision(logic.on_order(intent("o1", at(1))))
    assert d.reason == "INVALID_ORDER: duplicate order_id=o1"
    logic.on_order_closed("o1", at(2))
    assert isinstance(decision(logic.on_order(intent("o1", at(3)))), OrderApproved)


# ------------------------------------------------------------------ accounting
def test_realised_pnl_net_of_costs_and_flip() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG))
    book(logic, fill(T0, "BUY", 10_000, qty=130, costs=2_000))
    book(logic, fill(at(1), "SELL", 11_000, costs=2_000))
    assert logic.state.session_realised == 65 * 1_000 - 4_000
    book(logic, fill(at(2), "SELL", 12_000, qty=130))
    assert logic.position_qty("OPT1") == -65
    assert logic.state.session_realised == 65 * 1_000 + 65 * 2_000 - 4_000
    logic.on_tick(tick(at(3), ltp=11_500))
    assert logic.unrealised() == 65 * 500
    assert logic.session_pnl() == 65 * 1_000 + 65 * 2_000 - 4_000 + 65 * 500


# ------------------------------------------------------------------ daily loss halt
def test_daily_loss_halts_until_next_session() -> None:
    lim = RiskLimits(account="A1", capital=SMALL)  # daily limit ₹3,000
    logic = RiskLogic(lim)
    assert isinstance(decision(logic.on_order(intent("o1"))), OrderApproved)
    book(logic, fill(at(1), "BUY", 10_000, order_id="o1"))
    out = book(logic, fill(at(2), "SELL", 5_000))  # -₹3,250
    until = datetime(2026, 1, 7, 3, 45, tzinfo=UTC)
    reason = f"DAILY_LOSS_LIMIT: limit=3000.00, pnl=-3250.00, until={until.isoformat()}"
    assert [(e.kind, e.detail) for e in risk_events(out)] == [("HALT", reason)]
    d = decision(logic.on_order(intent("o2", at(3))))
    assert isinstance(d, OrderDenied)
    assert d.reason == reason
    # still halted at the end of the day and just before the next open
    d = decision(logic.on_order(intent("o3", until - timedelta(seconds=1))))
    assert d.reason == reason
    out = logic.on_clock(until + timedelta(seconds=30))
    assert [(e.kind, e.detail, e.ts_event) for e in risk_events(out)] == [
        ("RESUME", "DAILY_LOSS_HALT_END", until)
    ]
    assert logic.session_pnl() == 0
    assert isinstance(
        decision(logic.on_order(intent("o4", until + timedelta(seconds=60)))), OrderApproved
    )


def test_daily_loss_from_marks_still_allows_exit() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=SMALL))
    book(logic, fill(T0, "BUY", 10_000))
    out = logic.on_mark(at(1), "OPT1", 5_000, delta=0.3)
    assert [e.kind for e in risk_events(out)] == ["HALT"]
    assert logic.state.deltas["OPT1"] == 0.3
    d = decision(logic.on_order(intent("x1", at(2), side="SELL")))
    assert isinstance(d, OrderApproved)
    assert d.reason == "REDUCING"
    d = decision(logic.on_order(intent("x2", at(3), side="SELL")))  # would open a short
    assert isinstance(d, OrderDenied)
    assert d.reason.startswith("DAILY_LOSS_LIMIT: limit=3000.00, pnl=-3250.00")


# ------------------------------------------------------------------ cooldowns
def lose(logic: RiskLogic, ts: datetime, strategy: str = "s1", instrument: str = "OPT1") -> list:
    book(logic, fill(ts, "BUY", 10_000, strategy=strategy, instrument=instrument))
    return book(
        logic,
        fill(ts + timedelta(seconds=1), "SELL", 9_990, strategy=strategy, instrument=instrument),
    )


def test_four_losses_start_a_cooldown_with_exact_times() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG, strategies=("s1", "s2")))
    for i in range(3):
        assert risk_events(lose(logic, at(10 * i))) == []
    out = lose(logic, at(30))
    start = at(31)
    until = start + timedelta(minutes=15)
    evs = risk_events(out)
    assert [(e.kind, e.strategy, e.detail, e.ts_event) for e in evs] == [
        ("COOLDOWN", "s1", f"CONSECUTIVE_LOSSES: losses=4, until={until.isoformat()}", start)
    ]
    d = decision(logic.on_order(intent("o1", at(40))))
    assert isinstance(d, OrderDenied)
    assert d.reason == f"COOLDOWN: strategy=s1, until={until.isoformat()}"
    assert isinstance(decision(logic.on_order(intent("o2", at(41), strategy="s2"))), OrderApproved)
    d = decision(logic.on_order(intent("o3", until - timedelta(microseconds=1))))
    assert isinstance(d, OrderDenied)
    out = logic.on_order(intent("o4", until + timedelta(seconds=5)))
    evs = risk_events(out)
    assert [(e.kind, e.strategy, e.detail, e.ts_event) for e in evs] == [
        ("RESUME", "s1", "COOLDOWN_END: strategy=s1", until)
    ]
    assert isinstance(decision(out), OrderApproved)


def test_a_win_resets_the_loss_count() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG, strategies=("s1",)))
    for i in range(3):
        lose(logic, at(10 * i))
    book(logic, fill(at(40), "BUY", 10_000))
    book(logic, fill(at(41), "SELL", 10_010))
    for i in range(3):
        assert risk_events(lose(logic, at(50 + 10 * i))) == []
    assert not logic.is_paused("s1")


def test_all_strategies_paused_is_a_global_pause() -> None:
    logic = RiskLogic(RiskLimits(account="A1", capital=BIG, strategies=("s1", "s2")))
    for i in range(4):
        lose(logic, at(10 * i), "s1")
    first_until = at(31) + timedelta(minutes=15)
    out: list = []
    for i in range(4):
        out = lose(logic, at(100 + 10 * i), "s2", "OPT2")
    second_until = at(131) + timedelta(minutes=15)
    assert [(e.kind, e.detail) for e in risk_events(out)] == [
        ("COOLDOWN", f"CONSECUTIVE_LOSSES: losses=4, until={second_until.isoformat()}"),
        ("HALT", f"GLOBAL_PAUSE: strategies=s1,s2, until={first_until.isoformat()}"),
    ]
    d = decision(logic.on_order(intent("o1", at(200), strategy="s3")))
    assert d.reason == f"GLOBAL_PAUSE: until={first_until.isoformat()}"
    out = logic.on_clock(second_until)
    assert [(e.kind, e.detail, e.ts_event) for e in risk_events(out)] == [
        ("RESUME", "COOLDOWN_END: strategy=s1", first_until),
        ("RESUME", "GLOBAL_PAUSE_END", first_until),
        ("RESUME", "COOLDOWN_END: strategy=s2", second_until),
    ]


# ------------------------------------------------------------------ replay and snapshots
def script() -> list[tuple[str, object]]:
    steps: list[tuple[str, object]] = [
        ("order", intent("o1", qty=65 * 4, atr=20.0)),
        ("fill", fill(at(1), "BUY", 10_000, qty=65 * 4, order_id="o1", costs=1_500)),
        ("tick", tick(at(2), ltp=9_000, bid=8_990, ask=9_010)),
        ("order", intent("o2", at(3), instrument="OPT2", atr=20.0)),
    ]
    for i in range(4):
        t = at(10 + 5 * i)
        steps.append(("fill", fill(t, "BUY", 10_000, strategy="s2", instrument="OPT3")))
        steps.append(
            (
                "fill",
                fill(t + timedelta(seconds=1), "SELL", 9_000, strategy="s2", instrument="OPT3"),
            )
        )
    steps += [
        ("order", intent("o3", at(40), strategy="s2")),
        ("tick", tick(at(41), ltp=5_000, bid=4_990, ask=5_010)),
        ("order", intent("o4", at(42))),
        ("tick", tick(at(43), ltp=5_000, bid=4_000, ask=6_000)),
        ("order", intent("o5", at(44))),
    ]
    return steps


def run(logic: RiskLogic, steps: list[tuple[str, object]]) -> list:
    out: list = []
    for kind, item in steps:
        if kind == "order":
            out += logic.on_order(item)  # type: ignore[arg-type]
        elif kind == "fill":
            out += book(logic, item)  # type: ignore[arg-type]
        else:
            out += logic.on_tick(item)  # type: ignore[arg-type]
    return out


def test_same_sequence_twice_gives_identical_outputs() -> None:
    lim = RiskLimits(account="A1", capital=SMALL, max_daily_loss_pct=50, strategies=("s1", "s2"))
    a = run(RiskLogic(lim), script())
    b = run(RiskLogic(lim), script())
    kinds = [getattr(o, "kind", type(o).__name__) for o in a]
    assert "COOLDOWN" in kinds
    assert "KILL_SWITCH" in kinds
    assert msgspec.json.encode(a) == msgspec.json.encode(b)


def test_snapshot_restore_continue_equals_uninterrupted() -> None:
    lim = RiskLimits(account="A1", capital=SMALL, max_daily_loss_pct=50, strategies=("s1", "s2"))
    steps = script()
    whole = run(RiskLogic(lim), steps)
    first = RiskLogic(lim)
    part1 = run(first, steps[:7])
    restored = RiskLogic(lim, first.snapshot(), copy.deepcopy(first.book))
    part1 += run(first, [])  # the snapshot is a copy: using `first` later changes nothing
    part2 = run(restored, steps[7:])
    assert msgspec.json.encode(part1 + part2) == msgspec.json.encode(whole)


# ------------------------------------------------------------------ derived caches
def _drop_caches(logic: RiskLogic) -> None:
    """Forget what the engine derived for its per-tick path (the quiet-until instant, the
    exposed instruments): every call then applies the plain rules to the state."""
    logic._quiet_state = None
    logic._exposed_state = None


def _check_caches(logic: RiskLogic) -> None:
    """What the engine derived matches its state: the exposed instruments are exactly those
    with an open position or a pending order, and right before the quiet-until instant the
    clock step still has nothing to do."""
    s = logic.state
    if logic._exposed_state is s:
        assert logic._exposed == {p.token for p in logic.positions() if p.qty != 0} | {
            o.instrument for o in s.pending.values()
        }
    if logic._quiet_state is s and s.clock is not None and logic._quiet_until > s.clock:
        probe = copy.deepcopy(logic)
        assert probe._advance(logic._quiet_until - timedelta(microseconds=1)) == []
        assert probe.state == s


def _random_session(seed: int, cached: bool) -> tuple[list[object], RiskLogic]:
    """A random mix of every input, with ticks around the stall limit, late inputs, day
    changes, losing round trips (cooldowns, global pause, daily-loss halt), kills and resets."""
    rng = random.Random(seed)
    logic = RiskLogic(
        RiskLimits(
            account="A1",
            capital=5 * SMALL,
            strategies=("s1", "s2"),
            consecutive_losses=2,
            cooldown_minutes=1.5,
            feed_stall_seconds=2.5,
            max_daily_loss_pct=2.0,
            kill_drawdown_pct=6.0,
            max_spread_pct=3.0,
            max_position_lots=4,
        )
    )
    out: list[object] = []
    now = T0
    orders: list[str] = []
    for n in range(1500):
        if cached:
            _check_caches(logic)
        else:
            _drop_caches(logic)
        r = rng.random()
        step = rng.randrange(0, 600_000)
        if rng.random() < 0.04:  # right at the stall limit, to the microsecond
            step = 2_500_000 + rng.randrange(-2, 3)
        if rng.random() < 0.01:  # to later that day, overnight or over a weekend
            step = rng.randrange(3_600, 3 * 86_400) * 1_000_000
        now += timedelta(microseconds=step)
        ts = now - timedelta(seconds=rng.random() * 3) if rng.random() < 0.05 else now
        token = rng.choice(["OPT1", "OPT2", "OPT3", "OPT4", "OPT5", "OPT6"])
        if r < 0.55:
            bid = rng.randrange(9_000, 11_000, 5)
            ask = bid + (600 if rng.random() < 0.01 else rng.choice([5, 10, 50]))
            out += logic.on_tick(tick(ts, token, ltp=rng.choice([0, bid, ask]), bid=bid, ask=ask))
        elif r < 0.7:
            oid = f"o{n}"
            orders.append(oid)
            out += logic.on_order(
                intent(
                    oid,
                    ts,
                    strategy=rng.choice(["s1", "s2"]),
                    instrument=token,
                    side=rng.choice(["BUY", "SELL"]),
                    qty=65 * rng.randrange(1, 4),
                    atr=rng.choice([None, 5.0, 40.0]),
                )
            )
        elif r < 0.85 and orders:
            oid = rng.choice(orders)
            pending = logic.state.pending.get(oid)
            strategy, instrument = (
                (pending.strategy, pending.instrument) if pending else ("s1", token)
            )
            held = logic.book.position("A1", strategy, instrument)
            side, qty = rng.choice(["BUY", "SELL"]), 65 * rng.randrange(1, 3)
            if held is not None and held.qty != 0 and rng.random() < 0.6:  # back to flat
                side, qty = ("SELL" if held.qty > 0 else "BUY"), abs(held.qty)
            out += book(
                logic,
                fill(
                    ts,
                    side,
                    rng.randrange(8_000, 12_000, 5),
                    qty=qty,
                    strategy=strategy,
                    instrument=instrument,
                    order_id=oid,
                    costs=rng.randrange(0, 5_000),
                ),
            )
        elif r < 0.9 and orders:
            out += logic.on_order_closed(rng.choice(orders), ts)
        elif r < 0.93:
            out += logic.on_mark(ts, token, rng.randrange(8_000, 12_000, 5), rng.random())
        elif r < 0.94:
            out += logic.on_clock(ts)
        elif r < 0.97:
            out += logic.reset_kill_switch(ts)
        elif r < 0.98:
            out += logic.on_risk_event(
                RiskEvent(ts_event=ts, ts_recv=ts, account="*", kind="FEED_STALLED", detail="x")
            )
        else:
            out += logic.on_adaptive(
                AdaptiveStateChanged(
                    ts_event=ts,
                    ts_recv=ts,
                    account="A1",
                    strategy=rng.choice(["s1", "s2"]),
                    size_multiplier=rng.choice([0.5, 1.0, 1.5]),
                    stop_atr_mult=1.5,
                    weight=0.5,
                    paused_until=None,
                )
            )
    return out, logic


@pytest.mark.parametrize("seed", range(12))
def test_per_tick_caches_change_no_output_and_no_state(seed: int) -> None:
    expected, plain = _random_session(seed, cached=False)
    got, fast = _random_session(seed, cached=True)
    assert got == expected
    assert fast.state == plain.state
    kinds = {e.kind for e in expected if isinstance(e, RiskEvent)}
    assert "KILL_SWITCH" in kinds  # the session reaches the interesting paths
    assert "RESUME" in kinds


def test_caches_follow_a_copied_or_replaced_state() -> None:
    _, logic = _random_session(3, cached=True)
    twin = copy.deepcopy(logic)
    again = pickle.loads(pickle.dumps(logic))
    fresh = RiskLogic(logic.limits, copy.deepcopy(logic.state), copy.deepcopy(logic.book))
    later = at(10 * 24 * 3600)
    outs = [x.on_tick(tick(later, "OPT1")) for x in (logic, twin, again, fresh)]
    assert outs[0] == outs[1] == outs[2] == outs[3]
    assert logic.state == twin.state == again.state == fresh.state


def test_an_engine_pickled_before_the_caches_existed_restores() -> None:
    _, logic = _random_session(5, cached=True)
    caches = ("_stall_safe", "_quiet_state", "_quiet_until", "_exposed_state", "_exposed")
    legacy = {k: v for k, v in attributes(logic).items() if k not in caches}
    restored = RiskLogic.__new__(RiskLogic)  # how pickle restores a snapshot without them
    restored.__setstate__(copy.deepcopy(legacy))
    restored = pickle.loads(pickle.dumps(restored))
    reference = RiskLogic(logic.limits, copy.deepcopy(logic.state), copy.deepcopy(logic.book))
    clock = logic.state.clock
    assert clock is not None
    for n in range(50):
        t = tick(clock + timedelta(seconds=n), "OPT1", bid=10_000, ask=10_010)
        assert restored.on_tick(t) == reference.on_tick(t)
    assert restored.state == reference.state
