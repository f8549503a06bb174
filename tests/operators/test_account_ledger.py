"""The account stage's day-level cost ledger: a ContractNote per trade date at session close
(a tick at/after 15:30 IST, the live heartbeat, or end of input), whose true-up makes the day's
net the note's; recovery keeps the ledger; off, the stage is unchanged."""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import msgspec

from operators.events import Tick
from operators.market.sessions import ist_date, session_close
from operators.stages.account import AccountLogic, AccountRuntime
from operators.trading.cost_ledger import ContractNote, LedgerFill, note_from_fills
from operators.trading.orders import FillEvent
from operators.trading.portfolio import TradeClosed
from tests.operators.test_account_stage import INSTRUMENTS, T0, make_logic, scripted, tick

DAY = date(2026, 7, 8)


def ledger_logic() -> AccountLogic:
    base = make_logic()
    return AccountLogic(INSTRUMENTS, replace(base.config, contract_notes=True))


def drive(items: list, logic: AccountLogic, *, eof: bool = True) -> tuple[list, AccountRuntime]:
    rt = logic.new_runtime()
    out: list = []
    for item in items:
        out += logic.on_item(rt, item)
    if eof:
        out += logic.on_eof(rt)
    return out, rt


def independent_note(fills: list[FillEvent], day: date) -> ContractNote:
    rows = [
        LedgerFill(
            account=f.account,
            day=ist_date(f.ts_event),
            token=f.token,
            order_id=f.order_id,
            side=f.side,
            qty=f.fill_qty,
            price=f.fill_price,
            estimated=f.costs.total,
        )
        for f in fills
    ]
    symbols = {t: i.symbol for t, i in INSTRUMENTS.items()}
    return note_from_fills("paper", day, rows, session_close(day), symbols=symbols)


def test_note_at_end_of_input_reconciles_the_round_trip() -> None:
    out, _ = drive(scripted(), ledger_logic())
    (note,) = [e for e in out if isinstance(e, ContractNote)]
    fills = [e for e in out if isinstance(e, FillEvent)]
    (trade,) = [e for e in out if isinstance(e, TradeClosed)]
    assert note.trade_date == DAY
    assert note.ts_event == session_close(DAY)
    assert note.lines == independent_note(fills, DAY).lines
    assert note.estimated == sum(f.costs.total for f in fills) == trade.costs
    # the journal's day net (trade net − true-up) is gross − the note's charges, to the paisa
    assert trade.net - note.true_up == trade.gross - note.charges
    assert note.lines[0].symbol == "NIFTY14JUL2626000CE"
    assert note.lines[0].stt % 100 == 0  # STT to the whole rupee


def test_a_tick_at_the_session_close_issues_the_note_before_end_of_input() -> None:
    close_sec = (session_close(DAY) - T0).total_seconds()
    items = [*scripted(), tick(close_sec, 10_000, 10_100, 200_000, seq=99)]
    items += [tick(close_sec + 60, 10_000, 10_100, 200_000, seq=100)]  # releases the one before
    logic = ledger_logic()
    out, rt = drive(items, logic, eof=False)
    notes = [e for e in out if isinstance(e, ContractNote)]
    assert len(notes) == 1
    assert not any(isinstance(e, ContractNote) for e in logic.on_eof(rt))


def test_live_heartbeat_closes_the_day_with_the_same_note_as_a_replay() -> None:
    logic = ledger_logic()
    out, rt = drive(scripted(), logic, eof=False)
    assert not any(isinstance(e, ContractNote) for e in out)
    before = logic.on_wall_clock(rt, session_close(DAY) - timedelta(seconds=1))
    assert not any(isinstance(e, ContractNote) for e in before)
    wall = logic.on_wall_clock(rt, session_close(DAY) + timedelta(minutes=5))
    (live,) = [e for e in wall if isinstance(e, ContractNote)]
    replayed, _ = drive(scripted(), ledger_logic())
    (replay,) = [e for e in replayed if isinstance(e, ContractNote)]
    assert live == replay


def test_charges_so_far_are_the_notes_charges() -> None:
    logic = ledger_logic()
    out, rt = drive(scripted(), logic, eof=False)
    fills = [e for e in out if isinstance(e, FillEvent)]
    assert fills
    assert logic.charges_so_far(rt, DAY) == independent_note(fills, DAY).charges
    assert make_logic().charges_so_far(make_logic().new_runtime(), DAY) is None


def test_recovery_mid_day_keeps_the_ledger() -> None:
    items = scripted()
    whole, _ = drive(items, ledger_logic())
    logic = ledger_logic()
    rt = logic.new_runtime()
    out: list = []
    for n, item in enumerate(items, 1):
        out += logic.on_item(rt, item)
        if n % 7 == 0:
            rt = copy.deepcopy(rt) if n % 14 else pickle.loads(pickle.dumps(rt))
            logic = ledger_logic()
    out += logic.on_eof(rt)
    assert out == whole


def test_without_the_ledger_no_note_and_the_rest_is_identical() -> None:
    with_notes, _ = drive(scripted(), ledger_logic())
    without, _ = drive(scripted(), make_logic())
    assert [e for e in with_notes if not isinstance(e, ContractNote)] == without
    assert not any(isinstance(e, ContractNote) for e in without)


def test_the_first_tick_of_the_next_day_closes_the_previous_day() -> None:
    items = scripted()
    day = timedelta(days=1)
    next_day = [
        msgspec.structs.replace(x, ts_event=x.ts_event + day, ts_recv=x.ts_recv + day)
        for x in items
        if isinstance(x, Tick)
    ]
    out, _ = drive(items + next_day, ledger_logic())
    notes = [e for e in out if isinstance(e, ContractNote)]
    assert [n.trade_date for n in notes] == [DAY]  # day 2 did not trade (the overnight stall)
    day2 = datetime(2026, 7, 8, 18, 30, tzinfo=UTC)  # midnight IST
    first_day2 = next(i for i, e in enumerate(out) if e.ts_event >= day2)
    assert out[first_day2 - 1] == notes[0]  # noted before anything of day 2 happened
    assert notes[0].ts_event == session_close(DAY)
