"""The live desk and the AI panel: what an options scalper watches during the session.

Desk: the price of the index or any option (EMA 9/21 and VWAP overlays, RSI and ATR panels,
entry/exit markers whose hover shows the reasons, a band per position), the option chain of
one expiry around ATM from ``option_analytics`` (re-run alone by a fragment while the run is
live), the IV smile and the ATM IV with the chain's trailing IV percentile.
AI: regime timeline as colour bands over the index, the model in use and whether it is the
rules fallback, the regime mix, each strategy's multipliers and weights over time, its win
rate and drawdown, and the cooldowns with their end time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import streamlit as st

from dashboards import charts, queries, tables
from dashboards.data import REFRESH_SECONDS, Ctx, section
from dashboards.queries import InstrumentInfo, TradeRow

CANDLE_LIMIT = 400
CHAIN_WIDTH = 6


def _index(instruments: Sequence[InstrumentInfo]) -> InstrumentInfo | None:
    return next((i for i in instruments if i.kind not in ("CE", "PE")), None)


def _intervals(ctx: Ctx, token: str) -> list[str]:
    found = ctx.fetch(queries.list_intervals, ctx.run_id, token) or ["1m"]
    if "1m" not in found and "5m" in found:  # 1 s candles with TimescaleDB aggregates
        found = ["1m", *found]
    return found


def _chart_trades(trades: Sequence[TradeRow], inst: InstrumentInfo) -> list[TradeRow]:
    """This instrument's trades; on an index, the trades of every option on it."""
    if inst.kind in ("CE", "PE"):
        return [t for t in trades if t.token == inst.token]
    return [t for t in trades if t.token == inst.token or t.underlying == inst.underlying]


def price_section(ctx: Ctx, instruments: Sequence[InstrumentInfo]) -> None:
    def render() -> None:
        if not instruments:
            st.caption("no candles in this run yet")
            return
        by_token = {i.token: i for i in instruments}
        left, mid, right = st.columns([3, 1, 2])
        token = left.selectbox(
            "Instrument",
            list(by_token),
            format_func=lambda t: by_token[t].label,
            key=f"token-{ctx.run_id}",
        )
        inst = by_token[token]
        intervals = _intervals(ctx, token)
        interval = mid.selectbox("Candles", intervals, key=f"interval-{token}")
        overlays = right.multiselect(
            "Overlays",
            ["trades", "position bands", "regime bands"],
            default=["trades", "position bands"],
            key="overlays",
        )
        bars = ctx.fetch(queries.candles, ctx.run_id, token, interval, CANDLE_LIMIT)
        if not bars:
            st.caption(f"no {interval} candles for {inst.label}")
            return
        last = bars[-1]
        st.caption(
            f"{inst.label} · {interval} · {len(bars)} candles · last close "
            f"₹{float(last.close):,.2f} at {tables.ist_text(last.ts, '%H:%M:%S')} IST"
        )
        fig = charts.price_figure(bars)
        if "trades" in overlays or "position bands" in overlays:
            trades = _chart_trades(ctx.fetch(queries.trades, ctx.run_id), inst)
            if "trades" in overlays:
                charts.add_trade_markers(fig, bars, trades, token)
            if "position bands" in overlays:
                charts.add_position_bands(fig, bars, trades)
        if "regime bands" in overlays:
            regimes = [
                r
                for r in ctx.fetch(queries.regime_history, ctx.run_id)
                if r.underlying == (inst.underlying or inst.symbol)
            ]
            charts.add_regime_bands(fig, regimes, bars[-1].ts + timedelta(minutes=1))
        st.plotly_chart(fig, width="stretch", key="desk-price")

    section("", render)


def _chain_times(ctx: Ctx, index: InstrumentInfo) -> list[datetime]:
    bars = ctx.fetch(queries.candles, ctx.run_id, index.token, "1m", CANDLE_LIMIT)
    return [b.ts + timedelta(minutes=1) for b in bars]


