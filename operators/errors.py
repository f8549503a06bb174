"""The root of every error scalpflow raises on purpose, and the operators' family.

Each package has one family under ``ScalpflowError`` (``OperatorError`` here,
``connectors.errors.ConnectorError``, ``flows.errors.FlowError``,
``dashboards.errors.DashboardError``), so a caller can catch "scalpflow said no" apart from a
bug, and the CLI prints any of them as one line (the message says what to do). The root
lives here because ``operators`` is the lowest layer: every package may import it. Classes
keep their builtin base (``ValueError``, ``RuntimeError``, ...) beside the family, so code
that caught those still does.
"""

from __future__ import annotations


class ScalpflowError(Exception):
    """An error scalpflow raises on purpose; its message is one line saying what to do."""


class OperatorError(ScalpflowError):
    """Domain logic refused its input (a bad parameter, schedule, strategy, ...)."""
