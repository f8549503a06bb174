"""The account stage's outputs and end state over a trading synthetic day are pinned exactly.

The strategy stage runs once over a thinned synthetic expiry day with injected faults (feed
gaps, spread blow-outs, late / out-of-order / duplicate ticks); its outputs (ticks forwarded
in event-time order, analytics, regimes, signals) then drive the account stage under several
risk settings chosen so that between them the day trades and hits every risk path: fills and
round trips, partial fills, cancels, denials, daily-loss halt, cooldown and resume, feed
lagging / stalled / recovered, kill switch by feed stall, drawdown and spread blow-out,
end-of-day square-off.

The fingerprints are a sha256 over every output (type name + msgpack) and the account's end
state (msgpack, deterministic order; risk's as ``risk_as_recorded`` projects it). They were
recorded from the account stage as of commit 7eefa5e (before the per-tick fast paths) and
re-recorded once when risk stopped keeping a position book of its own (issue 16): the
outputs-only digests of the five scenarios were byte-identical before and after (NOTES.md),
only the state's shape changed; and re-recorded when the strategy stage stopped deciding on
a 1-minute bar with 2 s of data after its end (issue 19: the bar closes at its end, not
after the candle lateness): its input changed (13 of 17 signals identical; the day's first
gamma_scalp straddle, 2 legs in and 2 out, now enters at 09:23 instead of 09:27 IST), the
account stage's code did not. Recorded with this very file:
``.venv/bin/python tests/operators/test_account_equivalence.py`` prints them. A change here
means the account stage no longer behaves exactly as it did; if that is intended, re-record.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

import msgspec
import pytest

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.feeds.synthetic.config import FaultConfig
from operators.ai.adaptive import AdaptiveConfig
from operators.events import Instrument, RiskEvent
from operators.market.candles import CandleConfig
from operators.stages.account import AccountConfig, AccountInput, AccountLogic, AccountRuntime
from operators.stages.underlying import UnderlyingConfig, UnderlyingLogic
from operators.trading.cost_ledger import ContractNote
from operators.trading.feed_health import FeedHealthConfig
from operators.trading.orders import FillEvent
from operators.trading.portfolio import TradeClosed
from operators.trading.risk_limits import OrderDenied, RiskLimits

STRATEGIES = ("gamma_scalp", "momentum_breakout", "vwap_reversal")


@dataclass(frozen=True)
class Scenario:
    limits: Mapping[str, Any] = field(default_factory=dict)
    account: Mapping[str, Any] = field(default_factory=dict)
    expected: str = ""
    outputs: str = ""  # the outputs alone, as before risk read the portfolio's book


SCENARIOS = {
    "default": Scenario(
        expected="c5e1f74999012bb3e72278e9bb769bfa1781dc117973333372e2a85cb7f3dd73",
        outputs="a06e601dfa11420acd95e5e2f2cc3d31d55e30966765505a7af649726a45cace",
    ),
    "tight-limits": Scenario(
        limits={"max_daily_loss_pct": 0.3, "consecutive_losses": 1, "cooldown_minutes": 5},
        expected="25d7852336c8d8682f87fe0c57c342d23e831f90c69f3d463e2b5dcd09067c6a",
        outputs="50217f753788b32575d0dad8c2736aa918ab5245ee7331e8ea01fd00338b2d9a",
    ),
    "lagging-drawdown": Scenario(
        limits={"kill_drawdown_pct": 0.5},
        account={
            "feed_health": FeedHealthConfig(lag_threshold_ms=60, lag_ticks=3),
            "square_off_at": time(13, 0),
        },
        expected="9bb35820ca57e88e355132c777506363ae347daa402c02c821e43d6acb07ab4c",
        outputs="3c5025aaf1847d122503a50b3a8dc42619afdde97d3680e9014ae2c2b8b7c2c6",
    ),
    "spread-blowout": Scenario(
        limits={"max_spread_pct": 1.0},
        expected="989d6c3471dc15826f6d827faf8717afc480ab5d49b8da0dd07920e8eb4f373f",
        outputs="7522da25d7f91ff64eedabdc267998f777776d137a3eadec53fbd2e958b2a506",
    ),
    "early-square-off": Scenario(
        account={"square_off_at": time(11, 52, 10)},
        expected="063643a639e8ffe6670158c47d4f4c26d44b1369ff138f9cc116a0c28a1ab8bd",
        outputs="b288eb3333b89c1eb466d0392f25ce60f02357cc77d83f88cf5c4ae660c01509",
    ),
}


@pytest.fixture(scope="module")
def day() -> tuple[dict[str, Instrument], list[AccountInput]]:
    return strategy_outputs()


def strategy_outputs() -> tuple[dict[str, Instrument], list[AccountInput]]:
    """The strategy stage's outputs for the day, as the flow hands them to the account."""
    market = SyntheticMarket(
        SyntheticConfig(
            seed=7,
            date=date(2026, 7, 7),
            strikes_each_side=10,
            tick_rate_scale=0.1,
            index_tick_rate_scale=1.0,
            faults=FaultConfig(
                feed_gaps=2,
                spread_blowouts=3,
                late_rate=0.002,
                out_of_order_rate=0.01,
                duplicate_rate=0.005,
            ),
        )
    )
    instruments = {i.token: i for i in market.instruments()}
    stage = UnderlyingLogic(
        instruments,
        UnderlyingConfig(
            bars_from_ticks=True, forward_ticks=True, candle=CandleConfig(intervals=("1m",))
        ),
    )
    return instruments, list(stage.run(market.config.underlying, market.ticks()))


