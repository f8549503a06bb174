"""Users in the monitor (issue 14): an account selector and a leaderboard for one run.

Per account: owner, capital, P&L (realised, unrealised, costs, net, return on capital), open
positions, round trips and win rate, the limits it trades under, its kill-switch and halt
state and its strategies (with the ones disabled by STRATEGY_FAILED). Everything is read from
PostgreSQL: the ``accounts`` table (migration 006) for configuration, the journal for the rest;
an account seen only in the journal (a run without an accounts file) still shows, with no
configured limits. The query functions take a connection, so tests call them directly;
``render`` draws the Streamlit part and is called from ``dashboards/monitor.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from operators.market.sessions import IST

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One account of a run, as the selector and the leaderboard show it."""

    account: str
    owner: str
    capital: Decimal | None
    realised: Decimal
    unrealised: Decimal
    costs: Decimal
    net: Decimal
    open_positions: int
    trades: int
    wins: int
    kill_switch: str  # "" or the reason of the last unreset KILL_SWITCH
    halted: str  # "" or the detail of the last HALT not followed by a RESUME
    strategies: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()  # strategies disabled by STRATEGY_FAILED
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def return_pct(self) -> float | None:
        if not self.capital:
            return None
        return float(self.net / self.capital * 100)

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def accounts(conn: psycopg.Connection[Any], run_id: str) -> list[AccountRow]:
    """Every account of ``run_id`` with its P&L, state and configuration (by account id)."""
    config: dict[str, tuple[str, Decimal, dict[str, Any], list[Any]]] = {}
    if _exists(conn, "accounts"):
        for acct, owner, capital, limits, strategies in conn.execute(
            "SELECT account, owner, capital, limits, strategies FROM accounts WHERE run_id = %s",
            (run_id,),
        ):
            config[acct] = (owner, capital, limits or {}, strategies or [])
    pnl = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT account, sum(realised), sum(unrealised), sum(costs), sum(net),"
            " count(*) FILTER (WHERE qty <> 0) FROM positions WHERE run_id = %s GROUP BY account",
            (run_id,),
        )
    }
    trades = {
        r[0]: (int(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT account, count(*), count(*) FILTER (WHERE net > 0) FROM trades"
            " WHERE run_id = %s GROUP BY account",
            (run_id,),
        )
    }
    state: dict[str, dict[str, Any]] = {}
    for acct, kind, detail, strategy in conn.execute(
        "SELECT account, kind, detail, strategy FROM risk_events WHERE run_id = %s"
        " AND kind IN ('KILL_SWITCH', 'HALT', 'RESUME', 'STRATEGY_FAILED', 'OPERATOR_RESET')"
        " ORDER BY ts, kind",
        (run_id,),
    ):
        s = state.setdefault(acct, {"kill": "", "halt": "", "disabled": []})
        if kind == "KILL_SWITCH":
            s["kill"] = "" if detail == "KILL_SWITCH_RESET" else detail
        elif kind == "HALT":
            s["halt"] = detail
        elif kind == "RESUME":
            s["kill" if detail == "KILL_SWITCH_RESET" else "halt"] = ""
        elif kind == "OPERATOR_RESET":  # `scalpflow risk reset` clears both (issue 13c)
            s["kill"] = s["halt"] = ""
        elif strategy not in s["disabled"]:
            s["disabled"].append(strategy)
    names = sorted((set(config) | set(pnl) | set(trades) | set(state)) - {"", "*"})
    out = []
    for acct in names:
        owner, capital, limits, strategies = config.get(acct, ("", None, {}, []))
        realised, unrealised, costs, net, open_positions = pnl.get(acct, (ZERO,) * 4 + (0,))
        n_trades, wins = trades.get(acct, (0, 0))
        s = state.get(acct, {"kill": "", "halt": "", "disabled": []})
        out.append(
            AccountRow(
                account=acct,
                owner=owner,
                capital=Decimal(capital) if capital is not None else None,
                realised=realised,
                unrealised=unrealised,
                costs=costs,
                net=net,
                open_positions=int(open_positions),
                trades=n_trades,
                wins=wins,
                kill_switch=s["kill"],
                halted=s["halt"],
                strategies=tuple(str(x.get("name", x)) for x in strategies),
                disabled=tuple(s["disabled"]),
                limits=dict(limits),
            )
        )
    return out


def leaderboard(rows: Sequence[AccountRow]) -> list[AccountRow]:
    """Accounts by return on capital (net P&L where no capital is configured), best first;
    ties by account id so the order is stable."""
    return sorted(
        rows,
        key=lambda r: (
            -(r.return_pct if r.return_pct is not None else float(r.net)),
            r.account,
        ),
    )


def leaderboard_records(rows: Sequence[AccountRow]) -> list[dict[str, Any]]:
    """The leaderboard as display rows (rank, P&L in rupees, state flags)."""
    return [
        {
            "rank": rank,
            "account": r.account,
            "owner": r.owner,
            "capital": float(r.capital) if r.capital is not None else None,
            "net": float(r.net),
            "return %": round(r.return_pct, 3) if r.return_pct is not None else None,
            "trades": r.trades,
            "win rate": round(r.win_rate, 3) if r.win_rate is not None else None,
            "open": r.open_positions,
            "kill switch": "ON" if r.kill_switch else "",
            "halted": "yes" if r.halted else "",
            "disabled": ", ".join(r.disabled),
        }
        for rank, r in enumerate(leaderboard(rows), 1)
    ]


def render(run_id: str, connection: Callable[[], Any]) -> None:  # pragma: no cover - UI
    """The accounts tab: leaderboard, then one selected account's detail. ``connection``
    is the monitor's pooled read-only connection (a context manager)."""
    import streamlit as st

    from dashboards import queries

    with connection() as conn:
        rows = accounts(conn, run_id)
        all_positions = queries.positions(conn, run_id)
        all_events = queries.risk_events(conn, run_id, 1000)
    if not rows:
        st.caption("no accounts in this run yet")
        return
    st.subheader("Leaderboard")
    st.dataframe(leaderboard_records(rows), hide_index=True, width="stretch")
    by_id = {r.account: r for r in rows}
    chosen = st.selectbox(
        "Account",
        list(by_id),
        format_func=lambda a: f"{a} · {by_id[a].owner}" if by_id[a].owner else a,
        key=f"account-{run_id}",
    )
    row = by_id[chosen]
    cols = st.columns(5)  # labels unlike the run summary's (they share one page)
    cols[0].metric("Account net P&L", f"₹{float(row.net):,.2f}")
    cols[1].metric("Account realised", f"₹{float(row.realised):,.2f}")
    cols[2].metric("Account unrealised", f"₹{float(row.unrealised):,.2f}")
    cols[3].metric("Account open positions", row.open_positions)
    cols[4].metric("Kill switch", "ON" if row.kill_switch else "off")
    # state as text, not alerts: the page's warnings are reserved for unavailable sections
    if row.kill_switch:
        st.markdown(f"**Kill switch ON:** {row.kill_switch}")
    if row.halted:
        st.markdown(f"**Halted:** {row.halted}")
    shown = [f"~~{s}~~ (disabled)" if s in row.disabled else s for s in row.strategies]
    st.caption("Strategies: " + (", ".join(shown) or "(from the journal only)"))
    if row.limits:
        st.caption("Limits in use")
        st.dataframe([row.limits], hide_index=True, width="stretch")
    st.caption("Positions")
    st.dataframe(
        [
            {
                "strategy": p.strategy,
                "instrument": p.symbol,
                "qty": p.qty,
                "avg ₹": round(float(p.avg_price), 2) if p.qty else None,
                "net ₹": round(float(p.net), 2),
            }
            for p in all_positions
            if p.account == chosen
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption("Risk events")
    st.dataframe(
        [
            {
                "time (IST)": e.ts.astimezone(IST).strftime("%d %b %Y %H:%M:%S"),
                "event": e.kind,
                "strategy": e.strategy,
                "why": e.detail,
            }
            for e in all_events
            if e.account == chosen
        ],
        hide_index=True,
        width="stretch",
    )
