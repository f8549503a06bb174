"""The parse step's plausibility state (price band reference, duplicate window) is in recovery
snapshots (issue 12): a run stopped at end of input and resumed from its Bytewax recovery store
still refuses a duplicate of a tick it accepted before the restart, and still bands prices
around the reference it set before it. A run of the same second half without the snapshot
accepts both: the assertions could fail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.kafka.replay import ReplayRecord
from connectors.kafka.serde import encode
from flows.market import market_stage
from operators.events import DeadLetter, Tick
from operators.market.candles import CandleConfig
from operators.market.validation import ValidationConfig

VALIDATION = ValidationConfig()
SECOND = timedelta(seconds=1)


def _ticks() -> tuple[Tick, Tick, dict]:
    """An option's first tick and a later one priced 30× it (outside the band around it)."""
    market = SyntheticMarket(SyntheticConfig(seed=3, duration_minutes=1, strikes_each_side=1))
    instruments = {i.token: i for i in market.instruments()}
    first = next(t for t in market.ticks() if instruments[t.token].kind != "INDEX")
    step = max(instruments[first.token].tick_size, 1)
    far = max(first.ltp * 30, first.ltp + 3 * VALIDATION.band_slack_paise) // step * step
    jump = msgspec.structs.replace(
        first,
        ts_event=first.ts_event + SECOND,
        ts_recv=first.ts_recv + SECOND,
        ltp=far,
        bid=0,
        ask=0,
        cum_volume=first.cum_volume + 1,
    )
    return first, jump, instruments


def _record(tick: Tick, offset: int) -> ReplayRecord:
    return ReplayRecord(tick.token.encode(), encode(tick), 0, offset, 0, "ticks")


def _run(items: list, instruments: dict, store: Path | None) -> tuple[list[Tick], list[str]]:
    """The market stage over ``items``; the ticks it let through and its dead letters' codes."""
    flow = Dataflow("plausibility_recovery")
    raw = op.input("in", flow, TestingSource(items, batch_size=10))
    streams = market_stage(raw, instruments, CandleConfig(), False, VALIDATION)
    ticks: list = []
    letters: list[DeadLetter] = []
    op.output("ticks", streams.sourced, TestingSink(ticks))
    op.output("letters", streams.dead_letters, TestingSink(letters))
    recovery = RecoveryConfig(str(store)) if store is not None else None
    run_main(flow, recovery_config=recovery)
    return [t for _, _, t in ticks], [d.reason.split(":", 1)[0] for d in letters]


def test_a_duplicate_and_a_band_reference_straddle_a_restart(tmp_path: Path) -> None:
    first, jump, instruments = _ticks()
    before = [_record(first, 0)]
    after = [_record(first, 1), _record(jump, 2)]  # first's duplicate, then the 30x price
    init_db_dir(tmp_path, 1)
    items = [*before, TestingSource.EOF(), *after]

    accepted, letters = _run(items, instruments, tmp_path)  # up to the EOF: a stop
    assert accepted == [first]
    assert letters == []
    accepted, letters = _run(items, instruments, tmp_path)  # resumed from the snapshot
    assert accepted == []
    assert sorted(letters) == ["DUPLICATE", "PRICE_BAND"]

    # each of them without the snapshot: a new reference, an empty window, both accepted
    for record, tick in zip(after, (first, jump), strict=True):
        assert _run([record], instruments, None) == ([tick], [])
