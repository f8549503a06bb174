"""Day-level cost ledger: an account's charges recomputed per trade date and scrip, as the
broker's contract note computes them, and the true-up against the per-fill estimates.

The execution simulator charges every fill on its own (``operators.trading.costs.compute_costs``) so
intraday P&L and risk stay live. A contract note does not charge fills: it adds up the day's
trades per scrip and charges the totals. The ledger keeps those totals per
``(account, trade date, scrip)`` and turns them into a ``ContractNote`` whose lines carry both
the note's charges and the estimates booked during the day; ``true_up = charges − estimated``
is what the journal books at session close so the day's net P&L is the note's.

Contract-note rules (DOMAIN.md "How a contract note rounds"; each is a function, here or in
``operators.trading.costs`` where the per-fill estimate shares it, and a named test in
tests/operators/test_cost_ledger.py):

- ``brokerage_rule``: brokerage is charged once per executed order (an order with at least
  one fill that day), however many fills it had; with the *unconfirmed* 0.25% cap on, the
  cap applies to the order's whole turnover;
- ``stt_rule``: STT is the scrip's day sell value × the STT rate, rounded half up to the
  whole rupee;
- ``turnover_charge_rule``: exchange transaction charge, IPFT and SEBI fee on the scrip's day
  turnover (buy + sell value), stamp duty on its day buy value, each rounded half up to the
  paisa;
- ``gst_rule``: GST is 18% of brokerage + exchange charge + SEBI fee (+ IPFT when
  ``gst_on_ipft``, *unconfirmed*, default on as in ``operators.trading.costs``) on the scrip's
  rounded components, rounded half up to the paisa;
- rates are those of the trade date (``CostSchedule.rates_for``: a date outside every range
  is a ``CostScheduleError``).

A note's total is the sum of its scrip lines. Money is integer paise throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from operators.events import Event, Side
from operators.trading.costs import (
    DEFAULT_SCHEDULE,
    CostInputError,
    CostRates,
    CostSchedule,
    charges,
    check_fill,
)

STATE_VERSION = 1
_NO_TIME = datetime.min.replace(tzinfo=UTC)  # a note computed only for its amounts
_ONE_RUPEE = Decimal(100)  # paise


class NoteLine(msgspec.Struct, frozen=True, kw_only=True):
    """One scrip on a contract note: the day's quantities, values and charges (paise)."""

    token: str
    symbol: str = ""
    buy_qty: int = 0
    buy_value: int = 0
    sell_qty: int = 0
    sell_value: int = 0
    orders: int = 0
    brokerage: int = 0
    exchange: int = 0
    ipft: int = 0
    sebi: int = 0
    stamp: int = 0
    stt: int = 0
    gst: int = 0
    charges: int = 0  # the sum of the seven charges above
    estimated: int = 0  # Σ per-fill charges the simulator booked for these trades

    @property
    def true_up(self) -> int:
        """Note charges minus the booked estimates: what the journal still has to book."""
        return self.charges - self.estimated

    @property
    def net(self) -> int:
        """Net amount: > 0 receivable by the client, < 0 payable by the client."""
        return self.sell_value - self.buy_value - self.charges


class ContractNote(Event, frozen=True, kw_only=True):
    """An account's contract note for one trade date: one line per scrip traded.

    ``ts_event`` is the session close of ``trade_date`` (or the late fill that reissued it).
    """

    account: str
    trade_date: date
    lines: tuple[NoteLine, ...]
    run_id: str = ""

    @property
    def charges(self) -> int:
        return sum(line.charges for line in self.lines)

    @property
    def estimated(self) -> int:
        return sum(line.estimated for line in self.lines)

    @property
    def true_up(self) -> int:
        return self.charges - self.estimated

    @property
    def net(self) -> int:
        return sum(line.net for line in self.lines)


# --- the rules ------------------------------------------------------------------------------


