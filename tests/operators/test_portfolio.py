"""Positions, P&L, round trips, net delta and square-off."""

from __future__ import annotations

import copy
import pickle
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.events import Instrument, Tick
from operators.trading.costs import ZERO_COSTS, compute_costs
from operators.trading.execution import ExecutionConfig, ExecutionLogic
from operators.trading.fills import FillModel, SpreadSlippage
from operators.trading.orders import FillEvent, OrderFilled
from operators.trading.portfolio import PortfolioLogic, PortfolioState, PositionChanged, TradeClosed
from tests.events import analytics, filled
from tests.events import tick as nfo_tick

CE = Instrument(token="1", symbol="NIFTYCE", underlying="NIFTY", kind="CE", lot_size=65)
PE = Instrument(token="2", symbol="NIFTYPE", underlying="NIFTY", kind="PE", lot_size=65)
BN = Instrument(token="3", symbol="BNCE", underlying="BANKNIFTY", kind="CE", lot_size=30)
INSTRUMENTS = {i.token: i for i in (CE, PE, BN)}
T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


_n = iter(range(1_000_000))


def fill(
    side: str,
    qty: int,
    price: int,
    s: float = 0,
    *,
    token: str = "1",
    strategy: str = "s1",
    reason: str = "",
    costs: bool = True,
) -> OrderFilled:
    n = next(_n)
    c = compute_costs(side, qty, price, T0.date()) if costs else ZERO_COSTS  # type: ignore[arg-type]
    return filled(
        at(s), f"o{n}", strategy, token, side, qty, price, run_id="r1", costs=c, reason=reason
    )


def quote(token: str, bid: int, ask: int, s: float = 0) -> Tick:
    return Tick(
        ts_event=at(s), ts_recv=at(s), token=token, exchange="NFO", ltp=bid, bid=bid, ask=ask
    )


def test_round_trip_long_gives_trade_with_reasons_and_net():
    pf = PortfolioLogic(INSTRUMENTS)
    buy = fill("BUY", 65, 10_000, 0, reason="ema cross up")
    sell = fill("SELL", 65, 10_100, 30, reason="target hit")
    out1 = pf.on_fill(buy)
    assert [type(e).__name__ for e in out1] == ["PositionChanged"]
    out2 = pf.on_fill(sell)
    assert [type(e).__name__ for e in out2] == ["TradeClosed", "PositionChanged"]
    trade = out2[0]
    assert isinstance(trade, TradeClosed)
    # gross = (10_100 − 10_000) × 65 = 6_500 paise; costs = buy 2_654 + sell 3_284 (see costs)
    costs = buy.costs.total + sell.costs.total
    assert (trade.gross, trade.costs, trade.net) == (6_500, costs, 6_500 - costs)
    assert (trade.direction, trade.qty, trade.entry_ts, trade.exit_ts) == (
        "LONG",
        65,
        at(0),
        at(30),
    )
    assert (trade.entry_price, trade.exit_price) == (Decimal(10_000), Decimal(10_100))
    assert (trade.entry_reason, trade.exit_reason) == ("ema cross up", "target hit")
    assert (trade.strategy, trade.run_id, trade.underlying) == ("s1", "r1", "NIFTY")
    flat = out2[1]
    assert isinstance(flat, PositionChanged)
    assert (flat.qty, flat.realised, flat.costs, flat.unrealised) == (0, 6_500, costs, 0)
    assert flat.net == 6_500 - costs


def test_fifo_realised_and_unrealised_marked_to_mid():
    pf = PortfolioLogic(INSTRUMENTS)
    pf.on_fill(fill("BUY", 65, 10_000, 0, costs=False))
    pf.on_fill(fill("BUY", 65, 11_000, 1, costs=False))
    out = pf.on_fill(fill("SELL", 65, 12_000, 2, costs=False))
    pos = out[-1]
    assert isinstance(pos, PositionChanged)
    # FIFO: the first lot (10_000) closes: realised (12_000 − 10_000) × 65 = 130_000
    assert (pos.qty, pos.realised, pos.avg_price) == (65, 130_000, Decimal(11_000))
    pf.on_tick(quote("1", 11_500, 11_505))
    [mtm] = pf.mark_to_market(at(3))
    # mid 11_502.5; unrealised (11_502.5 − 11_000) × 65 = 32_662.5
    assert (mtm.mark, mtm.unrealised) == (Decimal("11502.5"), Decimal("32662.5"))
    assert mtm.net == Decimal("162662.5")


