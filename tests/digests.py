"""Fingerprints of outputs that hold floats, stable across libm and compiler last bits.

A sha256 over the exact bytes of IV/Greeks/analytics fails on a machine whose ``exp``/``erfc``/
``log`` differ in the last bit: the Halley IV solver and the Greeks carry such a difference
through to ~1e-11 relative. :func:`stable_digest` hashes the decoded structure with every float
rounded to :data:`DIGITS` significant digits, so order, types, ints, strings, timestamps and
every value to that precision still count exactly.

Why 7 digits: with every exp/erfc/log result nudged by one ulp at random (a stand-in for another
libm), the 1.1M floats of the underlying-stage day moved by at most 2.3e-11 relative, which
flips an expected 4.4 rounded values at 9 digits, 0.44 at 8 and 0.044 at 7 (NOTES.md,
"Float fingerprints"). A rounding digest can never be immune (a value can sit on a rounding
boundary); at 7 digits the odds are about 1 in 25 for a whole-libm change, while any change of
a value above ~1e-6 relative still fails it.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import msgspec

DIGITS = 7


def canonical(value: Any, digits: int = DIGITS) -> Any:
    """``value`` (decoded msgpack/JSON: dicts, lists, scalars) with floats rounded to ``digits``
    significant digits; -0.0 becomes 0.0, NaN and infinities stay as they are."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        return float(f"{value:.{digits - 1}e}") + 0.0  # + 0.0: -0.0 → 0.0
    if isinstance(value, dict):
        return {k: canonical(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v, digits) for v in value]
    return value


def stable_digest(outputs: Any, digits: int = DIGITS) -> str:
    """sha256 of ``msgspec.msgpack.encode(outputs)`` decoded, canonicalised, encoded again."""
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(outputs))
    return hashlib.sha256(msgspec.msgpack.encode(canonical(decoded, digits))).hexdigest()
