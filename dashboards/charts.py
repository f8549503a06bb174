"""Plotly figure builders for the monitor: pure functions from query rows to figures.

Times are shown in IST (the exchange's clock, labelled on every time axis) although the
database stores UTC. Prices are rupees with two decimals.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards.colours import (
    EMA9_COLOUR,
    EMA21_COLOUR,
    LOSS_COLOUR,
    REGIME_COLOURS,
    VWAP_COLOUR,
    WIN_COLOUR,
)
from dashboards.queries import AtmIvPoint, CandleBar, ChainLeg, RegimeRow, TradeRow
from operators.market.sessions import IST

TIME_AXIS = "time (IST)"


def _ist(ts: datetime) -> datetime:
    """IST wall time without a zone: plotly would otherwise convert back to UTC."""
    return ts.astimezone(IST).replace(tzinfo=None)


def _series(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def regime_segments(
    regimes: Sequence[RegimeRow], end: datetime | None = None
) -> list[tuple[datetime, datetime, str]]:
    """Consecutive classifications of one regime merged into (start, end, regime) spans."""
    out: list[tuple[datetime, datetime, str]] = []
    for i, r in enumerate(regimes):
        stop = regimes[i + 1].ts if i + 1 < len(regimes) else (end or r.ts)
        if out and out[-1][2] == r.regime:
            out[-1] = (out[-1][0], stop, r.regime)
        else:
            out.append((r.ts, stop, r.regime))
    return out


def _marker_y(bars: Sequence[CandleBar], ts: datetime) -> float | None:
    """The close of the bar containing ``ts`` (markers of another instrument's trades)."""
    times = [b.ts for b in bars]
    i = bisect.bisect_right(times, ts) - 1
    return float(bars[i].close) if i >= 0 else None


def _rs(value: object) -> str:
    return f"₹{float(value):,.2f}"  # type: ignore[arg-type]


def add_trade_markers(
    fig: go.Figure,
    bars: Sequence[CandleBar],
    trades: Sequence[TradeRow],
    token: str,
) -> None:
    """Entry (▲/▼) and exit (✕) markers with the reasons on hover.

    Trades of this instrument sit at their fill prices; trades of options on this index sit
    on the index's close at that time (their option prices would be off the scale).
    """
    if not bars or not trades:
        return
    first, last = bars[0].ts, bars[-1].ts
    shown = [t for t in trades if t.exit_ts >= first and t.entry_ts <= last]
    for side in ("entry", "exit"):
        xs, ys, texts, symbols, colours = [], [], [], [], []
        for t in shown:
            ts = t.entry_ts if side == "entry" else t.exit_ts
            own = t.token == token
            price = t.entry_price if side == "entry" else t.exit_price
            y = float(price) if own else _marker_y(bars, ts)
            if y is None:
                continue
            reason = t.entry_reason if side == "entry" else t.exit_reason
            xs.append(_ist(ts))
            ys.append(y)
            texts.append(
                f"<b>{side} · {t.strategy}</b><br>{t.direction} {t.qty} {t.symbol} @ "
                f"{_rs(price)}<br>{_ist(ts):%H:%M:%S} IST<br>why: {reason}"
                + (f"<br>net {_rs(t.net)}" if side == "exit" else "")
            )
            long = t.direction.upper() in ("LONG", "BUY")
            if side == "entry":
                symbols.append("triangle-up" if long else "triangle-down")
                colours.append(EMA9_COLOUR)
            else:
                symbols.append("x")
                colours.append(WIN_COLOUR if t.net > 0 else LOSS_COLOUR)
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers",
                    name="entries" if side == "entry" else "exits",
                    marker={"symbol": symbols, "color": colours, "size": 11, "line_width": 1},
                    hovertext=texts,
                    hoverinfo="text",
                ),
                row=1,
                col=1,
            )


def add_position_bands(
    fig: go.Figure, bars: Sequence[CandleBar], trades: Sequence[TradeRow]
) -> None:
    """A shaded band from entry to exit per position: green when it made money, else red."""
    if not bars:
        return
    _add_bands(
        fig,
        [
            (t.entry_ts, t.exit_ts, WIN_COLOUR if t.net > 0 else LOSS_COLOUR, 0.12)
            for t in trades
            if t.exit_ts >= bars[0].ts and t.entry_ts <= bars[-1].ts
        ],
    )


