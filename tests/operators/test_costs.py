"""Statutory cost worked examples (arithmetic in comments) and invariants.

Rates: exchange 0.03503% = 0.0003503, IPFT 0.0005% = 0.000005, SEBI ₹10/crore = 0.000001,
stamp 0.003% = 0.00003 (buy), STT 0.1% = 0.001 (sell, to 31 Mar 2026) / 0.15% = 0.0015
(from 1 Apr 2026), GST 18% of brokerage + exchange + SEBI + IPFT. All amounts in paise;
every charge rounded half up to the paisa; GST on the rounded parts.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.trading.costs import (
    DEFAULT_SCHEDULE,
    CostBreakdown,
    CostInputError,
    CostModel,
    CostRates,
    CostSchedule,
    compute_costs,
    round_paise,
)

BEFORE = date(2026, 1, 5)
LAST_OLD_DAY = date(2026, 3, 31)
NEW_DAY = date(2026, 4, 1)


def test_buy_small_lot_before_april():
    # BUY 65 @ ₹100.00 = 10_000 paise; turnover 650_000 paise (₹6,500)
    # brokerage 2000 (first fill); STT 0 (buy)
    # exchange 650_000 × 0.0003503 = 227.695 → 228
    # IPFT     650_000 × 0.000005  = 3.25    → 3
    # SEBI     650_000 × 0.000001  = 0.65    → 1
    # stamp    650_000 × 0.00003   = 19.5    → 20 (half up)
    # GST (2000 + 228 + 1 + 3) × 0.18 = 2232 × 0.18 = 401.76 → 402
    # total 2000 + 228 + 3 + 1 + 20 + 402 = 2654 paise = ₹26.54
    assert compute_costs("BUY", 65, 10_000, BEFORE) == CostBreakdown(
        brokerage=2000, stt=0, exchange=228, ipft=3, sebi=1, stamp=20, gst=402, total=2654
    )


def test_sell_small_lot_before_april():
    # SELL 65 @ ₹100.00, turnover 650_000; STT 650_000 × 0.001 = 650; stamp 0 (sell)
    # exchange 228, IPFT 3, SEBI 1, GST 402 as above
    # total 2000 + 650 + 228 + 3 + 1 + 402 = 3284
    assert compute_costs("SELL", 65, 10_000, BEFORE) == CostBreakdown(
        brokerage=2000, stt=650, exchange=228, ipft=3, sebi=1, stamp=0, gst=402, total=3284
    )
    assert compute_costs("SELL", 65, 10_000, LAST_OLD_DAY).stt == 650


def test_sell_small_lot_from_1_april_2026():
    # same trade on 1 Apr 2026: STT 650_000 × 0.0015 = 975
    # total 2000 + 975 + 228 + 3 + 1 + 402 = 3609
    assert compute_costs("SELL", 65, 10_000, NEW_DAY) == CostBreakdown(
        brokerage=2000, stt=975, exchange=228, ipft=3, sebi=1, stamp=0, gst=402, total=3609
    )


def test_buy_tiny_premium_after_april_is_mostly_brokerage():
    # BUY 65 @ ₹0.05 = 5 paise; turnover 325 paise
    # exchange 325 × 0.0003503 = 0.1138 → 0; IPFT 0.0016 → 0; SEBI 0.0003 → 0
    # stamp 325 × 0.00003 = 0.00975 → 0; GST 2000 × 0.18 = 360
    # total 2000 + 360 = 2360
    assert compute_costs("BUY", 65, 5, date(2026, 4, 2)) == CostBreakdown(
        brokerage=2000, gst=360, total=2360
    )


def test_sell_large_premium_after_april_later_fill_has_no_brokerage():
    # SELL 1_300 (20 lots) @ ₹450.35 = 45_035 paise; turnover 58_545_500 paise (₹5,85,455)
    # brokerage 0 (not the order's first fill)
    # STT      58_545_500 × 0.0015    = 87_818.25    → 87_818
    # exchange 58_545_500 × 0.0003503 = 20_508.48865 → 20_508
    # IPFT     58_545_500 × 0.000005  = 292.7275     → 293
    # SEBI     58_545_500 × 0.000001  = 58.5455      → 59
    # GST (0 + 20_508 + 59 + 293) × 0.18 = 20_860 × 0.18 = 3_754.8 → 3_755
    # total 87_818 + 20_508 + 293 + 59 + 3_755 = 112_433
    got = compute_costs("SELL", 1_300, 45_035, date(2026, 4, 15), first_fill=False)
    assert got == CostBreakdown(
        brokerage=0,
        stt=87_818,
        exchange=20_508,
        ipft=293,
        sebi=59,
        stamp=0,
        gst=3_755,
        total=112_433,
    )


def test_buy_large_premium_before_april():
    # BUY 1_300 @ ₹450.35, turnover 58_545_500, first fill
    # stamp 58_545_500 × 0.00003 = 1_756.365 → 1_756; exchange 20_508; IPFT 293; SEBI 59
    # GST (2000 + 20_508 + 59 + 293) × 0.18 = 22_860 × 0.18 = 4_114.8 → 4_115
    # total 2000 + 20_508 + 293 + 59 + 1_756 + 4_115 = 28_731
    assert compute_costs("BUY", 1_300, 45_035, date(2026, 2, 10)) == CostBreakdown(
        brokerage=2000, exchange=20_508, ipft=293, sebi=59, stamp=1_756, gst=4_115, total=28_731
    )


def test_gst_without_ipft_setting():
    # as the first example but GST on (2000 + 228 + 1) = 2229 × 0.18 = 401.22 → 401; total 2653
    rows = (
        CostRates(effective_from=date(2000, 1, 1), stt_sell=Decimal("0.001"), gst_on_ipft=False),
    )
    got = compute_costs("BUY", 65, 10_000, BEFORE, schedule=CostSchedule(rows=rows))
    assert (got.gst, got.total) == (401, 2653)


def test_unconfirmed_brokerage_cap_setting():
    # cap 0.25%: BUY 65 @ ₹0.05, turnover 325 → 325 × 0.0025 = 0.8125 → 1 paisa < 2000
    # GST 1 × 0.18 = 0.18 → 0; total 1. Large turnover: 0.25% of 650_000 = 1625 < 2000 too.
    rows = (
        CostRates(
            effective_from=date(2000, 1, 1),
            stt_sell=Decimal("0.001"),
            brokerage_cap_rate=Decimal("0.0025"),
        ),
    )
    sched = CostSchedule(rows=rows)
    assert compute_costs("BUY", 65, 5, BEFORE, schedule=sched).total == 1
    assert compute_costs("BUY", 65, 10_000, BEFORE, schedule=sched).brokerage == 1625
    assert compute_costs("BUY", 650, 10_000, BEFORE, schedule=sched).brokerage == 2000


def test_rounding_is_half_up_not_bankers():
    assert round_paise(Decimal("2.5")) == 3
    assert round_paise(Decimal("0.5")) == 1
    assert round_paise(Decimal("0.4999")) == 0


def test_schedule_picks_rates_by_trade_date():
    assert DEFAULT_SCHEDULE.rates_for(LAST_OLD_DAY).stt_sell == Decimal("0.001")
    assert DEFAULT_SCHEDULE.rates_for(NEW_DAY).stt_sell == Decimal("0.0015")
    with pytest.raises(ValueError, match="increasing"):
        CostSchedule(rows=tuple(reversed(DEFAULT_SCHEDULE.rows)))


@given(
    side=st.sampled_from(["BUY", "SELL"]),
    lots=st.integers(1, 400),
    ticks=st.integers(1, 400_000),
    day=st.dates(date(2025, 1, 1), date(2027, 12, 31)),
    first=st.booleans(),
)
def test_costs_are_never_negative_and_total_is_exact(side, lots, ticks, day, first):
    c = compute_costs(side, lots * 65, ticks * 5, day, first_fill=first)
    parts = (c.brokerage, c.stt, c.exchange, c.ipft, c.sebi, c.stamp, c.gst)
    assert all(p >= 0 for p in parts)
    assert c.total == sum(parts)
    assert (c.stt == 0) if side == "BUY" else (c.stamp == 0)
    assert c.brokerage == (2000 if first else 0)


@pytest.mark.parametrize(
    ("side", "qty", "price", "says"),
    [
        ("BUY", 0, 10_000, "quantity"),
        ("SELL", -65, 10_000, "quantity"),
        ("BUY", 65.0, 10_000, "quantity"),
        ("BUY", True, 10_000, "quantity"),
        ("BUY", 65, -5, "price"),
        ("SELL", 65, float("nan"), "price"),
        ("BUY", 65, float("inf"), "price"),
        ("BUY", 65, 100.5, "price"),
        ("HOLD", 65, 10_000, "side"),
        ("buy", 65, 10_000, "side"),
    ],
)
def test_nonsense_fills_are_refused_with_a_clear_error(side, qty, price, says) -> None:
    """Issue 12: a zero, negative or fractional quantity, a negative or non-finite price or an
    unknown side is a bug upstream; charging it (₹23.60 on zero units) would hide it."""
    with pytest.raises(CostInputError, match=says):
        compute_costs(side, qty, price, BEFORE)
    with pytest.raises(CostInputError, match=says):
        CostModel().costs(side, qty, price, BEFORE, first_fill=True)


def test_a_worthless_expiry_at_price_zero_is_still_charged() -> None:
    """Price 0 is a real fill (an option expiring worthless): brokerage and GST only."""
    costs = compute_costs("SELL", 65, 0, BEFORE)
    assert costs.total == costs.brokerage + costs.gst == 2000 + 360