def chain_section(ctx: Ctx, instruments: Sequence[InstrumentInfo]) -> None:
    """Option chain + IV smile + ATM IV; a fragment, so a live run refreshes only this."""

    def render() -> None:
        index = _index(instruments)
        if index is None:
            st.caption("no index candles in this run: no chain")
            return
        underlying = index.underlying or index.symbol
        expiries = ctx.fetch(queries.chain_expiries, ctx.run_id, underlying)
        if not expiries:
            st.caption(f"no option analytics for {underlying} in this run")
            return
        times = _chain_times(ctx, index)
        c1, c2, c3 = st.columns([1, 3, 1])
        expiry = c1.selectbox(
            "Expiry",
            expiries,
            format_func=lambda d: d.strftime("%d %b %Y"),
            key=f"expiry-{ctx.run_id}",
        )
        at = times[-1] if times else datetime.now().astimezone()
        if len(times) > 1 and not ctx.live:
            labels = {tables.ist_text(ts, "%H:%M"): ts for ts in times}
            picked = c2.select_slider(
                "Chain as of (IST)",
                options=list(labels),
                value=list(labels)[-1],
                key=f"chain-at-{ctx.run_id}",
            )
            at = labels[picked]
        width = c3.number_input("Strikes each side", 1, 20, CHAIN_WIDTH, key="chain-width")
        legs = ctx.fetch(queries.option_chain, ctx.run_id, underlying, expiry, at)
        rows = tables.chain_table(legs, int(width))
        atm = tables.atm_strike(legs)
        st.caption(
            f"{underlying} {expiry:%d %b %Y} chain as of {tables.ist_text(at, '%H:%M:%S')} IST"
            + (f" · ATM {float(atm):,.0f}" if atm is not None else "")
            + (
                ""
                if any(leg.bid is not None or leg.oi is not None for leg in legs)
                else " · no bid/ask/OI stored for this run (recorded before quotes were kept)"
            )
        )
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch", key="chain")
        else:
            st.caption("no chain rows at this time")
        smile, atm_col = st.columns(2)
        with smile:
            st.markdown("**IV smile**")
            fig = charts.iv_smile_figure(legs, float(atm) if atm is not None else None)
            st.plotly_chart(fig, width="stretch", key="smile")
        with atm_col:
            points = ctx.fetch(queries.atm_iv_series, ctx.run_id, index.token, underlying, expiry)
            last = points[-1] if points else None
            pct = "" if last is None or last.iv_percentile is None else f"{last.iv_percentile:.0f}"
            st.markdown(
                "**ATM IV**"
                + (
                    f" · now {last.atm_iv * 100:.2f} % (strike {float(last.strike):,.0f})"
                    if last
                    else ""
                )
                + (f" · trailing percentile {pct}" if pct else "")
            )
            st.plotly_chart(charts.atm_iv_figure(points), width="stretch", key="atm-iv")

    section("Option chain", render)


def render_desk(ctx: Ctx, instruments: Sequence[InstrumentInfo]) -> None:
    price_section(ctx, instruments)
    chain = st.fragment(chain_section, run_every=REFRESH_SECONDS if ctx.live else None)
    chain(ctx, instruments)


# --- AI panel -------------------------------------------------------------------------


