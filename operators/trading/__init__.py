"""Trading logic: orders, execution simulator, fills, costs, the portfolio (the only
position book), risk limits, kill switch and feed health."""

from operators import _native

_native.activate_subpackage(__path__, __name__)
