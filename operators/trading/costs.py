"""Indian statutory charges on option trades, from a rate schedule chosen by trade date.

Rates (DOMAIN.md) apply to the *premium turnover* of a fill (price × quantity):

- brokerage: ₹20 per executed order, charged once, on the order's first fill. Angel One's
  F&O brokerage is flat; whether it is also capped at 0.25% of turnover is *unconfirmed*, so
  the cap is a setting (``brokerage_cap_rate``), off by default;
- STT: sell side only, 0.1% until 31 Mar 2026 and 0.15% from 1 Apr 2026 (Budget 2026,
  *unconfirmed*), chosen by the fill's trade date;
- NSE exchange transaction charge 0.03503%, NSE IPFT 0.0005% (*unconfirmed* for options),
  SEBI fee ₹10 per crore, all on both sides; stamp duty 0.003% on the buy side;
- GST 18% of brokerage + exchange charge + SEBI fee. IPFT is levied by the exchange and billed
  with its transaction charge, so it is included in the GST base by default
  (``gst_on_ipft=True``); set it False to follow the narrower reading of the rule.

Rounding rule: every charge is computed exactly (``Decimal``) and then rounded **half up to
the paisa**, one charge at a time, as a contract note prints it; GST is computed on the
already-rounded components and rounded the same way. The total is the exact sum of the
rounded components, in integer paise. (Real contract notes aggregate per order and round
STT to the rupee per scrip and day; per-fill paisa rounding is the simulator's convention.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from operators.errors import OperatorError
from operators.events import Side


class CostScheduleError(OperatorError, ValueError):
    """A trade date no row of the schedule covers, or a schedule whose ranges overlap."""


class CostInputError(ValueError):
    """A fill the cost model cannot charge: a quantity, price or side no trade can have."""


_SIDES = ("BUY", "SELL")


def check_fill(side: object, qty: object, price: object) -> None:
    """Refuse a fill no exchange prints: the quantity is a whole number of units above zero,
    the price a whole, non-negative number of paise (0 is an option expiring worthless) and
    the side BUY or SELL. Charging such a fill would book nonsense (₹23.60 on zero units,
    negative STT on a negative quantity) instead of surfacing the bug that produced it."""
    if side not in _SIDES:
        msg = f"side must be 'BUY' or 'SELL', got {side!r}"
        raise CostInputError(msg)
    if type(qty) is not int or qty <= 0:
        msg = f"quantity must be a whole number of units > 0, got {qty!r}"
        raise CostInputError(msg)
    if type(price) is not int or price < 0:
        msg = f"price must be a whole number of paise >= 0, got {price!r}"
        raise CostInputError(msg)


class CostRates(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the schedule: the rates in force from ``effective_from`` to ``valid_to``
    (inclusive; None = until the next row starts, or open-ended for the last row)."""

    effective_from: date
    valid_to: date | None = None
    stt_sell: Decimal
    brokerage_per_order: int = 2000  # paise: ₹20 flat per executed order
    brokerage_cap_rate: Decimal | None = None  # unconfirmed 0.25% cap: Decimal("0.0025")
    exchange_txn: Decimal = Decimal("0.0003503")  # 0.03503%
    ipft: Decimal = Decimal("0.000005")  # 0.0005%
    sebi: Decimal = Decimal("0.000001")  # ₹10 per crore = 10 / 1e7
    stamp_buy: Decimal = Decimal("0.00003")  # 0.003%
    gst: Decimal = Decimal("0.18")
    gst_on_ipft: bool = True


class CostSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """Rates by date: every row is valid over a date range; ``rates_for(day)`` returns the row
    whose range holds ``day`` and raises ``CostScheduleError`` for a day no range holds (before
    the first row, in a gap, after a closed last row): charging a trade at rates that were not
    in force would be silently wrong."""

    rows: tuple[CostRates, ...]

    def __post_init__(self) -> None:
        if not self.rows:
            msg = "a cost schedule needs at least one row"
            raise CostScheduleError(msg)
        dates = [r.effective_from for r in self.rows]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            msg = f"schedule rows must be in strictly increasing date order: {dates}"
            raise CostScheduleError(msg)
        for row, nxt in zip(self.rows, self.rows[1:], strict=False):
            if row.valid_to is not None and row.valid_to >= nxt.effective_from:
                msg = (
                    f"schedule rows overlap: {row.effective_from}..{row.valid_to} and "
                    f"{nxt.effective_from}.."
                )
                raise CostScheduleError(msg)
        for row in self.rows:
            if row.valid_to is not None and row.valid_to < row.effective_from:
                msg = f"schedule row ends before it starts: {row.effective_from}..{row.valid_to}"
                raise CostScheduleError(msg)

    def ranges(self) -> list[tuple[date, date | None]]:
        """Each row's inclusive (first day, last day); None = open-ended."""
        out: list[tuple[date, date | None]] = []
        for i, row in enumerate(self.rows):
            last = row.valid_to
            if last is None and i + 1 < len(self.rows):
                last = self.rows[i + 1].effective_from - timedelta(days=1)
            out.append((row.effective_from, last))
        return out

    def rates_for(self, day: date) -> CostRates:
        for row, (first, last) in zip(self.rows, self.ranges(), strict=True):
            if first <= day and (last is None or day <= last):
                return row
        covered = ", ".join(f"{a}..{b or 'open'}" for a, b in self.ranges())
        msg = f"no cost rates in force on {day}: the schedule covers {covered}"
        raise CostScheduleError(msg)


