"""Option maths and the option chain: IV, Greeks, per-minute chain state."""

from operators import _native

_native.activate_subpackage(__path__, __name__)