def make_logic(instruments: Mapping[str, Instrument], scenario: Scenario) -> AccountLogic:
    config = AccountConfig(
        account="paper",
        run_id="eq",
        limits=RiskLimits(
            account="paper", capital=50_000_000, strategies=STRATEGIES, **scenario.limits
        ),
        adaptive=AdaptiveConfig(account="paper", strategies=STRATEGIES),
        **scenario.account,
    )
    return AccountLogic(instruments, config)


@pytest.fixture(scope="module")
def runs(
    day: tuple[dict[str, Instrument], list[AccountInput]],
) -> dict[str, tuple[list[Any], AccountRuntime]]:
    """Each scenario run once (the tests below only look at the results)."""
    return {name: run(*day, scenario) for name, scenario in SCENARIOS.items()}


def run(
    instruments: Mapping[str, Instrument],
    items: list[AccountInput],
    scenario: Scenario,
    restore_every: int = 0,
) -> tuple[list[Any], AccountRuntime]:
    """Every output and the end runtime; with ``restore_every``, the runtime is recovered
    (alternately deep-copied and pickled) into a fresh logic every that many inputs."""
    logic = make_logic(instruments, scenario)
    rt = logic.new_runtime()
    out: list[Any] = []
    for n, item in enumerate(items, 1):
        out += logic.on_item(rt, item)
        if restore_every and n % restore_every == 0:
            rt = copy.deepcopy(rt) if n // restore_every % 2 else pickle.loads(pickle.dumps(rt))
            logic = make_logic(instruments, scenario)
    out += logic.on_eof(rt)
    return out, rt


def risk_as_recorded(rt: AccountRuntime) -> dict[str, Any]:
    """Risk's end state by value, its positions as the book holds them (qty, open cost =
    realised − costs − cash) with risk's round-trip pnl, so the pin says what risk knows,
    not how it stores it."""
    s = rt.risk.state
    positions = {
        f"{p.strategy}|{p.token}": (
            p.qty,
            p.realised - p.costs - p.cash,
            s.bookings[f"{p.strategy}\x1f{p.token}"].trade_pnl,
        )
        for p in rt.risk.positions()
    }
    return {
        "clock": s.clock,
        "session_date": s.session_date,
        "session_realised": s.session_realised,
        "peak_equity": s.peak_equity,
        "positions": positions,
        "pending": s.pending,
        "marks": s.marks,
        "deltas": s.deltas,
        "lot_sizes": s.lot_sizes,
        "strategies": s.strategies,
        "halted_until": s.halted_until,
        "halt_reason": s.halt_reason,
        "global_pause_until": s.global_pause_until,
        "killed": s.killed,
        "kill_reason": s.kill_reason,
        "last_tick": s.last_tick,
    }


def outputs_digest(outputs: list[Any]) -> hashlib._Hash:
    """sha256 over every output (type name + msgpack, deterministic order)."""
    enc = msgspec.msgpack.Encoder(order="deterministic")
    h = hashlib.sha256()
    for ev in outputs:
        h.update(type(ev).__name__.encode())
        h.update(enc.encode(ev))
    return h


def fingerprint(outputs: list[Any], rt: AccountRuntime) -> str:
    enc = msgspec.msgpack.Encoder(order="deterministic")
    h = outputs_digest(outputs)
    state = {
        "risk": risk_as_recorded(rt),
        "feed": rt.feed.state,
        "execution": rt.execution.state,
        "portfolio": rt.portfolio.state,
        "adaptive": rt.adaptive.state,
        "quotes": rt.quotes,
        "deltas": rt.deltas,
        "working_entries": sorted(rt.working_entries.items()),
        "order_underlying": rt.order_underlying,
        "next_mark": rt.next_mark,
        "late_inputs": rt.late_inputs,
        "wall_stalled": rt.silence_reported is not None,  # the live heartbeat reported a stall
        "squared_off_on": rt.squared_off_on,
        "reorder": (
            rt.reorder.max_ts,
            rt.reorder.released_ts,
            rt.reorder.arrivals,
            rt.reorder.late,
            len(rt.reorder.heap),
            len(rt.reorder.queue),
        ),
    }
    h.update(b"state")
    h.update(enc.encode(state))
    return h.hexdigest()