def _add_bands(fig: go.Figure, spans: Sequence[tuple[datetime, datetime, str, float]]) -> None:
    """Vertical bands over the price panel, added in one layout update (``add_vrect`` per
    band re-validates the layout each time: seconds for a day of regimes)."""
    shapes = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "y domain",
            "x0": _ist(a),
            "x1": _ist(b),
            "y0": 0,
            "y1": 1,
            "fillcolor": colour,
            "opacity": opacity,
            "line": {"width": 0},
            "layer": "below",
        }
        for a, b, colour, opacity in spans
    ]
    fig.update_layout(shapes=[*fig.layout.shapes, *shapes])


def add_regime_bands(
    fig: go.Figure, regimes: Sequence[RegimeRow], end: datetime | None = None
) -> None:
    """Colour bands behind the price, one per regime span, with the regime named on top."""
    _add_bands(
        fig,
        [
            (start, stop, REGIME_COLOURS.get(regime, "#7f7f7f"), 0.10)
            for start, stop, regime in regime_segments(regimes, end)
        ],
    )
    for regime, colour in REGIME_COLOURS.items():  # a legend entry per regime shown
        if any(r.regime == regime for r in regimes):
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="markers",
                    name=f"regime {regime}",
                    marker={"color": colour, "symbol": "square", "size": 12, "opacity": 0.4},
                ),
                row=1,
                col=1,
            )


def price_figure(
    bars: Sequence[CandleBar],
    title: str = "",
    *,
    panels: bool = True,
) -> go.Figure:
    """Candlesticks with EMA 9 / EMA 21 / VWAP overlays, and RSI(14), ATR(14) and volume
    panels underneath (``panels=False``: price only).

    VWAP comes from the indicator snapshot when present, else from the candle's own VWAP.
    """
    rows = 4 if panels else 1
    heights = [0.55, 0.15, 0.15, 0.15] if panels else [1.0]
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, row_heights=heights, vertical_spacing=0.025
    )
    x = [_ist(b.ts) for b in bars]
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=[float(b.open) for b in bars],
            high=[float(b.high) for b in bars],
            low=[float(b.low) for b in bars],
            close=[float(b.close) for b in bars],
            name="price",
        ),
        row=1,
        col=1,
    )
    overlays = (
        ("EMA 9", [b.ema9 for b in bars], EMA9_COLOUR, "solid"),
        ("EMA 21", [b.ema21 for b in bars], EMA21_COLOUR, "solid"),
        (
            "VWAP",
            [b.ind_vwap if b.ind_vwap is not None else b.vwap for b in bars],
            VWAP_COLOUR,
            "dot",
        ),
    )
    for name, values, colour, dash in overlays:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=_series(values),
                name=name,
                mode="lines",
                line={"color": colour, "width": 1.5, "dash": dash},
                connectgaps=False,
            ),
            row=1,
            col=1,
        )
    layout: dict[str, object] = {"yaxis_title": "price (₹)", "yaxis_tickformat": ",.2f"}
    if panels:
        fig.add_trace(
            go.Scatter(x=x, y=_series([b.rsi14 for b in bars]), name="RSI 14", mode="lines",
                       line={"color": "#8c564b", "width": 1.2}),
            row=2, col=1,
        )  # fmt: skip
        for level in (30, 70):
            fig.add_hline(y=level, line_dash="dot", line_color="#999999", row=2, col=1)
        fig.add_trace(
            go.Scatter(x=x, y=_series([b.atr14 for b in bars]), name="ATR 14 (₹)", mode="lines",
                       line={"color": "#17becf", "width": 1.2}),
            row=3, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Bar(x=x, y=[b.volume for b in bars], name="volume", marker_color="#7f7f7f"),
            row=4,
            col=1,
        )
        layout |= {
            "yaxis2_title": "RSI",
            "yaxis2_range": [0, 100],
            "yaxis3_title": "ATR ₹",
            "yaxis4_title": "volume",
            "xaxis4_title": TIME_AXIS,
        }
    else:
        layout["xaxis_title"] = TIME_AXIS
    fig.update_layout(
        title=title or None,
        height=720 if panels else 420,
        margin={"l": 50, "r": 20, "t": 40 if title else 10, "b": 30},
        xaxis_rangeslider_visible=False,
        legend={"orientation": "h", "y": 1.04, "x": 0},
        hovermode="closest",
        **layout,
    )
    return fig


def candle_figure(bars: Sequence[CandleBar], title: str = "") -> go.Figure:
    """The price chart with its indicator panels (kept for callers of the old name)."""
    return price_figure(bars, title)