def test_flip_closes_one_trip_and_opens_a_short_with_split_costs():
    pf = PortfolioLogic(INSTRUMENTS)
    b = fill("BUY", 65, 10_000, 0, reason="in")
    s = fill("SELL", 195, 10_200, 5, reason="flip")
    pf.on_fill(b)
    out = pf.on_fill(s)
    trade, pos = out
    assert isinstance(trade, TradeClosed)
    assert isinstance(pos, PositionChanged)
    # a third of the flip fill closes the long: its costs split 1/3 (rounded down) : 2/3
    close_part = s.costs.total * 65 // 195
    assert trade.costs == b.costs.total + close_part
    assert trade.gross == 200 * 65
    assert (pos.qty, pos.avg_price) == (-130, Decimal(10_200))
    b2 = fill("BUY", 130, 10_100, 9, reason="cover")
    trade2 = pf.on_fill(b2)[0]
    assert isinstance(trade2, TradeClosed)
    assert (trade2.direction, trade2.qty, trade2.gross) == ("SHORT", 130, 100 * 130)
    assert trade2.costs == s.costs.total - close_part + b2.costs.total
    assert (trade2.entry_reason, trade2.exit_reason) == ("flip", "cover")
    assert trade.trade_id != trade2.trade_id


def test_positions_are_separate_per_strategy_and_instrument():
    pf = PortfolioLogic(INSTRUMENTS)
    pf.on_fill(fill("BUY", 65, 10_000, token="1", strategy="a"))
    pf.on_fill(fill("SELL", 65, 10_000, token="1", strategy="b"))
    pf.on_fill(fill("BUY", 130, 5_000, token="2", strategy="a"))
    qty = {k: p.qty for k, p in pf.state.positions.items()}
    assert qty == {"A1|a|1": 65, "A1|b|1": -65, "A1|a|2": 130}


def test_net_delta_per_underlying():
    pf = PortfolioLogic(INSTRUMENTS)
    pf.on_fill(fill("BUY", 130, 10_000, token="1"))
    pf.on_fill(fill("BUY", 65, 8_000, token="2"))
    pf.on_fill(fill("SELL", 30, 20_000, token="3"))
    assert pf.net_delta("NIFTY") is None  # no Greeks yet
    pf.on_analytics(analytics(T0, "1", None, delta=0.5))  # only the delta is read
    pf.set_delta("2", -0.4)
    pf.set_delta("3", 0.6)
    assert pf.net_delta("NIFTY") == 130 * 0.5 + 65 * -0.4
    assert pf.net_delta("BANKNIFTY") == -30 * 0.6


def test_square_off_orders_flatten_everything_through_the_simulator():
    pf = PortfolioLogic(INSTRUMENTS)
    pf.on_fill(fill("BUY", 130, 10_000, token="1", strategy="a"))
    pf.on_fill(fill("SELL", 65, 9_000, token="2", strategy="b"))
    pf.on_fill(fill("BUY", 65, 9_000, token="2", strategy="c"))
    pf.on_fill(fill("SELL", 65, 9_000, token="2", strategy="c"))  # already flat
    orders = pf.square_off(at(60), reason="EOD")
    assert [(o.strategy, o.token, o.side, o.qty, o.order_type) for o in orders] == [
        ("a", "1", "SELL", 130, "MARKET"),
        ("b", "2", "BUY", 65, "MARKET"),
    ]
    assert pf.square_off(at(60), reason="EOD") == orders  # deterministic ids
    assert [o.strategy for o in pf.square_off(at(60), strategy="b")] == ["b"]
    ex = ExecutionLogic(
        INSTRUMENTS,
        ExecutionConfig(
            fill=FillModel(participation=Decimal(1)), slippage=SpreadSlippage(fraction=Decimal(0))
        ),
    )
    for o in orders:
        ex.on_command(o)
    trades = []
    for tok in ("1", "2"):
        quote = nfo_tick(at(61), tok, 9_500, 9_495, 9_505, last_qty=1_000, cum_volume=1_000)
        events = ex.on_tick(quote)
        for e in events:
            if isinstance(e, FillEvent):
                trades += [t for t in pf.on_fill(e) if isinstance(t, TradeClosed)]
    assert all(p.qty == 0 for p in pf.state.positions.values())
    assert {t.exit_reason for t in trades} == {"EOD"}
    assert len(trades) == 2


