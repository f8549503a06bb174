"""Fault injection on the merged tick stream: what the feed's wire looks like on a bad day.

Takes the clean, time-ordered columns and returns the wire: rows possibly removed (gaps),
altered (blow-outs, crossed, off-grid, negative), delayed (late, out-of-order), repeated
(duplicates), each tagged with its fault code so tests know the truth. Encoding-level faults
(unknown token, invalid JSON, missing field) are only tagged here and applied when encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from connectors.feeds.synthetic.chain import TICK, Columns
from connectors.feeds.synthetic.config import FAULT_KINDS, GAP_KIND, PER_TICK_KINDS, FaultConfig

I8 = npt.NDArray[np.int8]
I64 = npt.NDArray[np.int64]

NO_FAULT = 0


def code_of(kind: str) -> int:
    """Fault code on the wire (0 = clean); index into ``FAULT_KINDS`` plus one."""
    return FAULT_KINDS.index(kind) + 1


def kind_of(code: int) -> str | None:
    return None if code == NO_FAULT else FAULT_KINDS[code - 1]


@dataclass(frozen=True)
class FaultWindow:
    """A gap or spread blow-out window in microseconds from the session start."""

    kind: str
    start_us: int
    end_us: int
    ticks: int


@dataclass
class Wire:
    """The emitted stream: columns in emission order, receive times and fault codes."""

    cols: Columns
    recv_us: I64
    code: I8
    windows: list[FaultWindow]


def _windows(
    rng: np.random.Generator, count: int, seconds: tuple[float, float], span_us: int
) -> list[tuple[int, int]]:
    out = []
    for _ in range(count):
        length = min(int(rng.uniform(*seconds) * 1e6), span_us // 4)
        start = int(rng.integers(0, max(span_us - length, 1)))
        out.append((start, start + length))
    return out


def build_wire(
    cols: Columns,
    recv_us: I64,
    faults: FaultConfig,
    rng: np.random.Generator,
    span_us: int,
) -> Wire:
    """Apply ``faults`` to time-ordered ``cols``; with no faults the wire equals the input."""
    code = np.zeros(len(cols), dtype=np.int8)
    if not faults.enabled:
        return Wire(cols=cols, recv_us=recv_us, code=code, windows=[])
    windows: list[FaultWindow] = []

    keep = np.ones(len(cols), dtype=bool)
    for start, end in _windows(rng, faults.feed_gaps, faults.gap_seconds, span_us):
        hit = (cols.t_us >= start) & (cols.t_us < end)
        windows.append(FaultWindow(GAP_KIND, start, end, int(np.count_nonzero(hit & keep))))
        keep &= ~hit
    cols, recv_us, code = cols.take(keep), recv_us[keep], code[keep]
    n = len(cols)
    is_option = cols.bid > 0

    bid, ask, ltp = cols.bid.copy(), cols.ask.copy(), cols.ltp.copy()
    for start, end in _windows(rng, faults.spread_blowouts, faults.blowout_seconds, span_us):
        hit = (cols.t_us >= start) & (cols.t_us < end) & is_option
        mid = (bid[hit] + ask[hit]) / 2.0
        half = (ask[hit] - bid[hit]) * faults.blowout_factor / 2.0
        bid[hit] = np.maximum(np.floor((mid - half) / TICK) * TICK, TICK).astype(np.int32)
        ask[hit] = np.ceil((mid + half) / TICK).astype(np.int32) * TICK
        code[hit] = code_of("spread_blowout")
        windows.append(FaultWindow("spread_blowout", start, end, int(np.count_nonzero(hit))))

    rates = np.array([getattr(faults, f"{kind}_rate") for kind in PER_TICK_KINDS])
    pick = np.searchsorted(np.cumsum(rates), rng.random(n), side="right")
    chosen = pick < len(PER_TICK_KINDS)
    codes = np.array([code_of(kind) for kind in PER_TICK_KINDS], dtype=np.int8)
    code[chosen] = codes[pick[chosen]]
    code[(code == code_of("crossed")) & ~is_option] = NO_FAULT  # the index has no book

    hit = code == code_of("crossed")
    bid[hit], ask[hit] = ask[hit] + TICK * rng.integers(1, 4, np.count_nonzero(hit)), bid[hit]
    hit = code == code_of("off_grid")
    offset = rng.integers(1, TICK, n).astype(np.int32)
    bid = np.where(hit & is_option, bid + offset, bid).astype(np.int32)
    ltp = np.where(hit & ~is_option, ltp + offset, ltp).astype(np.int32)
    hit = code == code_of("negative_price")
    ltp[hit] = -np.maximum(ltp[hit], TICK)
    cols.bid, cols.ask, cols.ltp = bid, ask, ltp

    delay = np.zeros(n, dtype=np.int64)
    for kind in ("late", "out_of_order"):
        hit = code == code_of(kind)
        lo, hi = getattr(faults, f"{kind}_delay_seconds")
        delay[hit] = (rng.uniform(lo, hi, np.count_nonzero(hit)) * 1e6).astype(np.int64)
    order = np.argsort(cols.t_us + delay, kind="stable")
    cols, recv_us, code = cols.take(order), (recv_us + delay)[order], code[order]

    dup = code == code_of("duplicate")
    rows = np.repeat(np.arange(len(cols)), 1 + dup.astype(np.int64))
    first_copy = np.concatenate((rows[:-1] == rows[1:], [False]))
    code = code[rows]
    code[first_copy] = NO_FAULT
    return Wire(cols=cols.take(rows), recv_us=recv_us[rows], code=code, windows=windows)
