"""Implied volatility and Greeks (Black-76 on the forward, or Black-Scholes on spot).

Conventions are those of ``vollib`` (``vollib.black`` / ``vollib.black_scholes``), so numbers can
be checked against it directly:

- ``price`` is the *discounted* option price; ``r`` is continuously compounded; ``t_years`` is
  in years of 365 days (``years_to_expiry``: to 15:30 IST on the expiry day);
- ``delta`` per unit of the underlying (Black-76: ``e^{-rT} N(d1)``, i.e. per unit of forward);
- ``gamma`` per unit of the underlying, squared;
- ``theta`` per **calendar day** (the annual rate divided by 365), negative for a long option;
- ``vega`` per **1 volatility point** (0.01 of sigma);
- ``rho`` per **1 percentage point** of ``r`` (Black-76: ``-T·price/100``, the option's
  discounting only).

Implied volatility is solved on the normalised out-of-the-money price ``b(x, s)``,
``s = σ√T``: two starting guesses (Corrado–Miller near the money, an asymptotic expansion far
from it) are priced and the closer one kept, then Halley's method on ``ln b`` converges in 2–3
steps; every evaluation narrows a bracket of the root and a step leaving it bisects, so the
solver cannot diverge. It stops when a step is below 1e-11·s, leaving an error far below
1e-10 wherever the price carries information (measured ≤ 2e-11 in σ over the test grid).
Impossible inputs give an ``IVResult`` with ``iv=None`` and a reason instead of raising:
below intrinsic, no time value, at or above the no-arbitrage maximum, no time left,
non-positive or non-finite inputs.

``implied_vol_vec`` / ``greeks_vec`` run the same algorithm on numpy arrays to price a whole
chain at once; there a missing IV is ``NaN`` and ``reason`` holds the code per element
(``REASONS[code]``). Flow code converts NaN to ``None`` before building events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
from mypy_extensions import mypyc_attr
from scipy.special import erfc as _erfc_vec

from operators import _native
from operators.sessions import years_to_expiry

Flag = Literal["c", "p"]
Model = Literal["black76", "bs"]
IVReason = Literal[
    "OK",
    "BELOW_INTRINSIC",
    "NO_TIME_VALUE",
    "ABOVE_MAXIMUM",
    "NO_TIME_LEFT",
    "INVALID_INPUT",
    "NOT_CONVERGED",
]
#: Reason codes of the vectorised path, indexed by the int8 ``reason`` array.
REASONS: tuple[IVReason, ...] = (
    "OK",
    "BELOW_INTRINSIC",
    "NO_TIME_VALUE",
    "ABOVE_MAXIMUM",
    "NO_TIME_LEFT",
    "INVALID_INPUT",
    "NOT_CONVERGED",
)
_CODE = {name: np.int8(i) for i, name in enumerate(REASONS)}

FloatArray = npt.NDArray[np.float64]
_SQRT2 = math.sqrt(2.0)
_INV_SQRT2 = 1.0 / _SQRT2
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / _SQRT_2PI
#: Stop once a step is this small relative to s: the step before it was ~1e-6 and the
#: iteration converges at least quadratically, so the error left is far below 1e-12.
_STEP_TOL = 1e-11
_DAYS_PER_YEAR = 365.0
_MAX_ITER = 100
#: Relative size of float noise in ``price·e^{rT} − (F − K)``; a time value within it is zero.
_PARITY_NOISE = 1e-13


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class IVResult:
    """An implied volatility, or ``iv=None`` with the reason there is none."""

    iv: float | None
    reason: IVReason = "OK"

    @property
    def ok(self) -> bool:
        return self.iv is not None


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities in vollib's units (theta per day, vega and rho per 1 point)."""

    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class IVVecResult:
    """Vectorised IVs: ``iv`` is NaN exactly where ``reason != 0`` (see ``REASONS``)."""

    iv: FloatArray
    reason: npt.NDArray[np.int8]


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class GreeksVec:
    delta: FloatArray
    gamma: FloatArray
    theta: FloatArray
    vega: FloatArray
    rho: FloatArray


