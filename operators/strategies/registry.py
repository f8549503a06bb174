"""Find strategy classes by name: built-ins, ``pkg.mod:Class`` paths, or entry points.

Resolution order for a spec:

1. a built-in name (``momentum_breakout``, ``vwap_reversal``, ``gamma_scalp``);
2. a module path ``pkg.mod:Class``;
3. an entry point of group ``scalpflow.strategies`` with that name, e.g. in a user
   package's pyproject: ``[project.entry-points."scalpflow.strategies"] mine = "pkg.mod:Mine"``.

Built-ins are imported lazily so this module stays cheap to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from operators.strategies.base import Strategy, StrategyError, StrategyParams

ENTRY_POINT_GROUP = "scalpflow.strategies"

BUILTINS: dict[str, str] = {
    "momentum_breakout": "operators.strategies.momentum_breakout:MomentumBreakout",
    "vwap_reversal": "operators.strategies.vwap_reversal:VwapReversal",
    "gamma_scalp": "operators.strategies.gamma_scalp:GammaScalp",
}


class StrategyLoadError(StrategyError, LookupError):
    """A strategy spec that names nothing loadable, or something that is not a Strategy."""


def _import_path(path: str) -> object:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        msg = f"expected 'package.module:Class', got {path!r}"
        raise StrategyLoadError(msg)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"cannot import strategy module {module_name!r}: {exc}"
        raise StrategyLoadError(msg) from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            msg = f"module {module_name!r} has no attribute {attr!r}"
            raise StrategyLoadError(msg) from exc
    return obj


def _entry_point(name: str) -> object | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:
                msg = f"entry point {name!r} ({ep.value}) failed to load: {exc}"
                raise StrategyLoadError(msg) from exc
    return None


def _check(obj: object, spec: str) -> type[Strategy[Any, Any]]:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        msg = f"{spec!r} resolved to {obj!r}, which is not a Strategy subclass"
        raise StrategyLoadError(msg)
    if not obj.name:
        msg = f"strategy class {obj.__qualname__} has no name"
        raise StrategyLoadError(msg)
    return obj


def load_strategy_class(spec: str) -> type[Strategy[Any, Any]]:
    """The Strategy subclass a spec names (see the module docstring for the order)."""
    if spec in BUILTINS:
        return _check(_import_path(BUILTINS[spec]), spec)
    if ":" in spec:
        return _check(_import_path(spec), spec)
    obj = _entry_point(spec)
    if obj is None:
        known = ", ".join(sorted(available_strategies()))
        msg = f"unknown strategy {spec!r}; known: {known}; or use 'package.module:Class'"
        raise StrategyLoadError(msg)
    return _check(obj, spec)


def create_strategy(
    spec: str, params: StrategyParams | Mapping[str, Any] | None = None
) -> Strategy[Any, Any]:
    """A fresh instance of the strategy ``spec`` with validated ``params`` (None = defaults)."""
    return load_strategy_class(spec)(params)


def available_strategies() -> dict[str, str]:
    """Name → import path of every built-in and installed entry-point strategy."""
    found = dict(BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found