def render_ai(ctx: Ctx, instruments: Sequence[InstrumentInfo]) -> None:
    def regimes_part() -> None:
        history = ctx.fetch(queries.regime_history, ctx.run_id)
        if not history:
            st.caption("no regime classifications")
            return
        for underlying in sorted({r.underlying for r in history}):
            mine = [r for r in history if r.underlying == underlying]
            latest = mine[-1]
            fallback = tables.is_rules_fallback(latest.model_version)
            cols = st.columns(4)
            cols[0].metric(f"{underlying} regime", latest.regime)
            cols[1].metric("Model", latest.model_version)
            cols[2].metric("Rules fallback", "yes" if fallback else "no")
            cols[3].metric("Since (IST)", tables.ist_text(latest.ts, "%H:%M"))
            if fallback:
                st.markdown(
                    "**Rules fallback:** no trained regime model was loaded, so the ADX/ATR "
                    "rules classify (train one with `scalpflow ai train`)."
                )
            index = next(
                (i for i in instruments if i.symbol == underlying and i.kind not in ("CE", "PE")),
                None,
            )
            if index is not None:
                bars = ctx.fetch(queries.candles, ctx.run_id, index.token, "1m", CANDLE_LIMIT)
                if bars:
                    fig = charts.price_figure(bars, panels=False)
                    charts.add_regime_bands(fig, mine, bars[-1].ts + timedelta(minutes=1))
                    st.plotly_chart(fig, width="stretch", key=f"regime-{underlying}")
            share = Counter(r.regime for r in mine)
            left, right = st.columns(2)
            with left:
                if latest.probabilities:
                    st.markdown(
                        f"**Class probabilities** (minute to "
                        f"{tables.ist_text(latest.ts, '%H:%M')} IST)"
                    )
                    st.dataframe(
                        tables.probability_rows(latest.probabilities, latest.regime),
                        hide_index=True,
                        key=f"probabilities-{underlying}",
                    )
                else:
                    st.markdown(
                        "**Regime mix of the session** (the rules give a class, no probabilities)"
                    )
                    st.dataframe(
                        [
                            {"regime": k, "minutes": n, "share %": round(100 * n / len(mine), 1)}
                            for k, n in share.most_common()
                        ],
                        hide_index=True,
                    )
            with right:
                st.markdown("**Latest features**")
                st.dataframe(
                    [
                        {"feature": k, "value": round(float(v), 4)}
                        for k, v in sorted(latest.features.items())
                    ],
                    hide_index=True,
                )
            series = tables.probability_series(mine)
            if series:
                st.markdown("**Class probabilities over time**")
                st.plotly_chart(
                    charts.lines_over_time(series, "probability", step=False),
                    width="stretch",
                    key=f"probability-lines-{underlying}",
                )

    def adaptive_part() -> None:
        states = ctx.fetch(queries.ai_state_history, ctx.run_id)
        if not states:
            st.caption("no adaptive state")
            return
        plots = (
            ("Size multiplier", "size_multiplier", "× size", "multipliers"),
            ("Capital weight", "weight", "weight", "weights"),
        )
        for column, (title, series, label, key) in zip(st.columns(2), plots, strict=True):
            with column:
                st.markdown(f"**{title} over time**")
                st.plotly_chart(
                    charts.lines_over_time(tables.state_series(states, series), label),
                    width="stretch",
                    key=key,
                )
        latest: dict[tuple[str, str], queries.AiStateRow] = {}
        for s in states:
            latest[(s.account, s.strategy)] = s
        st.markdown("**Per strategy now**")
        st.dataframe(
            [
                {
                    "account": a,
                    "strategy": k,
                    "size ×": s.state.get("size_multiplier"),
                    "weight": s.state.get("weight"),
                    "stop (ATR ×)": s.state.get("stop_atr_mult"),
                    "trades": s.state.get("trades"),
                    "win rate %": round(100 * float(s.state.get("win_rate") or 0), 1),
                    "max drawdown ₹": round(float(s.state.get("max_drawdown") or 0) / 100, 2),
                    "updated (IST)": tables.ist_text(s.ts),
                }
                for (a, k), s in sorted(latest.items())
            ],
            hide_index=True,
            width="stretch",
            key="ai-latest",
        )
        events = ctx.fetch(queries.risk_state_events, ctx.run_id)
        now = states[-1].ts if not ctx.live else datetime.now().astimezone()
        clock = max([states[-1].ts, *(e.ts for e in events)])
        rows = tables.cooldowns(states, events, clock if not ctx.live else now)
        st.markdown("**Cooldowns**")
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch", key="cooldowns")
        else:
            st.caption("no cooldowns in this run")

    section("Regime", regimes_part)
    section("Adaptive layer", adaptive_part)
