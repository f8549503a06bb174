"""The risk panel: kill-switch and halt state per account, what caused it, and its resets.

State comes from replaying the run's state events in order (``tables.account_risk``): a
KILL_SWITCH or HALT sets it, its RESUME or an operator's OPERATOR_RESET (journalled by
``scalpflow risk reset``) clears it. The panel only reads; resetting is the operator's
command, shown with the account filled in.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from dashboards import queries, tables
from dashboards.data import Ctx, section

CAUSES = ("KILL_SWITCH", "HALT", "CANCEL_ALL", "SQUARE_OFF", "STRATEGY_FAILED", "COOLDOWN")
EVENT_LIMIT = 1000


def render_risk(ctx: Ctx) -> None:
    def state() -> None:
        events = ctx.fetch(queries.risk_state_events, ctx.run_id)
        accounts = tables.account_risk(events)
        if not accounts:
            st.caption("no kill switch, halt or reset in this run: every account trades")
            return
        st.dataframe(
            tables.risk_state_records(accounts), hide_index=True, width="stretch",
            key="risk-state",
        )  # fmt: skip
        blocked = [a for a in accounts if a.kill_switch or a.halted]
        if blocked:
            st.markdown(
                "**How to reset:** after checking why it tripped, an operator clears the "
                "account with"
            )
            st.code(
                "\n".join(tables.RESET_COMMAND.format(account=a.account) for a in blocked),
                language="bash",
            )
            st.caption("The reset is journalled as an OPERATOR_RESET event and listed below.")
        else:
            st.caption("No account is halted or kill-switched now.")

    def causes() -> None:
        rows = [
            e
            for e in ctx.fetch(queries.risk_events, ctx.run_id, EVENT_LIMIT)
            if e.kind in CAUSES or e.kind == "RESUME"
        ]
        _event_table(rows, "risk-causes", "no risk events")

    def resets() -> None:
        rows = [
            e
            for e in ctx.fetch(queries.risk_state_events, ctx.run_id)
            if e.kind == "OPERATOR_RESET"
        ]
        _event_table(rows, "risk-resets", "no operator resets in this run")

    def dead_letters() -> None:
        rows = ctx.fetch(queries.dead_letter_counts, ctx.run_id)
        if rows:
            st.dataframe(
                [{"reason": d.reason, "messages": d.count} for d in rows],
                hide_index=True,
                key="dead-letters",
            )
        else:
            st.caption("no dead letters")

    section("Account state", state)
    section("Events that halted or stopped trading", causes)
    section("Reset history", resets)
    section("Dead letters by reason", dead_letters)


def _event_table(rows: Sequence[queries.RiskEventRow], key: str, empty: str) -> None:
    """A table of risk events, or ``empty`` as a caption when there are none."""
    if rows:
        st.dataframe(tables.event_records(rows), hide_index=True, width="stretch", key=key)
    else:
        st.caption(empty)
