"""Implied volatility and Greeks: vollib parity over a grid, edge cases, invariants."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vollib.black import black
from vollib.black.greeks import analytical as black_greeks
from vollib.black.implied_volatility import implied_volatility as black_iv
from vollib.black_scholes import black_scholes
from vollib.black_scholes.greeks import analytical as bs_greeks
from vollib.black_scholes.implied_volatility import implied_volatility as bs_iv

from operators.options.greeks import (
    Flag,
    Greeks,
    Model,
    greeks,
    implied_vol,
    price,
    time_to_expiry,
)

R = 0.065
UNDERLYING = 24000.0
HOUR = 1.0 / (365 * 24)
MONEYNESS = np.linspace(0.7, 1.3, 13)
EXPIRIES = np.array([HOUR, 6 * HOUR, 1 / 365, 7 / 365, 21 / 365, 60 / 365])
VOLS = np.array([0.05, 0.1, 0.2, 0.35, 0.6, 1.0, 1.5])
_FLAGS: tuple[Flag, Flag] = ("c", "p")
GREEK_NAMES = ("delta", "gamma", "theta", "vega", "rho")


def _vollib_price(model: str, flag: str, u: float, k: float, t: float, sigma: float) -> float:
    if model == "black76":
        return float(black(flag, u, k, t, R, sigma))
    return float(black_scholes(flag, u, k, t, R, sigma))


def _vollib_iv(model: str, p: float, flag: str, u: float, k: float, t: float) -> float:
    if model == "black76":
        return float(black_iv(p, u, k, R, t, flag))  # vollib.black takes (r, t) in that order
    return float(bs_iv(p, u, k, t, R, flag))


def _well_posed(model: str, flag: str, u: float, k: float, t: float, sigma: float) -> bool:
    """Whether the price pins sigma down in double precision.

    Deep in or out of the money at short expiries the time value is below ~1e-6 of the
    underlying, or vega is so small that a 1-ulp change of the price moves sigma by more than
    1e-6: there no solver (vollib included) can agree to 1e-6, and vollib returns 0 or a
    wrong value. Those points are excluded from the parity check and covered by edge tests.
    """
    fwd = u * math.exp(R * t) if model == "bs" else u
    p = _vollib_price(model, flag, u, k, t, sigma) * math.exp(R * t)
    time_value = p - max((fwd - k) if flag == "c" else (k - fwd), 0.0)
    d1 = (math.log(fwd / k) + 0.5 * sigma * sigma * t) / (sigma * math.sqrt(t))
    vega = fwd * math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) * math.sqrt(t)
    return time_value > 1e-6 * fwd and vega > 1e-6 * fwd


def _grid(model: str) -> list[tuple[Flag, float, float, float]]:
    return [
        (flag, UNDERLYING * m, t, sigma)
        for m in MONEYNESS
        for t in EXPIRIES
        for sigma in VOLS
        for flag in _FLAGS
        if _well_posed(model, flag, UNDERLYING, UNDERLYING * m, t, sigma)
    ]


@pytest.mark.parametrize("model", ["black76", "bs"])
def test_iv_matches_vollib_over_grid(model: Model) -> None:
    grid = _grid(model)
    # the filter keeps a large part of the grid, with every expiry, vol and moneyness in it
    assert len(grid) > 0.4 * len(MONEYNESS) * len(EXPIRIES) * len(VOLS) * 2
    assert {t for _, _, t, _ in grid} == set(EXPIRIES)
    assert {s for *_, s in grid} == set(VOLS)
    assert len({k for _, k, _, _ in grid}) == len(MONEYNESS)
    prices = np.array([_vollib_price(model, f, UNDERLYING, k, t, s) for f, k, t, s in grid])
    ref = np.array(
        [
            _vollib_iv(model, p, f, UNDERLYING, k, t)
            for p, (f, k, t, _) in zip(prices, grid, strict=True)
        ]
    )
    true_sigma = np.array([s for *_, s in grid])
    ours = np.array(
        [
            implied_vol(p, UNDERLYING, k, t, R, f, model).iv or np.nan
            for p, (f, k, t, _) in zip(prices, grid, strict=True)
        ]
    )
    assert not np.isnan(ours).any()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours, true_sigma, rtol=0, atol=1e-9)


@pytest.mark.parametrize("model", ["black76", "bs"])
def test_greeks_match_vollib_over_grid(model: Model) -> None:
    module = black_greeks if model == "black76" else bs_greeks
    grid = [
        (f, UNDERLYING * m, t, s) for m in MONEYNESS for t in EXPIRIES for s in VOLS for f in _FLAGS
    ]
    for i, (flag, k, t, sigma) in enumerate(grid):
        ours = greeks(UNDERLYING, k, t, R, sigma, flag, model)
        assert isinstance(ours, Greeks)
        for name in GREEK_NAMES:
            ref = float(getattr(module, name)(flag, UNDERLYING, k, t, R, sigma))
            assert getattr(ours, name) == pytest.approx(ref, rel=1e-6, abs=1e-9), (name, grid[i])


def test_greek_units_follow_vollib() -> None:
    """Theta per calendar day, vega per vol point, rho per rate point (finite differences)."""
    u, k, t, s = 24000.0, 24200.0, 10 / 365, 0.14
    g = greeks(u, k, t, R, s, "c")
    assert g is not None
    bump = 1e-4
    dt = 1e-5
    theta = (price(u, k, t - dt, R, s, "c") - price(u, k, t + dt, R, s, "c")) / (2 * dt)
    vega = (price(u, k, t, R, s + bump, "c") - price(u, k, t, R, s - bump, "c")) / (2 * bump)
    rho = (price(u, k, t, R + bump, s, "c") - price(u, k, t, R - bump, s, "c")) / (2 * bump)
    assert g.theta == pytest.approx(theta / 365, rel=1e-6)
    assert g.vega == pytest.approx(vega / 100, rel=1e-6)
    assert g.rho == pytest.approx(rho / 100, rel=1e-6)


@pytest.mark.parametrize(
    ("price_", "strike", "t", "flag", "reason"),
    [
        (900.0, 23000.0, 0.02, "c", "BELOW_INTRINSIC"),  # intrinsic is ~1000
        (24_100.0, 23000.0, 0.02, "c", "ABOVE_MAXIMUM"),  # a call is worth less than F
        (25_000.0, 24500.0, 0.02, "p", "ABOVE_MAXIMUM"),  # a put is worth less than K
        (120.0, 24000.0, 0.0, "c", "NO_TIME_LEFT"),
        (120.0, 24000.0, -0.01, "p", "NO_TIME_LEFT"),
        (0.0, 25000.0, 0.02, "c", "NO_TIME_VALUE"),
        (-1.0, 24000.0, 0.02, "c", "INVALID_INPUT"),
        (float("nan"), 24000.0, 0.02, "c", "INVALID_INPUT"),
        (120.0, 0.0, 0.02, "c", "INVALID_INPUT"),
    ],
)
def test_edge_cases_are_typed_results_not_exceptions(price_, strike, t, flag, reason) -> None:
    result = implied_vol(price_, UNDERLYING, strike, t, R, flag)
    assert result.iv is None
    assert not result.ok
    assert result.reason == reason


def test_price_exactly_at_intrinsic_is_no_time_value() -> None:
    t = 0.01
    p = (UNDERLYING - 20000.0) * math.exp(-R * t)
    assert implied_vol(p, UNDERLYING, 20000.0, t, R, "c").reason == "NO_TIME_VALUE"


def test_greeks_undefined_inputs_give_none() -> None:
    assert greeks(UNDERLYING, 24000.0, 0.0, R, 0.2, "c") is None
    assert greeks(UNDERLYING, 24000.0, 0.1, R, 0.0, "p") is None
    assert greeks(float("nan"), 24000.0, 0.1, R, 0.2, "p") is None


def test_time_to_expiry_counts_to_1530_ist() -> None:
    # 09:30 IST on expiry day = 04:00 UTC; close 15:30 IST = 10:00 UTC: 6 hours left.
    t = time_to_expiry(datetime(2026, 3, 3, 4, 0, tzinfo=UTC), date(2026, 3, 3))
    assert t == pytest.approx(6 / (365 * 24))
    assert time_to_expiry(datetime(2026, 3, 3, 10, 0, 1, tzinfo=UTC), date(2026, 3, 3)) == 0.0


_u = st.floats(1000, 50_000)
_m = st.floats(0.7, 1.3)
_t = st.floats(HOUR, 60 / 365)
_sigma = st.floats(0.05, 1.5)


@settings(max_examples=200, deadline=None)
@given(u=_u, m=_m, t=_t, sigma=_sigma, model=st.sampled_from(["black76", "bs"]))
def test_delta_bounds_and_put_call_parity(u, m, t, sigma, model) -> None:
    k = u * m
    call = greeks(u, k, t, R, sigma, "c", model)
    put = greeks(u, k, t, R, sigma, "p", model)
    assert call is not None
    assert put is not None
    assert 0.0 <= call.delta <= 1.0
    assert -1.0 <= put.delta <= 0.0
    assert call.gamma == pytest.approx(put.gamma, rel=1e-9)
    c = price(u, k, t, R, sigma, "c", model)
    p = price(u, k, t, R, sigma, "p", model)
    parity = (u - k) * math.exp(-R * t) if model == "black76" else u - k * math.exp(-R * t)
    assert c - p == pytest.approx(parity, rel=1e-9, abs=1e-9 * u)
    assert c >= 0.0
    assert p >= 0.0


@settings(max_examples=200, deadline=None)
@given(u=_u, m=_m, t=_t, sigma=_sigma, flag=st.sampled_from(["c", "p"]))
def test_iv_roundtrip_where_well_posed(u, m, t, sigma, flag) -> None:
    k = u * m
    p = price(u, k, t, R, sigma, flag)
    result = implied_vol(p, u, k, t, R, flag)
    if _well_posed("black76", flag, u, k, t, sigma):
        assert result.iv == pytest.approx(sigma, abs=1e-9)
    else:  # never an exception or NaN: a number or a reason
        assert result.iv is None or math.isfinite(result.iv)


# Reference values over a grid of quotes (IV with its reason, the five Greeks), recorded from
# the scalar path of commit 7ce013a (bit-identical to that of 63638df, before it was written out
# inline for speed). Compared with a tolerance, not float bits: a compiler or libm may move the
# last bit, a real change moves far more. Regenerate with ``python -m tests.operators.test_greeks``.
REFERENCE = Path(__file__).with_name("data") / "greeks_reference.npz"
_NAN5 = (math.nan,) * 5


def _reference_grid() -> tuple[list[str], np.ndarray, np.ndarray]:
    reasons: list[str] = []
    ivs: list[float] = []
    values: list[tuple[float, ...]] = []
    for m in MONEYNESS.tolist():
        for t in EXPIRIES.tolist():
            for sigma in VOLS.tolist():
                for flag in _FLAGS:
                    for model in ("black76", "bs"):
                        k = UNDERLYING * m
                        p = price(UNDERLYING, k, t, R, sigma, flag, model)
                        for quote in (p, p * 0.5, p * 1.5, 0.0):
                            iv = implied_vol(quote, UNDERLYING, k, t, R, flag, model)
                            reasons.append(iv.reason)
                            ivs.append(math.nan if iv.iv is None else iv.iv)
                        g = greeks(UNDERLYING, k, t, R, sigma, flag, model)
                        values.append(
                            _NAN5 if g is None else tuple(getattr(g, n) for n in GREEK_NAMES)
                        )
    return reasons, np.array(ivs), np.array(values)


def test_outputs_equal_the_recorded_reference() -> None:
    reasons, ivs, values = _reference_grid()
    ref = np.load(REFERENCE)
    assert len(reasons) == 8_736
    assert "BELOW_INTRINSIC" in reasons
    assert reasons == ref["reasons"].tolist()
    np.testing.assert_allclose(ivs, ref["iv"], rtol=1e-12, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(values, ref["greeks"], rtol=1e-12, atol=1e-15, equal_nan=True)


def test_a_time_value_too_small_to_normalise_is_no_time_value_not_a_crash() -> None:
    # 5e-324 (the smallest float) over sqrt(F·K) underflows to 0: log(0) used to raise
    assert implied_vol(5e-324, 1000.0, 1000.0, 0.125, R, "c").reason == "NO_TIME_VALUE"


if __name__ == "__main__":  # regenerate the reference after a deliberate change
    _reasons, _ivs, _values = _reference_grid()
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez_compressed(REFERENCE, reasons=np.array(_reasons), iv=_ivs, greeks=_values)
    print(f"wrote {REFERENCE}")
