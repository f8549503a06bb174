"""Trade history and the session summary.

History: filters (account, strategy, IST date range, symbol, side) over the run's round trips
with the entry and exit reasons in full, CSV and Excel-friendly CSV downloads of exactly the
filtered rows, a per-strategy P&L table and equity curves; open and closed positions and the
fills. Summary: headline figures, daily P&L, equity and drawdown, the PDF report of the run,
and the backtest runs' metrics.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from dashboards import charts, queries, tables
from dashboards.data import Ctx, section
from dashboards.report import METRIC_LABELS, format_metric, report_from_db

FILL_LIMIT = 500


def _money_columns(headers: list[str]) -> dict[str, Any]:
    return {h: st.column_config.NumberColumn(h, format="%.2f") for h in headers if h.endswith("₹")}


def render_trades(ctx: Ctx) -> None:
    def history() -> None:
        rows = ctx.fetch(queries.trades, ctx.run_id)
        if not rows:
            st.caption("no closed trades")
            return
        c = st.columns(5)
        accounts = c[0].multiselect("Account", sorted({t.account for t in rows}), key="f-account")
        strategies = c[1].multiselect(
            "Strategy", sorted({t.strategy for t in rows}), key="f-strategy"
        )
        symbols = c[2].multiselect("Symbol", sorted({t.symbol for t in rows}), key="f-symbol")
        sides = c[3].multiselect("Side", sorted({t.direction for t in rows}), key="f-side")
        days = sorted({t.exit_ts.astimezone(tables.IST).date() for t in rows})
        picked = c[4].date_input(
            "Dates (IST)", (days[0], days[-1]), min_value=days[0], max_value=days[-1],
            key="f-dates",
        )  # fmt: skip
        first, last = (
            (picked[0], picked[-1]) if isinstance(picked, tuple) and picked else (None, None)
        )
        chosen = tables.filter_trades(
            rows,
            tables.TradeFilter(
                tuple(accounts), tuple(strategies), tuple(symbols), tuple(sides), first, last
            ),
        )
        recs = tables.trade_records(chosen)
        net = sum(float(t.net) for t in chosen)
        st.markdown(f"**{len(chosen)} of {len(rows)} trades** · net ₹{net:,.2f}")
        d1, d2, _ = st.columns([1, 1, 4])
        d1.download_button(
            "Download CSV", tables.csv_bytes(recs), f"trades-{ctx.run_id}.csv", "text/csv",
            key="dl-csv", on_click="ignore",
        )  # fmt: skip
        d2.download_button(
            "Download for Excel", tables.csv_bytes(recs, excel=True),
            f"trades-{ctx.run_id}-excel.csv", "text/csv", key="dl-excel", on_click="ignore",
        )  # fmt: skip
        if recs:
            config = _money_columns(list(recs[0])) | {
                "entry reason": st.column_config.TextColumn("entry reason", width="large"),
                "exit reason": st.column_config.TextColumn("exit reason", width="large"),
            }
            st.dataframe(recs, hide_index=True, width="stretch", column_config=config, key="trades")
            by_id = {r["trade id"]: r for r in recs}  # ids, not positions: filters reorder
            pick = st.selectbox(
                "Trade detail",
                list(by_id),
                format_func=lambda i: (
                    f"{by_id[i]['exit (IST)']} · {by_id[i]['account']} · {by_id[i]['symbol']} · "
                    f"{by_id[i]['strategy']} · net ₹{by_id[i]['net ₹']:,.2f}"
                ),
                key="trade-detail",
            )
            if pick in by_id:
                r = by_id[pick]
                st.markdown(
                    f"**Entry** {r['entry (IST)']} IST at ₹{r['entry ₹']:,.2f}: {r['entry reason']}"
                    f"  \n**Exit** {r['exit (IST)']} IST at ₹{r['exit ₹']:,.2f}: {r['exit reason']}"
                )
        st.markdown("**P&L by strategy**")
        by = tables.strategy_table(chosen)
        st.dataframe(by, hide_index=True, width="stretch", key="by-strategy",
                     column_config=_money_columns(list(by[0])) if by else None)  # fmt: skip
        if chosen:
            st.plotly_chart(
                charts.equity_curves(tables.equity_by_strategy(chosen)),
                width="stretch",
                key="equity-by-strategy",
            )

    def positions() -> None:
        open_rows, closed = tables.position_records(ctx.fetch(queries.positions, ctx.run_id))
        st.markdown(f"**Open positions ({len(open_rows)})**")
        if open_rows:
            st.dataframe(open_rows, hide_index=True, width="stretch", key="open-positions")
        else:
            st.caption("no open positions")
        st.markdown(f"**Closed positions ({len(closed)})**")
        if closed:
            st.dataframe(closed, hide_index=True, width="stretch", key="closed-positions")
        else:
            st.caption("no closed positions")

    def fills() -> None:
        rows = ctx.fetch(queries.fills, ctx.run_id, FILL_LIMIT)
        if not rows:
            st.caption("no fills")
            return
        st.dataframe(
            [
                {
                    "time (IST)": tables.ist_text(f.ts),
                    "account": f.account,
                    "strategy": f.strategy,
                    "symbol": f.symbol,
                    "side": f.side,
                    "qty": f.qty,
                    "price ₹": tables.money(f.price),
                    "costs ₹": tables.money(f.costs),
                    "liquidity": f.liquidity,
                    "reason": f.reason,
                    "fill id": f.fill_id,
                }
                for f in rows
            ],
            hide_index=True,
            width="stretch",
            key="fills",
        )

    section("Trade history", history)
    section("Positions", positions)
    section(f"Fills (latest {FILL_LIMIT})", fills)


REPORT_COLUMNS = (
    "trades",
    "win_rate",
    "net_pnl_rs",
    "gross_pnl_rs",
    "costs_rs",
    "profit_factor",
    "sharpe_daily",
    "max_drawdown_rs",
    "expectancy_rs",
)


def render_summary(ctx: Ctx) -> None:
    def headline() -> None:
        total = queries.pnl_summary(ctx.fetch(queries.positions, ctx.run_id))
        rows = ctx.fetch(queries.trades, ctx.run_id)
        money = st.columns(4)
        money[0].metric(
            "Net P&L", f"₹{float(total.net):,.2f}", help="realised + unrealised − costs"
        )
        money[1].metric("Realised", f"₹{float(total.realised):,.2f}")
        money[2].metric("Unrealised", f"₹{float(total.unrealised):,.2f}", help="marked to mid")
        money[3].metric("Costs", f"₹{float(total.costs):,.2f}")
        if not rows:
            st.caption("no closed trades")
            return
        st.markdown("**Daily P&L**")
        daily = tables.daily_pnl(rows)
        st.dataframe(
            daily, hide_index=True, width="stretch", key="daily",
            column_config=_money_columns(list(daily[0])),
        )  # fmt: skip
        points = queries.equity_points(rows)
        st.markdown("**Equity (cumulative net P&L) and drawdown**")
        st.plotly_chart(charts.equity_figure(points), width="stretch", key="equity")
        falls = tables.drawdown([v for _, v in points])
        st.plotly_chart(charts.drawdown_figure(points, falls), width="stretch", key="drawdown")

    def report() -> None:
        st.caption("A PDF of this run for people: title page, metrics, strategies, chart, trades.")
        # kept in the session: a live run's next auto-refresh must not take the button away
        built = f"report-pdf-{ctx.run_id}"
        if st.button("Build PDF report", key="build_report"):
            with tempfile.TemporaryDirectory() as tmp, ctx.connection() as conn:
                path = report_from_db(conn, ctx.run_id, Path(tmp) / f"report-{ctx.run_id}.pdf")
                st.session_state[built] = path.read_bytes()
        if built in st.session_state:
            st.download_button(
                "Download PDF", st.session_state[built], file_name=f"report-{ctx.run_id}.pdf",
                mime="application/pdf", key="dl-pdf", on_click="ignore",
            )  # fmt: skip

    def backtests() -> None:
        reports = ctx.fetch(queries.backtest_reports)
        if not reports:
            st.caption("no backtest runs")
            return
        st.dataframe(
            [
                {
                    "run": r.run.run_id,
                    "started (IST)": tables.ist_text(r.run.started_at, "%d %b %Y %H:%M"),
                    "note": r.run.note,
                    **{METRIC_LABELS.get(k, k): format_metric(k, r.metrics.get(k))
                       for k in REPORT_COLUMNS},
                }
                for r in reports
            ],
            hide_index=True,
            width="stretch",
            key="backtests",
        )  # fmt: skip

    section("P&L", headline)
    section("PDF report", report)
    section("Backtest runs", backtests)