def kinds(outputs: list[Any]) -> Counter[str]:
    """What happened, coarsely: output types, risk event kinds, denial reasons."""
    out: Counter[str] = Counter(type(ev).__name__ for ev in outputs)
    out.update(f"risk:{ev.kind}:{ev.detail.split(':')[0]}" for ev in outputs
               if isinstance(ev, RiskEvent) and ev.kind in ("KILL_SWITCH", "HALT", "SQUARE_OFF",
                                                            "COOLDOWN", "RESUME"))  # fmt: skip
    out.update(f"risk:{ev.kind}" for ev in outputs if isinstance(ev, RiskEvent))
    out.update(f"denied:{ev.reason.split(':')[0]}" for ev in outputs if isinstance(ev, OrderDenied))
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_account_outputs_and_state_are_unchanged(
    runs: dict[str, tuple[list[Any], AccountRuntime]], name: str
) -> None:
    outputs, rt = runs[name]
    assert any(isinstance(ev, FillEvent) for ev in outputs)
    assert any(isinstance(ev, TradeClosed) for ev in outputs)
    assert outputs_digest(outputs).hexdigest() == SCENARIOS[name].outputs, kinds(outputs)
    assert fingerprint(outputs, rt) == SCENARIOS[name].expected, kinds(outputs)


def test_the_scenarios_cover_the_risk_paths(
    runs: dict[str, tuple[list[Any], AccountRuntime]],
) -> None:
    seen: Counter[str] = Counter()
    for outputs, _ in runs.values():
        seen.update(kinds(outputs))
    for kind in (
        "OrderPartiallyFilled",
        "OrderCancelled",
        "risk:HALT:DAILY_LOSS_LIMIT",
        "risk:COOLDOWN:CONSECUTIVE_LOSSES",
        "risk:RESUME:COOLDOWN_END",
        "risk:KILL_SWITCH:FEED_STALLED",
        "risk:KILL_SWITCH:SESSION_DRAWDOWN",
        "risk:KILL_SWITCH:SPREAD_BLOWOUT",
        "risk:SQUARE_OFF:END_OF_DAY",
        "risk:FEED_LAGGING",
        "risk:FEED_RECOVERED",
        "denied:SESSION_CUTOFF",
        "denied:KILL_SWITCH",
        "denied:DAILY_LOSS_LIMIT",
    ):
        assert seen[kind] > 0, (kind, seen)


def test_recovering_from_snapshots_mid_day_changes_nothing(
    day: tuple[dict[str, Instrument], list[AccountInput]],
) -> None:
    instruments, items = day
    scenario = SCENARIOS["early-square-off"]
    outputs, rt = run(instruments, items, scenario, restore_every=20_011)
    assert fingerprint(outputs, rt) == scenario.expected


def test_contract_notes_add_notes_and_change_nothing_else(
    day: tuple[dict[str, Instrument], list[AccountInput]],
) -> None:
    """The flows run the stage with its cost ledger on (issue 15): every other output and the
    end state are still the pinned ones, and each traded day gets one reconciling note."""
    scenario = SCENARIOS["default"]
    noted = Scenario(scenario.limits, {**scenario.account, "contract_notes": True})
    outputs, rt = run(*day, noted)
    notes = [ev for ev in outputs if isinstance(ev, ContractNote)]
    rest = [ev for ev in outputs if not isinstance(ev, ContractNote)]
    assert fingerprint(rest, rt) == scenario.expected
    assert [n.trade_date for n in notes] == [date(2026, 7, 7)]
    fills = [ev for ev in outputs if isinstance(ev, FillEvent)]
    trades = [ev for ev in outputs if isinstance(ev, TradeClosed)]
    assert notes[0].estimated == sum(f.costs.total for f in fills) == sum(t.costs for t in trades)
    assert sum(t.net for t in trades) - notes[0].true_up == (
        sum(t.gross for t in trades) - notes[0].charges
    )


if __name__ == "__main__":
    instruments, items = strategy_outputs()
    for key, sc in SCENARIOS.items():
        outputs, rt = run(instruments, items, sc)
        print(key, outputs_digest(outputs).hexdigest(), fingerprint(outputs, rt))
