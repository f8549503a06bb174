"""The monitor's data access: one read-only pool per DSN and query results cached by run.

A page asks ``ctx.fetch(queries.fn, *args)``. Results are cached by (query, run, args,
epoch): a finished run's epoch is 0, so its pages are computed once and then served from the
cache; a live run's epoch advances every ``REFRESH_SECONDS``, so its figures stay fresh. A
database error in one section becomes a one-line warning there, not a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import streamlit as st
from psycopg_pool import ConnectionPool

from dashboards import queries

REFRESH_SECONDS = 2.0
CACHE_TTL_S = 6 * 3600
T = TypeVar("T")


def _close_pool(pool: ConnectionPool) -> None:
    pool.close()


@st.cache_resource(show_spinner=False, on_release=_close_pool)
def get_pool(dsn: str) -> ConnectionPool:
    """One read-only pool per DSN for the whole server (a failed open is not cached)."""
    return queries.open_pool(dsn)


@st.cache_data(ttl=CACHE_TTL_S, max_entries=1024, show_spinner=False)
def _cached_query(dsn: str, name: str, epoch: int, *args: Any) -> Any:
    del epoch  # part of the cache key only
    with get_pool(dsn).connection() as conn:
        return getattr(queries, name)(conn, *args)


def live_epoch(live: bool, now: float | None = None) -> int:
    """The cache epoch: 0 for a finished run, else the current refresh period's number."""
    if not live:
        return 0
    return int((time.time() if now is None else now) // REFRESH_SECONDS)


def fetch(dsn: str, fn: Callable[..., T], *args: Any, live: bool = True) -> T:
    """``queries.<fn>(conn, *args)`` through the pool and the cache."""
    result: T = _cached_query(dsn, fn.__name__, live_epoch(live), *args)
    return result


@dataclass(frozen=True)
class Ctx:
    """What every page gets: where to read, which run, and whether it is still live."""

    dsn: str
    run: queries.RunInfo
    live: bool

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def fetch(self, fn: Callable[..., T], *args: Any) -> T:
        return fetch(self.dsn, fn, *args, live=self.live)

    def connection(self) -> Any:
        return get_pool(self.dsn).connection()


def section(title: str, render: Callable[[], None], *, level: str = "subheader") -> None:
    """A titled section whose database errors become a warning instead of a traceback."""
    if title:
        getattr(st, level)(title)
    try:
        render()
    except (psycopg.Error, queries.MonitorDatabaseError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        st.warning(f"{title or 'Section'} unavailable: {first}")