def test_state_round_trips_through_msgpack():
    pf = PortfolioLogic(INSTRUMENTS)
    pf.on_fill(fill("BUY", 65, 10_000))
    blob = msgspec.msgpack.encode(pf.snapshot())
    restored = PortfolioLogic(INSTRUMENTS, msgspec.msgpack.decode(blob, type=PortfolioState))
    nxt = fill("SELL", 65, 10_500, 10)
    assert restored.on_fill(nxt) == pf.on_fill(nxt)


fill_st = st.lists(
    st.tuples(
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 5),
        st.integers(1, 4_000),
        st.sampled_from(["1", "2"]),
        st.integers(1, 3),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(fill_st)
def test_qty_is_signed_fill_sum_and_money_is_conserved(fills):
    pf = PortfolioLogic(INSTRUMENTS)
    signed: dict[str, int] = {}
    events: list[PositionChanged | TradeClosed] = []
    for i, (side, lots, px_ticks, token, spread) in enumerate(fills):
        qty, price = 65 * lots, 5 * px_ticks
        events += pf.on_fill(fill(side, qty, price, i, token=token))
        pf.on_tick(quote(token, price, price + 5 * spread, i))
        signed[token] = signed.get(token, 0) + (qty if side == "BUY" else -qty)
        for tok, want in signed.items():
            pos = pf.position("A1", "s1", tok)
            assert pos is not None
            assert pos.qty == want
            # cash + position value == realised + unrealised − costs, exactly
            unreal = pos.unrealised if pos.qty else Decimal(0)
            assert pos.cash + pos.market_value == pos.realised + unreal - pos.costs
            assert pos.costs >= 0
    # close everything at the last marks, then: cash == Σ trade nets, Σ gross == realised
    for order in pf.square_off(at(1_000)):
        pos = pf.position(order.account, order.strategy, order.token)
        assert pos is not None
        mark = pos.mark2 // 2
        events += pf.on_fill(fill(order.side, order.qty, mark, 1_000, token=order.token))
    trades = [e for e in events if isinstance(e, TradeClosed)]
    realised, costs, unreal = pf.totals()
    assert unreal == 0
    assert all(p.qty == 0 for p in pf.state.positions.values())
    assert sum(t.gross for t in trades) == realised
    assert sum(t.costs for t in trades) == costs
    assert sum(p.cash for p in pf.state.positions.values()) == sum(t.net for t in trades)


@pytest.mark.parametrize("seed", range(3))
def test_the_token_index_marks_exactly_the_positions_of_the_ticked_token(seed: int) -> None:
    """Marks with the per-tick token index equal marks from a scan of every position, as
    positions appear between ticks, and after the logic is copied or given another state."""
    rng = random.Random(seed)
    fast, plain = PortfolioLogic(INSTRUMENTS), PortfolioLogic(INSTRUMENTS)
    for n in range(600):
        if rng.random() < 0.1:
            f = fill(
                rng.choice(["BUY", "SELL"]),
                65,
                rng.randrange(9_000, 11_000, 5),
                n,
                token=rng.choice("123"),
                strategy=rng.choice(["s1", "s2"]),
            )
            assert fast.on_fill(f) == plain.on_fill(f)
        else:
            bid = rng.randrange(9_000, 11_000, 5)
            q = quote(rng.choice("1234"), rng.choice([0, bid]), bid + 10, n)
            fast.on_tick(q)
            plain._tokens = (None, 0, frozenset())  # no index: scan every position
            plain.on_tick(q)
        assert fast.state == plain.state
        if n % 150 == 149:
            fast = copy.deepcopy(fast) if n // 150 % 2 else pickle.loads(pickle.dumps(fast))
        if n == 400:
            fast = PortfolioLogic(INSTRUMENTS, copy.deepcopy(fast.state))
    assert len(fast.state.positions) == 6


def test_a_portfolio_pickled_before_the_token_index_existed_restores() -> None:
    logic = PortfolioLogic(INSTRUMENTS)
    logic.on_fill(fill("BUY", 65, 10_000, token="1"))
    del logic.__dict__["_tokens"]  # what a snapshot from before the index holds
    restored = pickle.loads(pickle.dumps(logic))
    restored.on_tick(quote("1", 10_100, 10_110, 1))
    (pos,) = restored.state.positions.values()
    assert pos.mark2 == 20_210
