"""Contract-note worked cases, computed by hand from the published schedules (DOMAIN.md), and
the named rounding rules of ``operators.trading.cost_ledger``.

Rates: exchange 0.03503% = 0.0003503 and IPFT 0.0005% = 0.000005 (both sides, on turnover),
SEBI ₹10/crore = 0.000001, stamp 0.003% = 0.00003 (buy value), STT 0.1% = 0.001 of the sell
value to 31 Mar 2026, 0.15% = 0.0015 from 1 Apr 2026; GST 18% of brokerage + exchange + SEBI
+ IPFT; brokerage ₹20 = 2000 paise per executed order. All amounts in paise. Per scrip and
day: STT rounded half up to the rupee, every other charge half up to the paisa.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from operators.events import Side
from operators.trading.cost_ledger import (
    CostLedger,
    LedgerFill,
    NoteLine,
    note_from_fills,
    round_rupee,
    stt_rule,
)
from operators.trading.costs import (
    DEFAULT_SCHEDULE,
    CostInputError,
    CostRates,
    CostSchedule,
    CostScheduleError,
    brokerage_rule,
    compute_costs,
    gst_rule,
    turnover_charge_rule,
)

TS = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
Fill = tuple[str, str, Side, int, int]  # token, order id, side, qty, price (paise)


def note(day: date, fills: list[Fill]) -> tuple[list[NoteLine], int]:
    """The note's lines for ``fills`` on ``day``, and the simulator's per-fill estimate."""
    seen: set[str] = set()
    rows = []
    for token, order_id, side, qty, price in fills:
        est = compute_costs(side, qty, price, day, first_fill=order_id not in seen).total
        seen.add(order_id)
        rows.append(
            LedgerFill(
                account="A",
                day=day,
                token=token,
                order_id=order_id,
                side=side,
                qty=qty,
                price=price,
                estimated=est,
            )
        )
    got = note_from_fills("A", day, rows, TS)
    return list(got.lines), sum(r.estimated for r in rows)


def test_two_leg_round_trip():
    # BUY 65 @ ₹100.00 (order b), SELL 65 @ ₹104.50 (order s), 5 Jan 2026 (STT 0.1%)
    # buy value 65 × 10_000 = 650_000; sell value 65 × 10_450 = 679_250; turnover 1_329_250
    # brokerage 2 orders × 2000 = 4000
    # exchange 1_329_250 × 0.0003503 = 465.636275 → 466
    # IPFT     1_329_250 × 0.000005  = 6.64625    → 7
    # SEBI     1_329_250 × 0.000001  = 1.32925    → 1
    # stamp      650_000 × 0.00003   = 19.5       → 20 (half up)
    # STT        679_250 × 0.001     = 679.25 paise = ₹6.7925 → ₹7 = 700
    # GST (4000 + 466 + 1 + 7) = 4474 × 0.18 = 805.32 → 805
    # charges 4000 + 466 + 7 + 1 + 20 + 700 + 805 = 5999
    # per-fill estimates: BUY 2654 (test_costs); SELL: 2000 + STT 679 + exch 237.94→238
    #   + IPFT 3.40→3 + SEBI 0.68→1 + GST (2000+238+1+3)=2242×0.18=403.56→404 = 3325
    # estimated 2654 + 3325 = 5979 → true-up +20; net 679_250 − 650_000 − 5999 = 23_251
    lines, estimated = note(
        date(2026, 1, 5), [("T1", "b", "BUY", 65, 10_000), ("T1", "s", "SELL", 65, 10_450)]
    )
    assert lines == [
        NoteLine(
            token="T1",
            buy_qty=65,
            buy_value=650_000,
            sell_qty=65,
            sell_value=679_250,
            orders=2,
            brokerage=4000,
            exchange=466,
            ipft=7,
            sebi=1,
            stamp=20,
            stt=700,
            gst=805,
            charges=5999,
            estimated=5979,
        )
    ]
    assert estimated == 5979
    assert (lines[0].true_up, lines[0].net) == (20, 23_251)


def test_order_filled_in_three_pieces():
    # BUY order b of 195 filled 65 @ 80.00, 65 @ 80.05, 65 @ 80.10; SELL 195 @ 82.00 (one fill)
    # 10 Feb 2026. buy value 520_000 + 520_325 + 520_650 = 1_560_975; sell 195 × 8200 = 1_599_000
    # turnover 3_159_975; brokerage: 2 executed orders × 2000 = 4000 (not 4 fills × 2000)
    # exchange 3_159_975 × 0.0003503 = 1106.9392425 → 1107
    # IPFT     3_159_975 × 0.000005  = 15.799875    → 16
    # SEBI     3_159_975 × 0.000001  = 3.159975     → 3
    # stamp    1_560_975 × 0.00003   = 46.82925     → 47
    # STT      1_599_000 × 0.001     = 1599 paise = ₹15.99 → ₹16 = 1600
    # GST (4000 + 1107 + 3 + 16) = 5126 × 0.18 = 922.68 → 923
    # charges 4000 + 1107 + 16 + 3 + 47 + 1600 + 923 = 7696
    # per-fill: 1st buy 2000+182+3+1+16+GST(2186×0.18=393.48→393) = 2595;
    #   2nd and 3rd buy 182+3+1+16+GST(186×0.18=33.48→33) = 235 each;
    #   sell 2000+1599+560+8+2+GST(2570×0.18=462.6→463) = 4632
    # estimated 2595 + 235 + 235 + 4632 = 7697 → true-up −1; net 1_599_000 − 1_560_975 − 7696
    lines, estimated = note(
        date(2026, 2, 10),
        [
            ("T1", "b", "BUY", 65, 8000),
            ("T1", "b", "BUY", 65, 8005),
            ("T1", "b", "BUY", 65, 8010),
            ("T1", "s", "SELL", 195, 8200),
        ],
    )
    (line,) = lines
    assert (line.buy_qty, line.buy_value, line.sell_qty, line.sell_value, line.orders) == (
        195, 1_560_975, 195, 1_599_000, 2,
    )  # fmt: skip
    parts = (line.brokerage, line.exchange, line.ipft, line.sebi, line.stamp, line.stt, line.gst)
    assert parts == (4000, 1107, 16, 3, 47, 1600, 923)
    assert (line.charges, estimated, line.true_up, line.net) == (7696, 7697, -1, 30_329)


def test_cheap_option_whose_stt_rounds_to_zero():
    # BUY 65 @ ₹0.85, SELL 65 @ ₹1.40 on 7 Apr 2026 (STT 0.15%)
    # buy value 5525, sell value 9100, turnover 14_625; brokerage 4000
    # exchange 14_625 × 0.0003503 = 5.1231375 → 5; IPFT 0.073125 → 0; SEBI 0.014625 → 0
    # stamp 5525 × 0.00003 = 0.16575 → 0
    # STT 9100 × 0.0015 = 13.65 paise = ₹0.1365 → ₹0 (per fill it was 14 paise)
    # GST (4000 + 5 + 0 + 0) = 4005 × 0.18 = 720.9 → 721; charges 4000 + 5 + 721 = 4726
    # per-fill: BUY 2000 + 2 + GST(2002×0.18=360.36→360) = 2362;
    #   SELL 2000 + STT 14 + 3 + GST(2003×0.18=360.54→361) = 2378; estimated 4740
    # true-up −14; net 9100 − 5525 − 4726 = −1151 (payable)
    lines, estimated = note(
        date(2026, 4, 7), [("T1", "b", "BUY", 65, 85), ("T1", "s", "SELL", 65, 140)]
    )
    (line,) = lines
    assert line.stt == 0
    parts = (line.brokerage, line.exchange, line.ipft, line.sebi, line.stamp, line.gst)
    assert parts == (4000, 5, 0, 0, 0, 721)
    assert (line.charges, estimated, line.true_up, line.net) == (4726, 4740, -14, -1151)


def test_two_scrips_on_the_same_day_round_stt_per_scrip():
    # 2 Mar 2026 (STT 0.1%). Scrip A: BUY 65 @ 66.00 = 429_000, SELL 65 @ 68.00 = 442_000
    #   turnover 871_000: exchange 305.1113 → 305; IPFT 4.355 → 4; SEBI 0.871 → 1;
    #   stamp 429_000 × 0.00003 = 12.87 → 13; STT 442 paise = ₹4.42 → ₹4 = 400
    #   GST (4000 + 305 + 1 + 4) = 4310 × 0.18 = 775.8 → 776; charges 5499
    # Scrip B: BUY 65 @ 69.00 = 448_500, SELL 65 @ 67.80 = 440_700
    #   turnover 889_200: exchange 311.48676 → 311; IPFT 4.446 → 4; SEBI 0.8892 → 1;
    #   stamp 448_500 × 0.00003 = 13.455 → 13; STT 440.7 paise = ₹4.407 → ₹4 = 400
    #   GST (4000 + 311 + 1 + 4) = 4316 × 0.18 = 776.88 → 777; charges 5506
    # STT is per scrip: 400 + 400 = 800, not the day's ₹8.827 → ₹9; note total 11_005
    lines, estimated = note(
        date(2026, 3, 2),
        [
            ("A", "a1", "BUY", 65, 6600),
            ("B", "b1", "BUY", 65, 6900),
            ("A", "a2", "SELL", 65, 6800),
            ("B", "b2", "SELL", 65, 6780),
        ],
    )
    a, b = lines
    assert (a.token, b.token) == ("A", "B")
    assert (a.exchange, a.ipft, a.sebi, a.stamp, a.stt, a.gst, a.charges) == (
        305, 4, 1, 13, 400, 776, 5499,
    )  # fmt: skip
    assert (b.exchange, b.ipft, b.sebi, b.stamp, b.stt, b.gst, b.charges) == (
        311, 4, 1, 13, 400, 777, 5506,
    )  # fmt: skip
    assert a.charges + b.charges == 11_005
    assert a.estimated + b.estimated == estimated
    assert stt_rule(DEFAULT_SCHEDULE.rates_for(date(2026, 3, 2)), 442_000 + 440_700) == 900


def test_session_spanning_the_schedule_change():
    # The same round trip, BUY 65 @ ₹100 and SELL 65 @ ₹100, on 31 Mar and on 1 Apr 2026:
    # turnover 1_300_000; brokerage 4000; exchange 455.39 → 455; IPFT 6.5 → 7 (half up);
    # SEBI 1.3 → 1; stamp 19.5 → 20; GST (4000 + 455 + 1 + 7) = 4463 × 0.18 = 803.34 → 803
    # 31 Mar: STT 650_000 × 0.001  = 650 paise = ₹6.50 → ₹7  = 700;  charges 5986
    #  1 Apr: STT 650_000 × 0.0015 = 975 paise = ₹9.75 → ₹10 = 1000; charges 6286
    ledger = CostLedger()
    for day in (date(2026, 3, 31), date(2026, 4, 1)):
        ledger.add("A", day, "T1", f"b{day}", "BUY", 65, 10_000, estimated=0)
        ledger.add("A", day, "T1", f"s{day}", "SELL", 65, 10_000, estimated=0)
    assert ledger.open_days() == [("A", date(2026, 3, 31)), ("A", date(2026, 4, 1))]
    old = ledger.close("A", date(2026, 3, 31), TS)
    new = ledger.close("A", date(2026, 4, 1), TS)
    assert [(x.exchange, x.ipft, x.sebi, x.stamp, x.gst) for x in old.lines + new.lines] == [
        (455, 7, 1, 20, 803),
    ] * 2
    assert (old.lines[0].stt, old.charges) == (700, 5986)
    assert (new.lines[0].stt, new.charges) == (1000, 6286)
    assert ledger.open_days() == []


def test_a_date_outside_every_schedule_range_is_a_clear_error():
    with pytest.raises(CostScheduleError, match=r"no cost rates in force on 2024-09-30"):
        CostLedger().add("A", date(2024, 9, 30), "T1", "o", "BUY", 65, 100, estimated=0)
    gap = CostSchedule(
        rows=(
            CostRates(
                effective_from=date(2026, 1, 1),
                valid_to=date(2026, 1, 31),
                stt_sell=Decimal("0.001"),
            ),
            CostRates(effective_from=date(2026, 3, 1), stt_sell=Decimal("0.001")),
        )
    )
    with pytest.raises(CostScheduleError, match=r"2026-01-01\.\.2026-01-31, 2026-03-01\.\.open"):
        gap.rates_for(date(2026, 2, 10))
    assert gap.rates_for(date(2026, 1, 31)) is gap.rows[0]
    with pytest.raises(CostScheduleError, match="overlap"):
        CostSchedule(rows=(gap.rows[0], CostRates(effective_from=date(2026, 1, 15),
                                                  stt_sell=Decimal("0.001"))))  # fmt: skip


# --- the named rules, one by one -------------------------------------------------------------

RATES = DEFAULT_SCHEDULE.rates_for(date(2026, 1, 5))


def test_brokerage_rule_once_per_executed_order():
    # three orders (one of them in five fills: still one brokerage) = 3 × 2000
    assert brokerage_rule(RATES, [650_000, 100, 5_000_000]) == 6000
    capped = CostRates(
        effective_from=date(2026, 1, 1), stt_sell=Decimal("0.001"),
        brokerage_cap_rate=Decimal("0.0025"),
    )  # fmt: skip
    # unconfirmed 0.25% cap on the order's whole turnover: 650_000 × 0.0025 = 1625 < 2000
    assert brokerage_rule(capped, [650_000]) == 1625


def test_stt_rule_rounds_half_up_to_the_rupee():
    assert round_rupee(Decimal(1649)) == 1600  # ₹16.49 → ₹16
    assert round_rupee(Decimal(1650)) == 1700  # ₹16.50 → ₹17 (half up, not to even)
    assert stt_rule(RATES, 1_638_000) == 1600  # 1638 paise = ₹16.38 → ₹16 (the case)
    assert stt_rule(RATES, 0) == 0


def test_turnover_charge_rule_rounds_each_charge_to_the_paisa():
    # buy 650_000, sell 0: exchange 227.695 → 228, IPFT 3.25 → 3, SEBI 0.65 → 1, stamp 19.5 → 20
    assert turnover_charge_rule(RATES, 650_000, 0) == (228, 3, 1, 20)
    # sell only: no stamp duty
    assert turnover_charge_rule(RATES, 0, 650_000)[3] == 0


def test_gst_rule_on_brokerage_exchange_sebi_and_ipft():
    # (2000 + 228 + 1 + 3) × 0.18 = 401.76 → 402; without IPFT (2000 + 228 + 1) = 401.22 → 401
    assert gst_rule(RATES, 2000, 228, 1, 3) == 402
    no_ipft = CostRates(effective_from=date(2026, 1, 1), stt_sell=Decimal("0.001"),
                        gst_on_ipft=False)  # fmt: skip
    assert gst_rule(no_ipft, 2000, 228, 1, 3) == 401


def test_ledger_keys_by_account_day_and_scrip_and_reissues_after_a_late_fill():
    ledger = CostLedger(symbols={"T1": "NIFTY07JUL2625000CE"})
    day = date(2026, 1, 5)
    ledger.add("A", day, "T1", "o1", "BUY", 65, 10_000, estimated=2654)
    ledger.add("B", day, "T1", "o2", "BUY", 65, 10_000, estimated=2654)
    assert ledger.charges_so_far("A", day) == 2654  # the BUY's note equals its estimate
    assert ledger.charges_so_far("A", date(2026, 1, 6)) == 0
    first = ledger.close("A", day, TS)
    assert first.lines[0].symbol == "NIFTY07JUL2625000CE"
    assert ledger.open_days() == [("B", day)]
    late = ledger.add("A", day, "T1", "o3", "SELL", 65, 10_000, estimated=3284)
    assert late  # the day was already noted: the caller reissues it
    again = ledger.close("A", day, TS)
    assert (again.lines[0].buy_qty, again.lines[0].sell_qty, again.lines[0].orders) == (65, 65, 2)


@pytest.mark.parametrize(
    ("side", "qty", "price", "estimated", "says"),
    [
        ("BUY", 0, 10_000, 0, "quantity"),
        ("SELL", -65, 10_000, 0, "quantity"),
        ("BUY", 65, -1, 0, "price"),
        ("BUY", 65, float("nan"), 0, "price"),
        ("SHORT", 65, 10_000, 0, "side"),
        ("BUY", 65, 10_000, -2654, "estimated"),
        ("BUY", 65, 10_000, 26.54, "estimated"),
    ],
)
def test_ledger_refuses_nonsense_fills_before_any_total_changes(
    side, qty, price, estimated, says
) -> None:
    """Issue 12: the day totals (and so the contract note) never take in a fill no exchange
    prints; the ledger is unchanged after the refusal."""
    ledger = CostLedger()
    day = date(2026, 1, 5)
    ledger.add("paper", day, "T1", "o1", "BUY", 65, 10_000, estimated=2654)
    before = ledger.charges_so_far("paper", day)
    with pytest.raises(CostInputError, match=says):
        ledger.add("paper", day, "T1", "o2", side, qty, price, estimated=estimated)
    assert ledger.charges_so_far("paper", day) == before
    assert ledger.open_days() == [("paper", day)]
