"""Strategy stage per underlying: throttled analytics, one regime a minute, bounded history,
and outputs independent of how ticks and bars interleave on arrival."""

from __future__ import annotations

import copy
import itertools
import random
from collections import Counter
from datetime import date, timedelta

import msgspec
import pytest

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from operators.events import Bar, Instrument, OptionAnalytics, RegimeClassified
from operators.market.candles import CandleConfig
from operators.stages.market import MarketLogic, MarketState
from operators.stages.underlying import (
    UnderlyingConfig,
    UnderlyingLogic,
    UnderlyingOutput,
    driver_tokens,
)
from operators.strategies.base import BAR_HISTORY
from tests.digests import stable_digest
from tests.markets import synthetic_market


@pytest.fixture(scope="module")
def session():
    market = synthetic_market(2, minutes=40, strikes=2, rate=0.5)
    ticks = list(market.ticks())
    logic = MarketLogic()
    states: dict[str, MarketState] = {}
    bars: list[Bar] = []
    for t in ticks:
        bars += [
            b
            for b in logic.on_tick(states.setdefault(t.token, MarketState()), t)
            if isinstance(b, Bar)
        ]
    for st in states.values():
        bars += logic.on_eof(st, ts_recv=ticks[-1].ts_recv)
    index = market.instruments()[0].token
    minute_bars = [b for b in bars if b.candle.token == index and b.candle.interval == "1m"]
    # arrival as the flow sees it: a bar arrives with the tick that closed it
    arrivals = sorted(
        [*ticks, *minute_bars], key=lambda x: x.ts_event if isinstance(x, Bar) else x.ts_recv
    )
    return market, arrivals


def run(market, items):
    logic = UnderlyingLogic({i.token: i for i in market.instruments()}, UnderlyingConfig())
    rt = logic.new_runtime("NIFTY")
    out = []
    for item in items:
        if logic.wants(item):
            out += logic.on_item(rt, item)
    return out + logic.on_eof(rt), rt


def test_analytics_throttled_and_regime_each_minute(session) -> None:
    market, arrivals = session
    out, rt = run(market, arrivals)
    analytics = [e for e in out if isinstance(e, OptionAnalytics)]
    assert analytics
    per_second = Counter((a.token, int(a.ts_event.timestamp())) for a in analytics)
    assert max(per_second.values()) == 1
    regimes = [e for e in out if isinstance(e, RegimeClassified)]
    minutes = [r.ts_event for r in regimes]
    assert len(minutes) == len(set(minutes))
    assert len(regimes) >= 40 - 28
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(minutes))
    assert 0 < len(rt.ctx.bars) <= BAR_HISTORY


def test_outputs_do_not_depend_on_arrival_jitter_within_lateness(session) -> None:
    market, arrivals = session
    expected = msgspec.json.encode(run(market, arrivals)[0])
    rnd = random.Random(9)
    jittered = sorted(arrivals, key=lambda x: x.ts_event + timedelta(seconds=rnd.uniform(0, 2)))
    assert msgspec.json.encode(run(market, jittered)[0]) == expected


# ------------------------------------------------------------------------ driver choice
def _inst(token: str, kind: str, expiry: date | None = None) -> Instrument:
    return Instrument(token=token, symbol=token, underlying="NIFTY", kind=kind, expiry=expiry)  # type: ignore[arg-type]


def test_driver_is_the_index_even_when_futures_are_listed() -> None:
    listed = [_inst("fut", "FUT", date(2026, 7, 28)), _inst("idx", "INDEX")]
    assert driver_tokens(listed) == {"NIFTY": "idx"}


def test_without_an_index_the_nearest_future_drives() -> None:
    listed = [_inst("far", "FUT", date(2026, 8, 25)), _inst("near", "FUT", date(2026, 7, 28))]
    assert driver_tokens(listed) == {"NIFTY": "near"}


def test_two_indices_for_one_underlying_are_refused_when_the_stage_is_built() -> None:
    listed = {i.token: i for i in (_inst("26000", "INDEX"), _inst("idx-test", "INDEX"))}
    with pytest.raises(ValueError, match=r"2 INDEX instruments for underlying 'NIFTY'.*26000"):
        UnderlyingLogic(listed, UnderlyingConfig())


# ------------------------------------------------------------------------ fingerprint
# ``tests.digests.stable_digest`` of the outputs (floats to 7 significant digits, all else exact)
# for the whole synthetic day below (seed 7, 2026-07-08, chain thinned to 5 %, index at full
# rate; 144,720 ticks → 99,980 analytics, 348 regimes, 12 signals from all three strategies)
# through the stage as flows/trading.py configures it. First pinned as the exact msgpack sha256
# 4e0766115323857ada481c2f3f3082cdec1e551110195aeeee10cf891b0429f4 with the code of commit
# 63638df, before the per-tick speed-ups (cached ATM strike/front expiry/session close, the
# reorder buffer's in-order queue); re-based to the stable digest on code that still gave that
# exact value, so a libm's last bit does not fail it while any real change of an output or its
# order does. Re-pinned once (issue 19) when the driver's bar started closing at its end (the
# first released item at or after it) instead of after 2 s of candle lateness, during which
# the chain and the spot had already moved on: the decisions on a bar stamped T no longer see
# data from after T (``test_bar_close.py``). Same counts as before; was
# aeee4efdeba3642a3648ed7b933cb722b75fecba78918aeb8061186a064ce43d.
FINGERPRINT = "eef4977c8d5a375a24a212e4cdbaaf7c5c6178308a64b9bd805812bcff7f1d72"


@pytest.fixture(scope="module")
def flow_day():
    market = SyntheticMarket(
        SyntheticConfig(
            seed=7, date=date(2026, 7, 8), tick_rate_scale=0.05, index_tick_rate_scale=1.0
        )
    )
    config = UnderlyingConfig(
        bars_from_ticks=True, forward_ticks=True, candle=CandleConfig(intervals=("1m",))
    )
    logic = UnderlyingLogic({i.token: i for i in market.instruments()}, config)
    return logic, list(market.ticks())


def test_outputs_match_the_recorded_fingerprint(flow_day) -> None:
    logic, ticks = flow_day
    rt = logic.new_runtime("NIFTY")
    out: list[UnderlyingOutput] = []
    for tick in ticks:
        out += logic.on_item(rt, tick)
    out += logic.on_eof(rt)
    kinds = Counter(type(e).__name__ for e in out)
    assert kinds == {
        "Tick": 144_720,
        "OptionAnalytics": 99_980,
        "RegimeClassified": 348,
        "SignalGenerated": 12,
    }
    assert stable_digest(out) == FINGERPRINT


def test_fingerprint_holds_for_jittered_arrivals_and_a_restored_snapshot(flow_day) -> None:
    """Out-of-order arrivals (within the lateness) take the reorder buffer's heap path; a deep
    copy taken mid-day (what recovery snapshots) continues exactly like the original."""
    logic, ticks = flow_day
    rnd = random.Random(5)
    jittered = sorted(ticks, key=lambda t: t.ts_event + timedelta(seconds=rnd.uniform(0, 3)))
    assert jittered != ticks
    rt = logic.new_runtime("NIFTY")
    out: list[UnderlyingOutput] = []
    for i, tick in enumerate(jittered):
        if i == len(jittered) // 2:
            rt = copy.deepcopy(rt)
        out += logic.on_item(rt, tick)
    out += logic.on_eof(rt)
    assert rt.reorder.late == 0
    assert stable_digest(out) == FINGERPRINT
