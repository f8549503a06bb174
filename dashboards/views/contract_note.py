"""The monitor's contract-note view: the selected run's note for one account and day.

Called from ``dashboards/monitor.py`` with the monitor's connection pool. It shows the note the
flow stored at session close, or, while the day is still trading, the same note computed from
the fills so far (the ledger's "charges so far"), labelled provisional. Same layout as the
CSV/PDF (``dashboards.contract_note.note_table``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from psycopg_pool import ConnectionPool

from connectors.postgres.contract_notes import load_note, note_days
from dashboards.contract_note import COLUMNS, note_table, rupees


def render(pool: ConnectionPool[Any], run_id: str) -> None:
    """Pick an (account, day) the run traded and show its note with the day's true-up."""
    with pool.connection() as conn:
        days = note_days(conn, run_id)
        if not days:
            st.caption("No fills in this run yet: no contract note.")
            return
        labels = [f"{account} · {day:%d %b %Y}" for account, day in days]
        chosen = st.selectbox(
            "Account and trade date", range(len(days)), format_func=labels.__getitem__,
            key=f"note-day-{run_id}",
        )  # fmt: skip
        account, day = days[chosen or 0]
        loaded = load_note(conn, run_id, account, day)
    if loaded is None:
        st.caption("No fills for this account and day.")
        return
    note = loaded.note
    if loaded.provisional:
        st.info("Provisional: the session has not closed; these are the charges so far.")
    charges, booked, true_up = st.columns(3)
    charges.metric("Contract-note charges", f"Rs {rupees(note.charges)}")
    booked.metric("Booked per fill", f"Rs {rupees(note.estimated)}")
    true_up.metric("True-up", f"Rs {rupees(note.true_up)}")
    rows, total = note_table(note)
    st.dataframe(pd.DataFrame([*rows, total], columns=list(COLUMNS)), hide_index=True)
    net = note.net
    side = "receivable by the client" if net >= 0 else "payable by the client"
    st.caption(f"Net amount {side}: Rs {rupees(abs(net))}")