# The rates above have all been in force together since 1 Oct 2024 (STT on option sales
# 0.0625% -> 0.1% by the Finance (No. 2) Act 2024; NSE's option transaction charge revised to
# 0.03503% from the same day); earlier trade dates are refused rather than mis-charged.
SCHEDULE_START = date(2024, 10, 1)
STT_CHANGE_DATE = date(2026, 4, 1)
DEFAULT_SCHEDULE = CostSchedule(
    rows=(
        CostRates(
            effective_from=SCHEDULE_START,
            valid_to=STT_CHANGE_DATE - timedelta(days=1),
            stt_sell=Decimal("0.001"),
        ),
        CostRates(effective_from=STT_CHANGE_DATE, stt_sell=Decimal("0.0015")),
    )
)


class CostBreakdown(msgspec.Struct, frozen=True, kw_only=True):
    """Charges on one fill, each in integer paise; ``total`` is their exact sum."""

    brokerage: int = 0
    stt: int = 0
    exchange: int = 0
    ipft: int = 0
    sebi: int = 0
    stamp: int = 0
    gst: int = 0
    total: int = 0


ZERO_COSTS = CostBreakdown()
_ONE_PAISA = Decimal(1)


def round_paise(amount: Decimal) -> int:
    """Round an exact paise amount half up to a whole paisa (how contract notes round)."""
    return int(amount.quantize(_ONE_PAISA, rounding=ROUND_HALF_UP))


def brokerage_rule(rates: CostRates, order_turnovers: Iterable[int]) -> int:
    """Flat brokerage per executed order (capped on the order's turnover when configured)."""
    total = 0
    for turnover in order_turnovers:
        fee = rates.brokerage_per_order
        if rates.brokerage_cap_rate is not None:
            fee = min(fee, round_paise(Decimal(turnover) * rates.brokerage_cap_rate))
        total += fee
    return total


def turnover_charge_rule(rates: CostRates, buy_value: int, sell_value: int) -> tuple[int, ...]:
    """(exchange, IPFT, SEBI, stamp) on the scrip's day values, each rounded to the paisa."""
    turnover = Decimal(buy_value + sell_value)
    return (
        round_paise(turnover * rates.exchange_txn),
        round_paise(turnover * rates.ipft),
        round_paise(turnover * rates.sebi),
        round_paise(Decimal(buy_value) * rates.stamp_buy),
    )


def gst_rule(rates: CostRates, brokerage: int, exchange: int, sebi: int, ipft: int) -> int:
    """GST on the scrip's rounded brokerage + exchange + SEBI (+ IPFT), to the paisa."""
    base = brokerage + exchange + sebi + (ipft if rates.gst_on_ipft else 0)
    return round_paise(Decimal(base) * rates.gst)


def charges(
    rates: CostRates, order_turnovers: Iterable[int], buy_value: int, sell_value: int, stt: int
) -> CostBreakdown:
    """Every charge on ``buy_value``/``sell_value`` of trades by orders of ``order_turnovers``
    (each charged brokerage here), given the STT (a fill and a contract note round it apart).
    """
    brokerage = brokerage_rule(rates, order_turnovers)
    exchange, ipft, sebi, stamp = turnover_charge_rule(rates, buy_value, sell_value)
    gst = gst_rule(rates, brokerage, exchange, sebi, ipft)
    return CostBreakdown(
        brokerage=brokerage,
        stt=stt,
        exchange=exchange,
        ipft=ipft,
        sebi=sebi,
        stamp=stamp,
        gst=gst,
        total=brokerage + stt + exchange + ipft + sebi + stamp + gst,
    )


def compute_costs(
    side: Side,
    qty: int,
    price: int,
    day: date,
    *,
    first_fill: bool = True,
    schedule: CostSchedule = DEFAULT_SCHEDULE,
) -> CostBreakdown:
    """Charges on a fill of ``qty`` units at ``price`` paise on trade date ``day``.

    ``first_fill`` says whether this is the order's first fill, which carries the brokerage.

    >>> compute_costs("BUY", 65, 10_000, date(2026, 1, 5)).total
    2654

    Raises ``CostInputError`` for a quantity, price or side no fill can have (``check_fill``).
    """
    check_fill(side, qty, price)
    rates = schedule.rates_for(day)
    turnover = qty * price
    buy_value, sell_value = (turnover, 0) if side == "BUY" else (0, turnover)
    stt = round_paise(Decimal(sell_value) * rates.stt_sell)  # a fill's: to the paisa
    return charges(rates, (turnover,) if first_fill else (), buy_value, sell_value, stt)


class CostModel:
    """Pluggable fee model (as in nautilus_trader): wraps a schedule, computes per-fill costs."""

    def __init__(self, schedule: CostSchedule = DEFAULT_SCHEDULE) -> None:
        self.schedule = schedule

    def costs(
        self, side: Side, qty: int, price: int, day: date, *, first_fill: bool
    ) -> CostBreakdown:
        return compute_costs(side, qty, price, day, first_fill=first_fill, schedule=self.schedule)
