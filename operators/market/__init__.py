"""Market data logic: tick validation, sessions, candles, indicators, quotes."""

from operators import _native

_native.activate_subpackage(__path__, __name__)
