"""A contract note laid out as a broker's note, as CSV and as a PDF (18 scrips a page).

One layout (``note_table``: a row per scrip, then the totals) feeds the CSV, the PDF and the
monitor's view, so they cannot disagree. Money is printed in rupees with two decimals ("Rs",
which every font has); the net amount of a line is what the client receives (sell value −
buy value − charges > 0) or pays. The PDF is built with matplotlib's object API and
``PdfPages``, as ``dashboards/report.py`` does.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from operators.market.sessions import IST
from operators.trading.cost_ledger import ContractNote, NoteLine

A4_LANDSCAPE = (11.69, 8.27)
LINES_PER_PAGE = 18

COLUMNS: tuple[str, ...] = (
    "Scrip", "Buy qty", "Buy value", "Sell qty", "Sell value", "Orders", "Brokerage",
    "Exch. txn", "IPFT", "SEBI fee", "Stamp duty", "STT", "GST", "Total charges",
    "Net amount", "Dr/Cr",
)  # fmt: skip


def rupees(paise: int) -> str:
    """``1234567`` → ``12,345.67`` (exact: integer paise, no float)."""
    return f"{Decimal(paise) / 100:,.2f}"


def _cells(name: str, line: NoteLine) -> list[str]:
    net = line.net
    return [
        name, f"{line.buy_qty:,}", rupees(line.buy_value), f"{line.sell_qty:,}",
        rupees(line.sell_value), str(line.orders), rupees(line.brokerage),
        rupees(line.exchange), rupees(line.ipft), rupees(line.sebi), rupees(line.stamp),
        rupees(line.stt), rupees(line.gst), rupees(line.charges), rupees(abs(net)),
        "Cr" if net >= 0 else "Dr",
    ]  # fmt: skip


def total_line(note: ContractNote) -> NoteLine:
    """The note's totals as one line (sums of every column)."""
    ls = note.lines
    return NoteLine(
        token="TOTAL",
        buy_qty=sum(x.buy_qty for x in ls), buy_value=sum(x.buy_value for x in ls),
        sell_qty=sum(x.sell_qty for x in ls), sell_value=sum(x.sell_value for x in ls),
        orders=sum(x.orders for x in ls), brokerage=sum(x.brokerage for x in ls),
        exchange=sum(x.exchange for x in ls), ipft=sum(x.ipft for x in ls),
        sebi=sum(x.sebi for x in ls), stamp=sum(x.stamp for x in ls), stt=sum(x.stt for x in ls),
        gst=sum(x.gst for x in ls), charges=note.charges, estimated=note.estimated,
    )  # fmt: skip


def note_table(note: ContractNote) -> tuple[list[list[str]], list[str]]:
    """(one row of cells per scrip, the totals row), columns as ``COLUMNS``."""
    lines = sorted(note.lines, key=lambda x: (x.symbol or x.token, x.token))
    rows = [_cells(line.symbol or line.token, line) for line in lines]
    return rows, _cells("Total", total_line(note))


def header_lines(note: ContractNote, *, provisional: bool) -> list[str]:
    status = (
        "PROVISIONAL: the session has not closed; charges so far, from the day's fills"
        if provisional
        else f"issued at session close {note.ts_event.astimezone(IST):%Y-%m-%d %H:%M} IST"
    )
    return [
        f"Contract note - account {note.account} - trade date {note.trade_date:%d %b %Y}",
        f"run {note.run_id or '-'}; segment NSE F&O (options, premium turnover); {status}",
    ]


def footer_lines(note: ContractNote) -> list[str]:
    net = note.net
    side = "receivable by the client" if net >= 0 else "payable by the client"
    return [
        f"Net amount {side}: Rs {rupees(abs(net))}",
        f"Charges booked per fill during the day: Rs {rupees(note.estimated)}; "
        f"true-up at session close: Rs {rupees(note.true_up)}",
        "Amounts in Rs. Brokerage Rs 20 per executed order; STT summed per scrip per day and "
        "rounded to the rupee;",
        "exchange transaction charge, IPFT, SEBI fee and stamp duty on the scrip's day totals and "
        "GST 18% of brokerage + exchange + SEBI + IPFT, each rounded to the paisa.",
    ]


def write_csv(path: str | Path, note: ContractNote, *, provisional: bool = False) -> Path:
    """The note as CSV: two header lines, the column row, one row per scrip, totals, footer."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, total = note_table(note)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for text in header_lines(note, provisional=provisional):
            w.writerow([text])
        w.writerow(COLUMNS)
        w.writerows(rows)
        w.writerow(total)
        for text in footer_lines(note):
            w.writerow([text])
    return out


ROW_HEIGHT = 0.034  # figure fraction per table row (header, scrips, totals)
TABLE_TOP = 0.885


def _page(
    note: ContractNote,
    rows: Sequence[list[str]],
    total: list[str] | None,
    page: tuple[int, int],
    *,
    provisional: bool,
) -> Figure:
    fig = Figure(figsize=A4_LANDSCAPE)
    title, sub = header_lines(note, provisional=provisional)
    fig.text(0.03, 0.95, title, fontsize=14, weight="bold")
    fig.text(0.03, 0.915, sub, fontsize=9, color="#b00020" if provisional else "#333333")
    fig.text(0.97, 0.95, f"page {page[0]} of {page[1]}", fontsize=9, ha="right")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    cells = [*rows, total] if total is not None else list(rows)
    height = ROW_HEIGHT * (len(cells) + 1)
    bottom = TABLE_TOP - height
    table = ax.table(
        cellText=cells or [[""] * len(COLUMNS)],
        colLabels=list(COLUMNS),
        cellLoc="right",
        bbox=Bbox.from_bounds(0.03, bottom, 0.94, height),  # rows of a fixed height from the top
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    table.auto_set_column_width(list(range(len(COLUMNS))))
    for (row, col), cell in table.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold", ha="center")
            cell.set_facecolor("#e8eef7")
        elif col == 0:
            cell.set_text_props(ha="left")
        if total is not None and row == len(cells):
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#f3f3f3")
    if total is not None:
        y = bottom - 0.05
        for i, text in enumerate(footer_lines(note)):
            fig.text(
                0.03, y, text, fontsize=10 if i == 0 else 8.5, weight="bold" if i == 0 else None
            )
            y -= 0.03
    else:
        fig.text(0.03, bottom - 0.04, "continued on the next page", fontsize=8, style="italic")
    return fig


def build_pages(note: ContractNote, *, provisional: bool = False) -> list[Figure]:
    """The note's pages (pure; ``write_pdf`` saves them); totals and footer on the last."""
    rows, total = note_table(note)
    chunks = [rows[i : i + LINES_PER_PAGE] for i in range(0, len(rows), LINES_PER_PAGE)] or [[]]
    n = len(chunks)
    return [
        _page(note, chunk, total if i == n else None, (i, n), provisional=provisional)
        for i, chunk in enumerate(chunks, start=1)
    ]


def write_pdf(path: str | Path, note: ContractNote, *, provisional: bool = False) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "Title": f"scalpflow contract note {note.account} {note.trade_date}",
        "Subject": f"{len(note.lines)} scrips",
    }
    with PdfPages(out, metadata=info) as pdf:
        for fig in build_pages(note, provisional=provisional):
            pdf.savefig(fig)
    return out