def time_to_expiry(ts_event: datetime, expiry: date) -> float:
    """Years (of 365 days) from ``ts_event`` to 15:30 IST on ``expiry``; 0 once expired."""
    return years_to_expiry(ts_event, expiry)


# --------------------------------------------------------------------------- scalar path


def _ncdf(z: float) -> float:
    return 0.5 * math.erfc(-z / _SQRT2)


def _npdf(z: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * z * z)


def _forward(underlying: float, t: float, r: float, model: Model) -> float:
    return underlying * math.exp(r * t) if model == "bs" else underlying


def _valid(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


def _norm_otm(x: float, s: float) -> float:
    """Normalised Black price of the OTM call at log-moneyness ``x ≤ 0``, ``s = σ√T``."""
    h = x / s
    t = 0.5 * s
    return 0.5 * (math.exp(0.5 * x) * math.erfc(-(h + t) / _SQRT2)
                  - math.exp(-0.5 * x) * math.erfc(-(h - t) / _SQRT2))  # fmt: skip


def _norm_vega(x: float, s: float) -> float:
    """d b / d s of ``_norm_otm``."""
    return _INV_SQRT_2PI * math.exp(-0.5 * (x / s) ** 2 - 0.125 * s * s)


def _asymptotic_guess(beta: float, x: float) -> float:
    """Far out of the money: ln b ≈ ln(s³/(x²√2π)) − x²/2s², solved by fixed point (x < 0)."""
    ln_beta = math.log(beta)
    s = -x / math.sqrt(-2.0 * ln_beta)
    for _ in range(2):
        arg = math.log(s**3 / (x * x * _SQRT_2PI)) - ln_beta
        if arg <= 0.0:
            break
        s = -x / math.sqrt(2.0 * arg)
    return s


def _corrado_miller_guess(beta: float, x: float) -> float:
    """Near the money: Corrado–Miller's closed-form approximation in normalised units."""
    f, k = math.exp(0.5 * x), math.exp(-0.5 * x)
    half_gap = 0.5 * (f - k)
    disc = (beta - half_gap) ** 2 - (f - k) ** 2 / math.pi
    s = _SQRT_2PI / (f + k) * (beta - half_gap + math.sqrt(max(disc, 0.0)))
    return s if s > 0.0 else beta * _SQRT_2PI


def _halley_step(x: float, s: float, b: float, ln_beta: float) -> float:
    """Halley step on g(s) = ln b(s) − ln β (Newton where Halley's correction would blow up)."""
    vega = _norm_vega(x, s)
    if not (b > 0.0 and vega > 0.0):
        return math.inf
    g1 = vega / b
    g2 = vega * (x * x / s**3 - 0.25 * s) / b - g1 * g1
    newton = (ln_beta - math.log(b)) / g1
    denom = 1.0 + 0.5 * newton * g2 / g1
    return newton / denom if denom > 0.5 else newton


def _solve_s(beta: float, x: float) -> float | None:
    """The ``s > 0`` with ``_norm_otm(x, s) == beta`` (``x ≤ 0``, ``0 < beta < e^{x/2}``).

    Two starting guesses are priced (Corrado–Miller near the money, an asymptotic one far from
    it) and the closer one is kept; Halley's method on ``ln b`` then converges in 2–3 steps.
    Every evaluation narrows a bracket of the root and a step leaving it bisects instead, so
    the iteration cannot diverge.

    ``_norm_otm`` and ``_halley_step`` are written out inline (same operations, same order,
    so the same bits) with ``e^{±x/2}`` computed once: this runs for every option quote.
    """
    exp, erfc, log = math.exp, math.erfc, math.log
    ln_beta = log(beta)
    e_plus, e_minus = exp(0.5 * x), exp(-0.5 * x)
    x2 = x * x
    lo, hi = 0.0, math.inf
    s, b, err = 0.0, 0.0, math.inf
    guesses = [_corrado_miller_guess(beta, x)]
    if x < 0.0:
        guesses.append(_asymptotic_guess(beta, x))
    for guess in guesses:
        h, half = x / guess, 0.5 * guess
        b_guess = 0.5 * (e_plus * erfc(-(h + half) / _SQRT2) - e_minus * erfc(-(h - half) / _SQRT2))
        if b_guess < beta:
            lo = max(lo, guess)
        elif b_guess > beta:
            hi = min(hi, guess)
        else:
            return guess
        miss = abs(log(b_guess) - ln_beta) if b_guess > 0.0 else math.inf
        if miss <= err:
            s, b, err = guess, b_guess, miss
    for _ in range(_MAX_ITER):
        # Halley step on g(s) = ln b(s) − ln β (Newton where the correction would blow up)
        vega = _INV_SQRT_2PI * exp(-0.5 * (x / s) ** 2 - 0.125 * s * s)
        if b > 0.0 and vega > 0.0:
            g1 = vega / b
            g2 = vega * (x2 / s**3 - 0.25 * s) / b - g1 * g1
            newton = (ln_beta - log(b)) / g1
            denom = 1.0 + 0.5 * newton * g2 / g1
            s_new = s + (newton / denom if denom > 0.5 else newton)
        else:
            s_new = math.inf
        if not (lo < s_new < hi):  # safeguard: bisect (double while unbounded above)
            s_new = 2.0 * max(s, lo) if math.isinf(hi) else 0.5 * (lo + hi)
        if abs(s_new - s) <= _STEP_TOL * s_new:
            return s_new
        s = s_new
        h, half = x / s, 0.5 * s
        b = 0.5 * (e_plus * erfc(-(h + half) / _SQRT2) - e_minus * erfc(-(h - half) / _SQRT2))
        if b < beta:
            lo = s
        elif b > beta:
            hi = s
        else:
            return s
    return None


#: The result for each failure reason (immutable, so shared).
_FAILED: dict[str, IVResult] = {name: IVResult(None, name) for name in REASONS if name != "OK"}


def implied_vol(
    price: float,
    underlying: float,
    strike: float,
    t_years: float,
    r: float,
    flag: Flag,
    model: Model = "black76",
) -> IVResult:
    """Implied volatility of a European option's discounted ``price``.

    ``underlying`` is the forward for ``model="black76"`` and the spot for ``"bs"``.

    >>> round(implied_vol(5.5811067246, 100.0, 100.0, 0.5, 0.02, "c").iv, 8)
    0.2
    """
    iv = _implied_vol(price, underlying, strike, t_years, r, flag, model)
    return _FAILED[iv] if isinstance(iv, str) else IVResult(iv)


def implied_vol_value(
    price: float,
    underlying: float,
    strike: float,
    t_years: float,
    r: float,
    flag: Flag,
    model: Model = "black76",
) -> float | None:
    """``implied_vol(...).iv`` without building a result object (per-quote hot paths)."""
    iv = _implied_vol(price, underlying, strike, t_years, r, flag, model)
    return None if isinstance(iv, str) else iv


def _implied_vol(
    price: float,
    underlying: float,
    strike: float,
    t_years: float,
    r: float,
    flag: Flag,
    model: Model,
) -> float | IVReason:
    """The implied volatility, or the reason there is none."""
    isfinite = math.isfinite
    if not (
        isfinite(price)
        and isfinite(underlying)
        and isfinite(strike)
        and isfinite(t_years)
        and isfinite(r)
    ) or flag not in ("c", "p"):
        return "INVALID_INPUT"
    if underlying <= 0.0 or strike <= 0.0 or price < 0.0:
        return "INVALID_INPUT"
    if t_years <= 0.0:
        return "NO_TIME_LEFT"
    fwd = underlying * math.exp(r * t_years) if model == "bs" else underlying
    undiscounted = price * math.exp(r * t_years)
    theta = 1.0 if flag == "c" else -1.0
    intrinsic = max(theta * (fwd - strike), 0.0)
    otm = undiscounted - intrinsic
    if intrinsic > 0.0 and abs(otm) <= _PARITY_NOISE * max(fwd, strike):
        otm = 0.0  # within rounding of intrinsic: the difference is float noise, not time value
    if otm < 0.0:
        return "BELOW_INTRINSIC"
    if otm == 0.0:
        return "NO_TIME_VALUE"
    if undiscounted >= (fwd if flag == "c" else strike):
        return "ABOVE_MAXIMUM"
    x = -abs(math.log(fwd / strike))
    beta = otm / math.sqrt(fwd * strike)
    if beta <= 0.0:
        return "NO_TIME_VALUE"  # a time value so small its normalised form underflows
    if beta >= math.exp(0.5 * x):
        return "ABOVE_MAXIMUM"
    s = _solve_s(beta, x)
    if s is None:
        return "NOT_CONVERGED"
    return s / math.sqrt(t_years)


def price(
    underlying: float,
    strike: float,
    t_years: float,
    r: float,
    sigma: float,
    flag: Flag,
    model: Model = "black76",
) -> float:
    """Discounted model price (intrinsic value, discounted, when ``t_years`` or σ is 0)."""
    fwd = _forward(underlying, t_years, r, model)
    disc = math.exp(-r * t_years)
    theta = 1.0 if flag == "c" else -1.0
    if t_years <= 0.0 or sigma <= 0.0:
        return disc * max(theta * (fwd - strike), 0.0)
    x = math.log(fwd / strike)
    s = sigma * math.sqrt(t_years)
    # OTM part from the normalised price, plus intrinsic: accurate far from the money too.
    otm = math.sqrt(fwd * strike) * _norm_otm(-abs(x), s)
    return disc * (otm + max(theta * (fwd - strike), 0.0))


def greeks(
    underlying: float,
    strike: float,
    t_years: float,
    r: float,
    sigma: float,
    flag: Flag,
    model: Model = "black76",
) -> Greeks | None:
    """Analytical Greeks in vollib's units; ``None`` when undefined (no time, σ ≤ 0, bad input)."""
    values = greeks_values(underlying, strike, t_years, r, sigma, flag, model)
    return None if values is None else Greeks(*values)


def greeks_values(
    underlying: float,
    strike: float,
    t_years: float,
    r: float,
    sigma: float,
    flag: Flag,
    model: Model = "black76",
) -> tuple[float, float, float, float, float] | None:
    """``greeks`` as a plain ``(delta, gamma, theta, vega, rho)`` tuple (per-quote hot paths)."""
    isfinite = math.isfinite
    if not (
        isfinite(underlying)
        and isfinite(strike)
        and isfinite(t_years)
        and isfinite(r)
        and isfinite(sigma)
    ) or flag not in ("c", "p"):
        return None
    if underlying <= 0.0 or strike <= 0.0 or t_years <= 0.0 or sigma <= 0.0:
        return None
    erfc = math.erfc
    sqrt_t = math.sqrt(t_years)
    disc = math.exp(-r * t_years)
    fwd = underlying * math.exp(r * t_years) if model == "bs" else underlying
    log_moneyness = math.log(fwd / strike)
    d1 = (log_moneyness + 0.5 * sigma * sigma * t_years) / (sigma * sqrt_t)
    d2 = d1 - sigma * sqrt_t
    pdf1 = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)  # _npdf(d1)
    call = flag == "c"
    if model == "bs":
        s = underlying
        decay = -s * pdf1 * sigma / (2.0 * sqrt_t)
        if call:
            delta = _ncdf(d1)
            theta = decay - r * strike * disc * _ncdf(d2)
            rho = t_years * strike * disc * _ncdf(d2)
        else:
            delta = _ncdf(d1) - 1.0
            theta = decay + r * strike * disc * _ncdf(-d2)
            rho = -t_years * strike * disc * _ncdf(-d2)
        gamma = pdf1 / (s * sigma * sqrt_t)
        vega = s * pdf1 * sqrt_t
    else:
        decay = -fwd * disc * pdf1 * sigma / (2.0 * sqrt_t)
        # price(fwd, strike, t_years, r, sigma, flag, "black76") written out: same operations
        x = -abs(log_moneyness)
        h, half = x / (sigma * sqrt_t), 0.5 * (sigma * sqrt_t)
        norm_otm = 0.5 * (math.exp(0.5 * x) * erfc(-(h + half) / _SQRT2)
                          - math.exp(-0.5 * x) * erfc(-(h - half) / _SQRT2))  # fmt: skip
        otm = math.sqrt(fwd * strike) * norm_otm
        value = disc * (otm + max((1.0 if call else -1.0) * (fwd - strike), 0.0))
        # _ncdf(±d1) written out
        delta = disc * (0.5 * erfc(-d1 / _SQRT2)) if call else -disc * (0.5 * erfc(d1 / _SQRT2))
        theta = decay + r * value
        rho = -t_years * value
        gamma = disc * pdf1 / (fwd * sigma * sqrt_t)
        vega = fwd * disc * pdf1 * sqrt_t
    return (delta, gamma, theta / _DAYS_PER_YEAR, vega * 0.01, rho * 0.01)


