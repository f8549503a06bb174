"""NSE session calendar in event time: IST offsets, session open/close, expiry days.

Pure functions of a timestamp; nothing here reads the wall clock. Results are memoised (the
last IST day, session bounds per date) because the pipeline calls these for every tick.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
TUESDAY = 1


# Memo of the last IST day ``ist_date`` resolved: its [start, end) in UTC and its date. A replay
# asks about the same day millions of times; IST has a fixed offset, so the bounds are exact.
_ist_day: tuple[datetime, datetime, date] = (
    datetime.min.replace(tzinfo=UTC),
    datetime.min.replace(tzinfo=UTC),
    date.min,
)
# session_open / session_close memos, keyed by plain ``date`` objects only.
_opens: dict[date, datetime] = {}
_closes: dict[date, datetime] = {}
_MEMO_LIMIT = 4096
_DAY = timedelta(days=1)
_MIDNIGHT = time(0)


def ist_date(ts: datetime) -> date:
    """The Indian trading date a UTC-aware timestamp belongs to."""
    global _ist_day
    lo, hi, day = _ist_day
    try:
        if lo <= ts < hi:
            return day
    except TypeError:  # naive or offset-less timestamp: no memo
        return ts.astimezone(IST).date()
    day = ts.astimezone(IST).date()
    lo = datetime.combine(day, _MIDNIGHT, IST).astimezone(UTC)  # UTC: cheap to compare with
    _ist_day = (lo, lo + _DAY, day)
    return day


def _memo(cache: dict[date, datetime], day: date, at: time) -> datetime:
    out = datetime.combine(day, at, IST).astimezone(UTC)
    if type(day) is date:  # a datetime (a date subclass) never equals a date key
        if len(cache) >= _MEMO_LIMIT:
            cache.clear()
        cache[day] = out
    return out


def session_open(day: date) -> datetime:
    """09:15 IST of ``day`` as an aware UTC datetime."""
    return _opens.get(day) or _memo(_opens, day, SESSION_OPEN)


def session_close(day: date) -> datetime:
    """15:30 IST of ``day`` as an aware UTC datetime."""
    return _closes.get(day) or _memo(_closes, day, SESSION_CLOSE)


def in_session(ts: datetime) -> bool:
    day = ist_date(ts)
    return session_open(day) <= ts < session_close(day)


def next_weekly_expiry(day: date, weekday: int = TUESDAY) -> date:
    """The first expiry weekday on or after ``day`` (NIFTY weeklies expire on Tuesday)."""
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def years_to_expiry(ts: datetime, expiry: date) -> float:
    """Time from ``ts`` to 15:30 IST on the expiry day, in years of 365 days (≥ 0)."""
    seconds = (session_close(expiry) - ts).total_seconds()
    return max(seconds, 0.0) / (365.0 * 24 * 3600)
