"""Plotly figure builders for the monitor: pure functions from query rows to figures.

Times are shown in IST (the exchange's clock) although the database stores UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboards.queries import CandleBar
from operators.sessions import IST

EMA9_COLOUR = "#1f77b4"
EMA21_COLOUR = "#ff7f0e"
VWAP_COLOUR = "#9467bd"


def _ist(ts: datetime) -> datetime:
    return ts.astimezone(IST)


def _series(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def candle_figure(bars: Sequence[CandleBar], title: str = "") -> go.Figure:
    """Candlesticks with EMA 9 / EMA 21 / VWAP overlays and a volume panel underneath.

    VWAP comes from the indicator snapshot when present, else from the candle's own VWAP.
    """
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.03
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
    fig.add_trace(
        go.Bar(x=x, y=[b.volume for b in bars], name="volume", marker_color="#7f7f7f"),
        row=2,
        col=1,
    )
    fig.update_layout(
        title=title or None,
        height=560,
        margin={"l": 40, "r": 20, "t": 40 if title else 10, "b": 20},
        xaxis_rangeslider_visible=False,
        legend={"orientation": "h", "y": 1.02, "x": 0},
        yaxis_title="price (₹)",
        yaxis_tickformat=",.2f",
        yaxis2_title="volume",
    )
    return fig


def equity_figure(points: Sequence[tuple[datetime, float]], title: str = "") -> go.Figure:
    """Cumulative net P&L (₹) after each closed trade, starting from zero."""
    x = [_ist(ts) for ts, _ in points]
    y = [v for _, v in points]
    if points:
        x = [x[0], *x]
        y = [0.0, *y]
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers", line_shape="hv", name="net P&L"))
    fig.update_layout(
        title=title or None,
        height=300,
        margin={"l": 40, "r": 20, "t": 40 if title else 10, "b": 20},
        yaxis_title="net P&L (₹)",
        yaxis_tickformat=",.2f",
    )
    return fig
