"""The stages' state and step functions (reorder buffer, market, underlying, account):
what Bytewax's stateful steps call, with no Bytewax import."""

from operators import _native

_native.activate_subpackage(__path__, __name__)
