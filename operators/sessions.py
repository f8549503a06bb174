"""NSE session calendar in event time: IST offsets, session open/close, expiry days.

Pure functions of a timestamp; nothing here reads the wall clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
TUESDAY = 1


def ist_date(ts: datetime) -> date:
    """The Indian trading date a UTC-aware timestamp belongs to."""
    return ts.astimezone(IST).date()


def session_open(day: date) -> datetime:
    """09:15 IST of ``day`` as an aware UTC datetime."""
    return datetime.combine(day, SESSION_OPEN, IST).astimezone(UTC)


def session_close(day: date) -> datetime:
    """15:30 IST of ``day`` as an aware UTC datetime."""
    return datetime.combine(day, SESSION_CLOSE, IST).astimezone(UTC)


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
