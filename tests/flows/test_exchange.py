"""``flows.exchange``: events pickle as MessagePack and come back equal, field for field."""

from __future__ import annotations

import copyreg
import pickle
from datetime import UTC, datetime, timedelta

import msgspec

from flows import exchange
from operators.events import OptionAnalytics, RegimeClassified, Tick

T0 = datetime(2026, 7, 7, 3, 45, 0, 123456, tzinfo=UTC)


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and msgspec.structs.asdict(a) == msgspec.structs.asdict(b)  # type: ignore[arg-type]


def test_events_pickle_through_msgpack_and_round_trip_exactly() -> None:
    tick = Tick(ts_event=T0, ts_recv=T0 + timedelta(microseconds=7), token="26000",
                exchange="NSE", ltp=2_600_005, bid=2_600_000, ask=2_600_010, seq=2**40)  # fmt: skip
    greeks = OptionAnalytics(ts_event=T0, ts_recv=T0, token="1", underlying="NIFTY",
                             price=0.1 + 0.2, underlying_price=26000.5, forward=26001.25,
                             strike=26000.0, t_years=1 / 365, iv=None,
                             delta=-0.4999999999)  # fmt: skip
    regime = RegimeClassified(ts_event=T0, ts_recv=T0, underlying="NIFTY", regime="RANGING",
                              features={"atr": 1.5}, model_version="rules")  # fmt: skip
    for event in (tick, greeks, regime):
        data = pickle.dumps([event, event], pickle.HIGHEST_PROTOCOL)
        assert exchange.unpack.__name__.encode() in data  # not msgspec's generic rebuild
        back = pickle.loads(data)
        assert _same(back[0], event)
        assert back[0].ts_event.tzinfo is not None
        assert back[0].ts_event == event.ts_event
    assert pickle.loads(pickle.dumps(regime)).probabilities is msgspec.UNSET
    assert pickle.loads(pickle.dumps(greeks)).price == 0.1 + 0.2  # float64 exact


def test_a_pickle_made_without_the_reducer_still_loads() -> None:
    tick = Tick(ts_event=T0, ts_recv=T0, token="5", exchange="NFO", ltp=10)
    del copyreg.dispatch_table[Tick]  # the form of stores and pickles written before
    try:
        legacy = pickle.dumps(tick, pickle.HIGHEST_PROTOCOL)
    finally:
        exchange.register()
    assert exchange.unpack.__name__.encode() not in legacy
    assert _same(pickle.loads(legacy), tick)
