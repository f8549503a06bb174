"""The float-tolerant fingerprint (tests.digests): last bits do not count, real changes do."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from operators.events import OptionAnalytics
from tests.digests import stable_digest

TS = datetime(2026, 7, 8, 4, 0, tzinfo=UTC)


def _analytics(iv: float, delta: float, token: str = "1") -> OptionAnalytics:
    return OptionAnalytics(
        ts_event=TS,
        ts_recv=TS,
        token=token,
        underlying="NIFTY",
        price=195.725,
        underlying_price=26052.25,
        forward=26081.311035258226,
        strike=26050.0,
        t_years=0.017151826484018265,
        iv=iv,
        delta=delta,
        gamma=0.0008806931328243878,
        theta=-14.278614820921577,
        vega=13.570192029912489,
    )


IV, DELTA = 0.13206634907567621, 0.5305337453010037
BASE = stable_digest([_analytics(IV, DELTA)])


def test_a_few_ulps_leave_the_digest_alone() -> None:
    up = math.nextafter(math.nextafter(IV, 1.0), 1.0)
    down = math.nextafter(DELTA, 0.0)
    assert up != IV
    assert stable_digest([_analytics(up, down)]) == BASE


def test_a_change_of_a_value_its_sign_its_order_or_a_string_changes_it() -> None:
    assert stable_digest([_analytics(IV * (1 + 1e-6), DELTA)]) != BASE
    assert stable_digest([_analytics(IV, -DELTA)]) != BASE
    assert stable_digest([_analytics(IV, DELTA, token="2")]) != BASE
    two = [_analytics(IV, DELTA), _analytics(IV, DELTA, token="2")]
    assert stable_digest(two) != stable_digest(two[::-1])


def test_negative_zero_and_non_finite_values_are_canonical() -> None:
    assert stable_digest([-0.0]) == stable_digest([0.0])
    assert stable_digest([math.inf]) != stable_digest([-math.inf])
    assert stable_digest([math.nan]) == stable_digest([math.nan])
