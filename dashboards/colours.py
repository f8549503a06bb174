"""The colours every view and the PDF report share, so a win, a loss or a regime looks the
same on screen and on paper (matplotlib's and plotly's default palette)."""

from __future__ import annotations

from collections.abc import Mapping

EMA9_COLOUR = "#1f77b4"  # also the price line and entries
EMA21_COLOUR = "#ff7f0e"
VWAP_COLOUR = "#9467bd"
WIN_COLOUR = "#2ca02c"
LOSS_COLOUR = "#d62728"
REGIME_COLOURS: Mapping[str, str] = {
    "TRENDING": "#2ca02c",
    "RANGING": "#1f77b4",
    "HIGH_VOL": "#d62728",
    "LOW_VOL": "#bcbd22",
}
INK = "#1a1a1a"
MUTED = "#666666"
HEADER_BG = "#e8eef5"