# --------------------------------------------------------------------------- vectorised path


def _as_arrays(*xs: npt.ArrayLike) -> list[FloatArray]:
    arrays = np.broadcast_arrays(*[np.asarray(x, dtype=np.float64) for x in xs])
    return [np.array(a, dtype=np.float64) for a in arrays]


def _is_call(flag: npt.ArrayLike, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """Flags as a boolean "is call" array; accepts 'c'/'p' (or 'CE'/'PE') strings or bools."""
    arr = np.asarray(flag)
    if arr.dtype.kind in ("U", "S", "O"):
        text = np.char.lower(arr.astype(str))
        calls = (text == "c") | (text == "ce")
    else:
        calls = arr.astype(bool)
    return np.broadcast_to(calls, shape).copy()


def _norm_otm_vec(
    x: FloatArray,
    s: FloatArray,
    e_plus: FloatArray | None = None,
    e_minus: FloatArray | None = None,
) -> FloatArray:
    """``_norm_otm`` on arrays; ``e_plus``/``e_minus`` are ``e^{±x/2}`` when precomputed."""
    h = x / s
    t = 0.5 * s
    if e_plus is None or e_minus is None:
        e_plus, e_minus = np.exp(0.5 * x), np.exp(-0.5 * x)
    out: FloatArray = 0.5 * (
        e_plus * _erfc_vec((h + t) * -_INV_SQRT2) - e_minus * _erfc_vec((h - t) * -_INV_SQRT2)
    )
    return out


def _norm_vega_vec(x: FloatArray, s: FloatArray) -> FloatArray:
    out: FloatArray = _INV_SQRT_2PI * np.exp(-0.5 * (x / s) ** 2 - 0.125 * s * s)
    return out


def _solve_s_vec(beta: FloatArray, x: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Vectorised ``_solve_s``: all elements step together until every one has converged."""
    with np.errstate(all="ignore"):
        ln_beta = np.log(beta)
        # Corrado–Miller guess (see _corrado_miller_guess)
        f, k = np.exp(0.5 * x), np.exp(-0.5 * x)
        x2 = x * x
        half_gap = 0.5 * (f - k)
        disc = (beta - half_gap) ** 2 - (f - k) ** 2 / math.pi
        s_cm = _SQRT_2PI / (f + k) * (beta - half_gap + np.sqrt(np.maximum(disc, 0.0)))
        s_cm = np.where(s_cm > 0.0, s_cm, beta * _SQRT_2PI)
        # asymptotic guess (see _asymptotic_guess); Corrado–Miller again at the money
        s_as = -x / np.sqrt(-2.0 * ln_beta)
        for _ in range(2):
            arg = np.log(s_as**3 / (x * x * _SQRT_2PI)) - ln_beta
            s_as = np.where(arg > 0.0, -x / np.sqrt(arg + arg), s_as)
        s_as = np.where((x < 0.0) & (s_as > 0.0), s_as, s_cm)
        lo = np.zeros_like(beta)
        hi = np.full_like(beta, np.inf)
        err = np.full_like(beta, np.inf)
        s = s_cm.copy()
        b = np.zeros_like(beta)
        done = np.zeros(beta.shape, dtype=bool)
        for guess in (s_cm, s_as):
            b_guess = _norm_otm_vec(x, guess, f, k)
            lo = np.where(b_guess < beta, np.maximum(lo, guess), lo)
            hi = np.where(b_guess > beta, np.minimum(hi, guess), hi)
            miss = np.where(b_guess > 0.0, np.abs(np.log(b_guess) - ln_beta), np.inf)
            better = miss <= err
            s, b, err = (
                np.where(better, guess, s),
                np.where(better, b_guess, b),
                np.minimum(miss, err),
            )
            done |= b_guess == beta
        for _ in range(_MAX_ITER):
            vega = _norm_vega_vec(x, s)
            usable = (b > 0.0) & (vega > 0.0)
            b_safe = np.where(usable, b, 0.5)
            g1 = vega / b_safe  # d ln b / ds
            newton = (ln_beta - np.log(b_safe)) / g1
            # Halley: g''/g' = (x²/s³ − s/4) − g'
            denom = 1.0 + 0.5 * newton * (x2 / s**3 - 0.25 * s - g1)
            s_new = s + np.where(denom > 0.5, newton / denom, newton)
            bad = ~usable | ~((lo < s_new) & (s_new < hi))
            bisect = np.where(np.isinf(hi), 2.0 * np.maximum(s, lo), 0.5 * (lo + hi))
            s_new = np.where(bad, bisect, s_new)
            s_new = np.where(done, s, s_new)
            done |= np.abs(s_new - s) <= _STEP_TOL * s_new
            s = s_new
            if done.all():
                break
            b = _norm_otm_vec(x, s, f, k)
            lo = np.where(b < beta, s, lo)
            hi = np.where(b > beta, s, hi)
            done |= b == beta
    return s, done


def implied_vol_vec(
    price: npt.ArrayLike,
    underlying: npt.ArrayLike,
    strike: npt.ArrayLike,
    t_years: npt.ArrayLike,
    r: npt.ArrayLike,
    flag: npt.ArrayLike,
    model: Model = "black76",
) -> IVVecResult:
    """``implied_vol`` over arrays (broadcast together); NaN + reason code where none."""
    p, u, k, t, rate = _as_arrays(price, underlying, strike, t_years, r)
    shape = p.shape
    p, u, k, t, rate = (a.ravel() for a in (p, u, k, t, rate))
    calls = _is_call(flag, shape).ravel()
    reason = np.zeros(p.shape, dtype=np.int8)
    iv = np.full(p.shape, np.nan)
    with np.errstate(all="ignore"):
        finite = np.isfinite(p) & np.isfinite(u) & np.isfinite(k) & np.isfinite(t)
        finite &= np.isfinite(rate)
        invalid = ~finite | (u <= 0.0) | (k <= 0.0) | (p < 0.0)
        reason[invalid] = _CODE["INVALID_INPUT"]
        no_time = (reason == 0) & (t <= 0.0)
        reason[no_time] = _CODE["NO_TIME_LEFT"]
        fwd = np.where(np.full(shape, model == "bs").ravel(), u * np.exp(rate * t), u)
        undiscounted = p * np.exp(rate * t)
        intrinsic = np.maximum(np.where(calls, fwd - k, k - fwd), 0.0)
        otm = undiscounted - intrinsic
        noise = (intrinsic > 0.0) & (np.abs(otm) <= _PARITY_NOISE * np.maximum(fwd, k))
        otm = np.where(noise, 0.0, otm)
        pending = reason == 0
        reason[pending & (otm < 0.0)] = _CODE["BELOW_INTRINSIC"]
        reason[pending & (otm == 0.0)] = _CODE["NO_TIME_VALUE"]
        pending = reason == 0
        cap = np.where(calls, fwd, k)
        x = -np.abs(np.log(fwd / k))
        beta = otm / np.sqrt(fwd * k)
        above = pending & ((undiscounted >= cap) | (beta >= np.exp(0.5 * x)))
        reason[above] = _CODE["ABOVE_MAXIMUM"]
    solve = reason == 0
    if solve.any():
        s, converged = _solve_s_vec(beta[solve], x[solve])
        sub_iv = np.where(converged, s / np.sqrt(t[solve]), np.nan)
        sub_reason = np.where(converged, _CODE["OK"], _CODE["NOT_CONVERGED"]).astype(np.int8)
        iv[solve] = sub_iv
        reason[solve] = sub_reason
    return IVVecResult(iv=iv.reshape(shape), reason=reason.reshape(shape))


def price_vec(
    underlying: npt.ArrayLike,
    strike: npt.ArrayLike,
    t_years: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    flag: npt.ArrayLike,
    model: Model = "black76",
) -> FloatArray:
    """``price`` over arrays (t > 0 and σ > 0 expected; otherwise NaN)."""
    u, k, t, rate, sig = _as_arrays(underlying, strike, t_years, r, sigma)
    calls = _is_call(flag, u.shape)
    with np.errstate(all="ignore"):
        fwd = u * np.exp(rate * t) if model == "bs" else u
        x = np.log(fwd / k)
        s = sig * np.sqrt(t)
        otm = np.sqrt(fwd * k) * _norm_otm_vec(-np.abs(x), s)
        intrinsic = np.maximum(np.where(calls, fwd - k, k - fwd), 0.0)
        out: FloatArray = np.where(
            (t > 0) & (sig > 0), np.exp(-rate * t) * (otm + intrinsic), np.nan
        )
    return out


def greeks_vec(
    underlying: npt.ArrayLike,
    strike: npt.ArrayLike,
    t_years: npt.ArrayLike,
    r: npt.ArrayLike,
    sigma: npt.ArrayLike,
    flag: npt.ArrayLike,
    model: Model = "black76",
) -> GreeksVec:
    """``greeks`` over arrays; NaN where a Greek is undefined (t ≤ 0, σ ≤ 0 or σ NaN)."""
    u, k, t, rate, sig = _as_arrays(underlying, strike, t_years, r, sigma)
    calls = _is_call(flag, u.shape)
    with np.errstate(all="ignore"):
        ok = (u > 0) & (k > 0) & (t > 0) & (sig > 0)
        sqrt_t = np.sqrt(t)
        disc = np.exp(-rate * t)
        fwd = u * np.exp(rate * t) if model == "bs" else u
        d1 = (np.log(fwd / k) + 0.5 * sig * sig * t) / (sig * sqrt_t)
        d2 = d1 - sig * sqrt_t
        pdf1 = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
        n_d1 = 0.5 * _erfc_vec(-d1 / _SQRT2)
        n_d2 = 0.5 * _erfc_vec(-d2 / _SQRT2)
        n_md1 = 0.5 * _erfc_vec(d1 / _SQRT2)
        n_md2 = 0.5 * _erfc_vec(d2 / _SQRT2)
        if model == "bs":
            decay = -u * pdf1 * sig / (2.0 * sqrt_t)
            delta = np.where(calls, n_d1, n_d1 - 1.0)
            theta = np.where(calls, decay - rate * k * disc * n_d2, decay + rate * k * disc * n_md2)
            rho = np.where(calls, t * k * disc * n_d2, -t * k * disc * n_md2)
            gamma = pdf1 / (u * sig * sqrt_t)
            vega = u * pdf1 * sqrt_t
        else:
            value = price_vec(fwd, k, t, rate, sig, calls, "black76")
            decay = -fwd * disc * pdf1 * sig / (2.0 * sqrt_t)
            delta = np.where(calls, disc * n_d1, -disc * n_md1)
            theta = decay + rate * value
            rho = -t * value
            gamma = disc * pdf1 / (fwd * sig * sqrt_t)
            vega = fwd * disc * pdf1 * sqrt_t

    def clean(a: FloatArray) -> FloatArray:
        return np.where(ok, a, np.nan)

    return GreeksVec(
        delta=clean(delta),
        gamma=clean(gamma),
        theta=clean(theta / _DAYS_PER_YEAR),
        vega=clean(vega * 0.01),
        rho=clean(rho * 0.01),
    )


_native.picklable(IVResult, Greeks, IVVecResult, GreeksVec)