def equity_figure(points: Sequence[tuple[datetime, float]], title: str = "") -> go.Figure:
    """Cumulative net P&L (₹) after each closed trade, starting from zero."""
    return equity_curves({"all strategies": points}, title)


def equity_curves(
    curves: Mapping[str, Sequence[tuple[datetime, float]]], title: str = ""
) -> go.Figure:
    """One cumulative net P&L step line per name (e.g. per strategy), each from zero."""
    fig = go.Figure()
    for name, points in curves.items():
        x = [_ist(ts) for ts, _ in points]
        y = [v for _, v in points]
        if points:
            x, y = [x[0], *x], [0.0, *y]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", line_shape="hv", name=name))
    fig.update_layout(
        title=title or None,
        height=320,
        margin={"l": 50, "r": 20, "t": 40 if title else 10, "b": 30},
        yaxis_title="net P&L (₹)",
        yaxis_tickformat=",.2f",
        xaxis_title="exit time (IST)",
        legend={"orientation": "h", "y": 1.08, "x": 0},
    )
    return fig


def drawdown_figure(points: Sequence[tuple[datetime, float]], falls: Sequence[float]) -> go.Figure:
    """Drawdown (₹ below the running peak) after each trade, drawn below zero."""
    fig = go.Figure(
        go.Scatter(
            x=[_ist(ts) for ts, _ in points],
            y=[-d for d in falls],
            fill="tozeroy",
            line_shape="hv",
            line_color=LOSS_COLOUR,
            name="drawdown",
        )
    )
    fig.update_layout(
        height=220,
        margin={"l": 50, "r": 20, "t": 10, "b": 30},
        yaxis_title="drawdown (₹)",
        yaxis_tickformat=",.2f",
        xaxis_title="exit time (IST)",
    )
    return fig


def iv_smile_figure(legs: Sequence[ChainLeg], atm: float | None = None) -> go.Figure:
    """IV (%) against strike, one line for calls and one for puts; the ATM strike marked."""
    fig = go.Figure()
    for kind, colour in (("CE", WIN_COLOUR), ("PE", LOSS_COLOUR)):
        pts = [(float(leg.strike), leg.iv * 100) for leg in legs if leg.kind == kind and leg.iv]
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                mode="lines+markers",
                name=f"{kind} IV",
                line_color=colour,
            )
        )
    if atm is not None:
        fig.add_vline(x=atm, line_dash="dot", line_color="#555555", annotation_text="ATM")
    fig.update_layout(
        height=320,
        margin={"l": 50, "r": 20, "t": 30, "b": 30},
        xaxis_title="strike (₹)",
        yaxis_title="implied volatility (%)",
        legend={"orientation": "h", "y": 1.1, "x": 0},
    )
    return fig


def atm_iv_figure(points: Sequence[AtmIvPoint]) -> go.Figure:
    """ATM IV (%) through the session with the chain's trailing IV percentile (right axis)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [_ist(p.minute) for p in points]
    fig.add_trace(
        go.Scatter(x=x, y=[p.atm_iv * 100 for p in points], name="ATM IV (%)", mode="lines"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[p.iv_percentile for p in points],
            name="IV percentile (trailing)",
            mode="lines",
            line={"dash": "dot", "color": "#ff7f0e"},
        ),
        secondary_y=True,
    )
    fig.update_layout(
        height=320,
        margin={"l": 50, "r": 50, "t": 30, "b": 30},
        xaxis_title=TIME_AXIS,
        legend={"orientation": "h", "y": 1.1, "x": 0},
    )
    fig.update_yaxes(title_text="ATM IV (%)", secondary_y=False)
    fig.update_yaxes(title_text="percentile (0-100)", range=[0, 100], secondary_y=True)
    return fig


def lines_over_time(
    series: Mapping[str, Sequence[tuple[datetime, float]]],
    y_title: str,
    height: int = 280,
    *,
    step: bool = True,
) -> go.Figure:
    """Step lines of values that change at events (multipliers, weights); ``step`` off:
    plain lines of values sampled every minute (class probabilities)."""
    fig = go.Figure()
    for name, pts in series.items():
        fig.add_trace(
            go.Scatter(
                x=[_ist(ts) for ts, _ in pts],
                y=[v for _, v in pts],
                mode="lines+markers" if step else "lines",
                line_shape="hv" if step else "linear",
                name=name,
            )
        )
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 20, "t": 10, "b": 30},
        xaxis_title=TIME_AXIS,
        yaxis_title=y_title,
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )
    return fig
