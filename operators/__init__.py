"""Pure domain logic; the hot modules run compiled when a fresh native build exists."""

from operators import _native

_native.activate(__path__)
