"""Metrics on a hand-computed trade list; incremental equals on-demand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.market.sessions import IST
from operators.trading.analytics import (
    LiveMetrics,
    Metrics,
    SimpleTrade,
    TradeRecord,
    compute_metrics,
    equity_curve,
)


def at(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 1, day, hh, mm, tzinfo=IST).astimezone(UTC)


def trade(day: int, hh: int, mm: int, hold_min: int, gross: int, costs: int) -> SimpleTrade:
    entry = at(day, hh, mm)
    return SimpleTrade(
        entry_ts=entry,
        exit_ts=entry + timedelta(minutes=hold_min),
        gross=gross,
        costs=costs,
        net=gross - costs,
    )


# Paise. Nets: +8500, -6500, +2000 on 7 Jan; -14000, +19000, 0 on 8 Jan.
TRADES = [
    trade(7, 10, 0, 2, 10_000, 1_500),
    trade(7, 10, 10, 2, -5_000, 1_500),
    trade(7, 11, 0, 5, 3_000, 1_000),
    trade(8, 10, 0, 3, -12_000, 2_000),
    trade(8, 12, 0, 1, 21_000, 2_000),
    trade(8, 13, 0, 1, 1_000, 1_000),
]


def test_metrics_on_a_hand_computed_trade_list() -> None:
    m = compute_metrics(TRADES)
    assert (m.trades, m.wins, m.losses) == (6, 3, 2)  # the 0-net trade is neither
    assert m.win_rate == 0.5
    assert m.gross_pnl == 18_000
    assert m.costs == 9_000
    assert m.net_pnl == 9_000
    assert m.avg_win == pytest.approx(29_500 / 3)
    assert m.avg_loss == pytest.approx(20_500 / 2)
    assert m.profit_factor == pytest.approx(29_500 / 20_500)  # 1.4390
    assert m.expectancy == pytest.approx(1_500.0)  # 9000 / 6
    # deviations from 1500: 7000, -8000, 500, -15500, 17500, -1500; Σ² = 662e6; /5 → sd
    assert m.sharpe_per_trade == pytest.approx(1_500 / math.sqrt(662e6 / 5))  # 0.13036
    # daily nets 4000 and 5000: mean 4500, sd 707.107 → 6.364 × √252
    assert m.sharpe_daily == pytest.approx(4_500 / math.sqrt(500_000) * math.sqrt(252))
    # equity 8500, 2000, 4000, -10000, 9000, 9000: peak 8500 → trough -10000
    assert m.max_drawdown == 18_500
    assert m.days == 2


def test_summary_is_in_rupees() -> None:
    s = compute_metrics(TRADES).summary()
    assert s["net_pnl_rs"] == 90.0
    assert s["max_drawdown_rs"] == 185.0
    assert s["costs_rs"] == 90.0
    assert s["expectancy_rs"] == 15.0


def test_order_of_input_does_not_matter_for_a_run() -> None:
    assert compute_metrics(list(reversed(TRADES))) == compute_metrics(TRADES)


def test_empty_run() -> None:
    m = compute_metrics([])
    assert m.trades == 0
    assert m.win_rate is None
    assert m.profit_factor is None
    assert m.expectancy is None
    assert m.sharpe_per_trade is None
    assert m.sharpe_daily is None
    assert m.max_drawdown == 0
    assert LiveMetrics().metrics() == m


def test_only_winners_have_infinite_profit_factor_and_no_drawdown() -> None:
    winners = [trade(7, 10, i, 1, 1_000 * (i + 1), 100) for i in range(3)]
    m = compute_metrics(winners)
    assert m.profit_factor == math.inf
    assert m.max_drawdown == 0
    assert m.sharpe_daily is None  # one day only
    assert m.sharpe_per_trade == pytest.approx(1_900 / 1_000)  # nets 900, 1900, 2900


def test_drawdown_counts_from_zero_when_the_first_trade_loses() -> None:
    m = compute_metrics([trade(7, 10, 0, 1, -3_000, 0), trade(7, 11, 0, 1, 1_000, 0)])
    assert m.max_drawdown == 3_000


def test_equity_curve() -> None:
    curve = equity_curve(TRADES)
    assert [e for _, e, _ in curve] == [8_500, 2_000, 4_000, -10_000, 9_000, 9_000]
    assert [d for _, _, d in curve] == [0, 6_500, 4_500, 18_500, 0, 0]
    assert curve[0][0] == TRADES[0].exit_ts


def assert_same(a: Metrics, b: Metrics) -> None:
    for field in Metrics.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, float) and isinstance(y, float) and not math.isinf(x):
            assert x == pytest.approx(y, rel=1e-9, abs=1e-9), field
        else:
            assert x == y, field


def test_live_metrics_after_each_trade_equal_the_run_so_far() -> None:
    live = LiveMetrics()
    for i, t in enumerate(TRADES, start=1):
        assert_same(live.update(t), compute_metrics(TRADES[:i]))


def test_live_metrics_snapshot_restore() -> None:
    live = LiveMetrics()
    for t in TRADES[:3]:
        live.update(t)
    restored = LiveMetrics(
        msgspec.json.decode(msgspec.json.encode(live.snapshot()), type=type(live.state))
    )
    for t in TRADES[3:]:
        live.update(t)
        restored.update(t)
    assert restored.metrics() == live.metrics() == compute_metrics(TRADES)


def test_simple_trade_satisfies_the_protocol() -> None:
    record: TradeRecord = TRADES[0]
    assert record.net == record.gross - record.costs


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3 * 24 * 60),  # exit minute within three days
            st.integers(-50_000, 50_000),  # gross
            st.integers(0, 5_000),  # costs
        ),
        max_size=40,
    )
)
def test_incremental_equals_on_demand(rows: list[tuple[int, int, int]]) -> None:
    base = datetime(2026, 1, 7, 3, 45, tzinfo=UTC)
    trades = sorted(
        (
            SimpleTrade(
                entry_ts=base + timedelta(minutes=m),
                exit_ts=base + timedelta(minutes=m + 1),
                gross=g,
                costs=c,
                net=g - c,
            )
            for m, g, c in rows
        ),
        key=lambda t: (t.exit_ts, t.entry_ts),
    )
    live = LiveMetrics()
    for t in trades:
        live.update(t)
    on_demand = compute_metrics(trades)
    assert_same(live.metrics(), on_demand)
    assert on_demand.net_pnl == on_demand.gross_pnl - on_demand.costs
    assert on_demand.max_drawdown >= 0
    assert on_demand.wins + on_demand.losses <= on_demand.trades


def test_portfolio_trade_closed_fits_the_protocol() -> None:
    from decimal import Decimal

    from operators.trading.portfolio import TradeClosed

    closed = TradeClosed(
        ts_event=TRADES[0].exit_ts,
        ts_recv=TRADES[0].exit_ts,
        trade_id="t1",
        account="paper",
        strategy="momentum_breakout",
        token="CE23500",
        direction="LONG",
        qty=65,
        entry_ts=TRADES[0].entry_ts,
        exit_ts=TRADES[0].exit_ts,
        entry_price=Decimal("120.00"),
        exit_price=Decimal("121.54"),
        gross=10_000,
        costs=1_500,
        net=8_500,
        entry_reason="MOMENTUM_BREAKOUT",
        exit_reason="TARGET",
    )
    record: TradeRecord = closed
    assert compute_metrics([record, *TRADES[1:]]) == compute_metrics(TRADES)
