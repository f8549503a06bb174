"""Read stored candles back from PostgreSQL as numpy arrays, for training and research.

Dates are IST trading dates (``start`` and ``end`` inclusive); the candle's ``ts`` is its
window start. Prices come back in rupees (float64; the table stores exact numeric rupees).
Without a ``run_id`` the same minute may exist under several runs (a demo and a live run of
the same day): one row per minute is kept, the one with the smallest ``run_id``, so the
result never double-counts a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import psycopg

from connectors.postgres.db import DatabaseError, connect
from operators.market.sessions import IST, ist_date

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class StoredCandle:
    """The OHLCV of one row of the ``candles`` table in exact rupees: what the Angel One
    backfill writes (``CandleRow``) and what the monitor's chart reads (``CandleBar``)."""

    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass(frozen=True)
class CandleSeries:
    """Candles of one token and interval in time order; ``session`` = IST date ordinal."""

    ts: tuple[datetime, ...]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    session: IntArray

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def sessions(self) -> list[date]:
        """The distinct IST trading dates present, in order."""
        return [date.fromordinal(int(o)) for o in np.unique(self.session)]

    def take(self, mask: npt.NDArray[np.bool_]) -> CandleSeries:
        """The rows where ``mask`` is true (e.g. some sessions only)."""
        idx = np.flatnonzero(mask)
        return CandleSeries(
            ts=tuple(self.ts[i] for i in idx),
            open=self.open[idx],
            high=self.high[idx],
            low=self.low[idx],
            close=self.close[idx],
            volume=self.volume[idx],
            session=self.session[idx],
        )


_QUERY = """
    SELECT DISTINCT ON (ts) ts, open, high, low, close, volume
    FROM candles
    WHERE token = %(token)s AND interval = %(interval)s
      AND ts >= %(start)s AND ts < %(end)s
      AND (%(run_id)s::text IS NULL OR run_id = %(run_id)s::text)
    ORDER BY ts, run_id
"""


def ist_day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 IST, end + 1 day 00:00 IST) as aware datetimes."""
    if end < start:
        msg = f"end date {end} is before start date {start}"
        raise ValueError(msg)
    return (
        datetime.combine(start, time(0), IST),
        datetime.combine(end + timedelta(days=1), time(0), IST),
    )


def load_candles(
    dsn: str,
    token: str,
    interval: str,
    start: date,
    end: date,
    run_id: str | None = None,
) -> CandleSeries:
    """Candles of ``token``/``interval`` whose IST date is in [start, end], sorted by ts.

    Raises ``DatabaseError`` (one clear line) when the server cannot be reached or queried.
    """
    lo, hi = ist_day_bounds(start, end)
    params = {"token": token, "interval": interval, "start": lo, "end": hi, "run_id": run_id}
    with connect(dsn) as conn:
        try:
            rows = conn.execute(_QUERY, params).fetchall()
        except psycopg.Error as exc:
            msg = f"cannot read candles: {str(exc).splitlines()[0]}"
            raise DatabaseError(msg) from exc
    ts = tuple(r[0] for r in rows)

    def col(i: int) -> FloatArray:
        return np.array([float(r[i]) for r in rows], dtype=np.float64)

    return CandleSeries(
        ts=ts,
        open=col(1),
        high=col(2),
        low=col(3),
        close=col(4),
        volume=col(5),
        session=np.array([ist_date(t).toordinal() for t in ts], dtype=np.int64),
    )
