"""IV and Greeks for a 42-option chain (ATM ± 10 strikes, CE + PE): ours vs vollib.

Run: ``.venv/bin/python benchmarks/bench_greeks.py [--repeat N]``. Prints microseconds per
option (best of several rounds, so noise from other processes counts as little as possible).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable

import numpy as np
from vollib.black import black
from vollib.black.implied_volatility import implied_volatility as vollib_black_iv

from operators import _native
from operators.options.greeks import greeks, implied_vol

SPOT = 24_000.0
R = 0.065
T = 3 / 365  # three days to expiry


def _chain() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    strikes = SPOT + 50.0 * np.arange(-10, 11)
    strikes = np.concatenate([strikes, strikes])
    flags = np.array(["c"] * 21 + ["p"] * 21)
    sigma = 0.12 + 4e-9 * (strikes - SPOT) ** 2  # a mild smile
    prices = np.array(
        [black(f, SPOT, k, T, R, s) for f, k, s in zip(flags, strikes, sigma, strict=True)]
    )
    return prices, strikes, flags, sigma


def _best_us_per_option(fn: Callable[[], object], n_options: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best / n_options * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200, help="chains per timing round")
    args = parser.parse_args(argv)
    prices, strikes, flags, sigma = _chain()
    n = len(prices)
    rows = list(zip(prices.tolist(), strikes.tolist(), flags.tolist(), strict=True))

    def scalar() -> list[object]:
        return [implied_vol(p, SPOT, k, T, R, f) for p, k, f in rows]

    def vollib_loop() -> list[float]:
        return [vollib_black_iv(p, SPOT, k, R, T, f) for p, k, f in rows]

    def scalar_with_greeks() -> list[object]:
        out: list[object] = []
        for p, k, f in rows:
            iv = implied_vol(p, SPOT, k, T, R, f).iv
            out.append(greeks(SPOT, k, T, R, iv, f) if iv else None)
        return out

    err_scalar = max(abs(r.iv - s) for r, s in zip(scalar(), sigma, strict=True))  # type: ignore[attr-defined]
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"chain: {n} options (ATM ±10 strikes, CE+PE), Black-76, T = 3 days, r = {R}")
    form = "compiled (mypyc)" if "greeks" in _native.compiled_modules() else "pure Python"
    print(f"operators: {form}")
    print(f"max |iv - true sigma|: {err_scalar:.1e}")
    print("IV microseconds per option (best of 7 rounds):")
    for name, fn in [
        ("operators.options.greeks.implied_vol", scalar),
        ("implied_vol + greeks", scalar_with_greeks),
        ("vollib loop (vollib.black implied_volatility)", vollib_loop),
    ]:
        print(f"  {name:48s} {_best_us_per_option(fn, n, args.repeat):8.2f} us")


if __name__ == "__main__":
    main()
