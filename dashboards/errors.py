"""The dashboards' error family (the read-only monitor and reports)."""

from __future__ import annotations

from operators.errors import ScalpflowError


class DashboardError(ScalpflowError):
    """The monitor or a report could not read what it shows."""
