"""Plug-in strategies for the isolation tests, loaded by path (``tests.plugin_strategies:...``)
as a user's plug-in would be."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from operators.events import Bar, SignalGenerated
from operators.strategies.base import ContextLike
from operators.strategies.momentum_breakout import MomentumBreakout, MomentumBreakoutParams


class FailingParams(MomentumBreakoutParams):
    fail_on_call: int = Field(default=50, gt=0, description="raise on this bar call")


class FailsOnNthCall(MomentumBreakout):
    """Momentum breakout that raises on its ``fail_on_call``-th bar call (a buggy plug-in)."""

    name = "fails_on_nth_call"
    Params = FailingParams

    def __init__(self, params: Any = None, state: Any = None) -> None:
        super().__init__(params, state)
        self.calls = 0

    def on_bar(self, bar: Bar, ctx: ContextLike) -> list[SignalGenerated]:
        self.calls += 1
        if self.calls == self.params.fail_on_call:  # type: ignore[attr-defined]
            msg = f"plug-in bug on call {self.calls}"
            raise ZeroDivisionError(msg)
        return super().on_bar(bar, ctx)


class MutatesContext(MomentumBreakout):
    """Tries to change the shared context it is given (must fail, read-only)."""

    name = "mutates_context"

    def on_bar(self, bar: Bar, ctx: ContextLike) -> list[SignalGenerated]:
        ctx.analytics.clear()  # type: ignore[attr-defined]
        return []