def round_rupee(paise: Decimal) -> int:
    """Round an exact paise amount half up to a whole rupee (returned in paise)."""
    return int((paise / _ONE_RUPEE).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 100


def stt_rule(rates: CostRates, sell_value: int) -> int:
    """STT on the scrip's day sell value, rounded to the rupee."""
    return round_rupee(Decimal(sell_value) * rates.stt_sell)


# --- the ledger -----------------------------------------------------------------------------


class ScripDay(msgspec.Struct, kw_only=True):
    """Running totals of one scrip on one trade date of one account."""

    buy_qty: int = 0
    buy_value: int = 0
    sell_qty: int = 0
    sell_value: int = 0
    estimated: int = 0
    orders: dict[str, int] = msgspec.field(default_factory=dict)  # order id -> its turnover


def charge_line(rates: CostRates, token: str, symbol: str, day: ScripDay) -> NoteLine:
    """The contract-note line of one scrip's day totals."""
    c = charges(
        rates, day.orders.values(), day.buy_value, day.sell_value, stt_rule(rates, day.sell_value)
    )
    return NoteLine(
        token=token,
        symbol=symbol,
        buy_qty=day.buy_qty,
        buy_value=day.buy_value,
        sell_qty=day.sell_qty,
        sell_value=day.sell_value,
        orders=len(day.orders),
        brokerage=c.brokerage,
        exchange=c.exchange,
        ipft=c.ipft,
        sebi=c.sebi,
        stamp=c.stamp,
        stt=c.stt,
        gst=c.gst,
        charges=c.total,
        estimated=day.estimated,
    )


class LedgerState(msgspec.Struct, kw_only=True):
    """Open (not yet noted) and closed days per ``(account, trade date)``, scrips by token."""

    version: int = STATE_VERSION
    days: dict[tuple[str, date], dict[str, ScripDay]] = msgspec.field(default_factory=dict)
    closed: set[tuple[str, date]] = msgspec.field(default_factory=set)


class CostLedger:
    """Day totals per account, date and scrip from fills; contract notes from the totals.

    >>> ledger = CostLedger()
    >>> ledger.add("paper", date(2026, 1, 5), "T1", "o1", "BUY", 65, 10_000, estimated=2654)
    >>> ledger.charges_so_far("paper", date(2026, 1, 5))
    2654
    """

    def __init__(
        self,
        schedule: CostSchedule = DEFAULT_SCHEDULE,
        symbols: Mapping[str, str] | None = None,
        state: LedgerState | None = None,
    ) -> None:
        self.schedule = schedule
        self.symbols = dict(symbols or {})
        self.state = state if state is not None else LedgerState()
        if self.state.version != STATE_VERSION:
            msg = f"cost ledger state version {self.state.version} != {STATE_VERSION}"
            raise ValueError(msg)

    def add(
        self,
        account: str,
        day: date,
        token: str,
        order_id: str,
        side: Side,
        qty: int,
        price: int,
        *,
        estimated: int,
    ) -> bool:
        """Book one fill; returns whether its day was already closed (the note is stale).

        Raises ``operators.trading.costs.CostInputError`` for a quantity, price or side no fill can
        have, or an ``estimated`` charge that is not a whole number of paise >= 0, before any
        total changes.
        """
        check_fill(side, qty, price)
        if type(estimated) is not int or estimated < 0:
            msg = f"estimated charges must be a whole number of paise >= 0, got {estimated!r}"
            raise CostInputError(msg)
        self.schedule.rates_for(day)  # a date outside the schedule fails here, at the fill
        key = (account, day)
        scrips = self.state.days.get(key)
        if scrips is None:
            scrips = self.state.days[key] = {}
        scrip = scrips.get(token)
        if scrip is None:
            scrip = scrips[token] = ScripDay()
        value = qty * price
        if side == "BUY":
            scrip.buy_qty += qty
            scrip.buy_value += value
        else:
            scrip.sell_qty += qty
            scrip.sell_value += value
        scrip.estimated += estimated
        scrip.orders[order_id] = scrip.orders.get(order_id, 0) + value
        return key in self.state.closed

    def note(self, account: str, day: date, ts: datetime, run_id: str = "") -> ContractNote:
        """The contract note of ``account`` on ``day`` from the totals so far."""
        rates = self.schedule.rates_for(day)
        scrips = self.state.days.get((account, day), {})
        lines = tuple(
            charge_line(rates, token, self.symbols.get(token, ""), scrips[token])
            for token in sorted(scrips)
        )
        return ContractNote(
            ts_event=ts, ts_recv=ts, account=account, trade_date=day, lines=lines, run_id=run_id
        )

    def charges_so_far(self, account: str, day: date) -> int:
        """The day's charges as the contract note will show them, for the trades so far."""
        if (account, day) not in self.state.days:
            return 0
        return self.note(account, day, _NO_TIME).charges

    def open_days(self) -> list[tuple[str, date]]:
        """(account, date) pairs with trades and no note yet, oldest first."""
        return sorted(k for k in self.state.days if k not in self.state.closed)

    def close(self, account: str, day: date, ts: datetime, run_id: str = "") -> ContractNote:
        """The day's final note; its totals stay, so a late fill reissues a complete note."""
        self.state.closed.add((account, day))
        return self.note(account, day, ts, run_id)


class LedgerFill(msgspec.Struct, frozen=True, kw_only=True):
    """A fill as the ledger needs it (e.g. read back from the ``fills`` table)."""

    account: str
    day: date
    token: str
    order_id: str
    side: Side
    qty: int
    price: int
    estimated: int


def note_from_fills(
    account: str,
    day: date,
    fills: Iterable[LedgerFill],
    ts: datetime,
    *,
    schedule: CostSchedule = DEFAULT_SCHEDULE,
    symbols: Mapping[str, str] | None = None,
    run_id: str = "",
) -> ContractNote:
    """The note of ``account`` on ``day`` from a list of fills (other accounts/days ignored)."""
    ledger = CostLedger(schedule, symbols)
    for f in fills:
        if f.account == account and f.day == day:
            ledger.add(
                f.account, f.day, f.token, f.order_id, f.side, f.qty, f.price,
                estimated=f.estimated,
            )  # fmt: skip
    return ledger.note(account, day, ts, run_id)
