"""An expired option's token-keyed state leaves the market stage by event time (issue 12): the
parse step drops its plausibility state the first tick after its expiry day and sends an
``InstrumentExpired`` down; the market stage then emits the bars still open (what the end of
input would have emitted) and drops the key. Same bars as a run that never sweeps."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from connectors.kafka.replay import ReplayRecord
from connectors.kafka.serde import encode
from flows.market import group_by_token, market_stage
from operators.events import Bar
from operators.market.candles import CandleConfig
from operators.market.expiry import InstrumentExpired
from tests.operators.test_expiry import EXPIRIES, INSTRUMENTS, OPTIONS, _session_ticks


def _bars(instruments: dict | None) -> list[Bar]:
    days = [EXPIRIES[0], EXPIRIES[0] + timedelta(days=1)]  # the expiry day, the day after
    ticks = [t for d in days for t in _session_ticks(d)]
    records: list[Any] = [
        ReplayRecord(t.token.encode(), encode(t), 0, n, 0, "t") for n, t in enumerate(ticks)
    ]
    flow = Dataflow("expiry")
    raw = op.input("in", flow, TestingSource(records, batch_size=50))
    streams = market_stage(raw, instruments, CandleConfig(), False)
    out: list[Bar] = []
    op.output("bars_out", streams.bars, TestingSink(out))
    run_main(flow)
    return out


def test_expired_options_bars_come_out_at_the_sweep_and_equal_an_unswept_run() -> None:
    swept, unswept = _bars(INSTRUMENTS), _bars(None)
    assert Counter(b.candle for b in swept) == Counter(b.candle for b in unswept)
    expired = {o.token for o in OPTIONS if o.expiry == EXPIRIES[0]}
    day_after = date(2026, 7, 8)
    # swept: the expired options' last bars come out at the day after's first tick, before
    # most of that day's bars; unswept, they wait for the end of input
    assert _starts_after_last_expired(swept, expired, day_after) >= 10
    assert _starts_after_last_expired(unswept, expired, day_after) <= 2


def _starts_after_last_expired(bars: list[Bar], expired: set[str], day: date) -> int:
    """How many distinct candle starts of ``day`` come out after the last expired bar."""
    last = max(i for i, b in enumerate(bars) if b.candle.token in expired)
    return len({b.candle.start for b in bars[last:] if b.candle.start.date() == day})


def test_group_by_token_sends_an_expiry_after_the_tokens_ticks() -> None:
    t = _session_ticks(EXPIRIES[0])[1]
    marker = InstrumentExpired(t.token, t.ts_event)
    assert group_by_token([(None, 0.0, t), marker]) == [(t.token, [t]), (t.token, marker)]
