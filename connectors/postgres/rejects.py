"""Rows the database refuses for a data reason become dead letters; the epoch goes on.

A batch that PostgreSQL refuses because of what is *in* it (``numeric field overflow``, a
violated constraint, a NUL byte in text, an integer too big for ``bigint``) would fail again on
every retry and, replayed from Kafka after a restart, on every restart: one bad row would
stop the run for good. So ``write`` tells data errors from connection errors: a data error
splits the batch in halves, each written in its own transaction, down to the single events
the database refuses; those go to ``dead_letters`` (``source_topic`` ``sink:<tables>``, the
event as JSON in ``raw``, the table and the server's error in ``reason``) and the rest is
committed. Connection-level errors (``psycopg.OperationalError``) propagate untouched to the
sink's retry loop. Every write is an idempotent upsert, so rewriting halves after a partial
commit, or the whole batch after a reconnect, changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg

from connectors import metrics
from operators.events import DeadLetter

if TYPE_CHECKING:
    from connectors.postgres.sink import Staged

log = logging.getLogger(__name__)

#: What the database (or the driver, converting a value) refuses because of the data itself.
#: ``ValueError``/``OverflowError`` are the driver's conversions (an int beyond int8 in COPY,
#: a lone surrogate in text). A ``TypeError`` (an event type with no table) is a programming
#: error, not data: it stops the sink with a clear ``DatabaseError`` as before.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.DataError,
    psycopg.IntegrityError,
    OverflowError,
    ValueError,
)
MAX_ERROR = 300  # characters of the server's message kept in the reason


def is_data_error(exc: BaseException) -> bool:
    """True for an error retrying cannot fix (the row's content), False for the connection."""
    return isinstance(exc, DATA_ERRORS) and not isinstance(exc, psycopg.OperationalError)


def try_stage(run_id: str, events: Sequence[Any]) -> Staged | None:
    """``stage_events`` or None when some event cannot be turned into rows (``write`` then
    finds it one by one)."""
    from connectors.postgres.sink import stage_events

    try:
        return stage_events(run_id, events)
    except DATA_ERRORS:
        return None


def write(
    conn: psycopg.Connection[Any], run_id: str, events: Sequence[Any], staged: Staged | None
) -> int:
    """Write ``events`` (already ``staged`` unless None); the ones the database refuses for a
    data reason become dead letters. Returns table rows written (dead letters included)."""
    from connectors.postgres.sink import write_staged

    if staged is not None:
        try:
            return write_staged(conn, run_id, staged)
        except DATA_ERRORS as exc:
            if not is_data_error(exc):
                raise
            log.warning(
                "PostgreSQL refused a batch of %d events (%s); isolating the bad rows",
                len(events),
                _describe(exc),
            )
    return _isolate(conn, run_id, list(events))


def _isolate(conn: psycopg.Connection[Any], run_id: str, events: list[Any]) -> int:
    from connectors.postgres.sink import stage_events, write_staged

    if not events:
        return 0
    try:
        return write_staged(conn, run_id, stage_events(run_id, events))
    except DATA_ERRORS as exc:
        if not is_data_error(exc):
            raise
        if len(events) == 1:
            return _dead_letter(conn, run_id, events[0], exc)
    middle = len(events) // 2
    return _isolate(conn, run_id, events[:middle]) + _isolate(conn, run_id, events[middle:])


def _describe(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    text = " ".join(str(exc).split())[:MAX_ERROR]
    return f"{state} {text}" if state else f"{type(exc).__name__}: {text}"


def _tables(run_id: str, event: Any, exc: BaseException) -> str:
    """The table(s) the refused event writes (the server names one for a constraint)."""
    diag = getattr(exc, "diag", None)
    named = getattr(diag, "table_name", None) if diag is not None else None
    if named:
        return str(named)
    from connectors.routes import route

    r = route(type(event))
    if r is not None and r.rows is not None:
        try:
            tables = (table.partition(".")[0] for table, _ in r.rows(run_id, event))
            return ",".join(dict.fromkeys(tables))
        except (TypeError, ValueError, OverflowError, AttributeError):
            pass
    return type(event).__name__


def _raw(event: Any) -> bytes:
    try:
        return msgspec.json.encode(event)
    except (TypeError, ValueError, OverflowError):
        return repr(event).encode("utf-8", "backslashreplace")


def reject_letter(run_id: str, event: Any, exc: BaseException) -> DeadLetter:
    """The dead letter of one refused event; its natural key is a hash of the event, so the
    same refusal on a rerun upserts the same row."""
    raw = _raw(event)
    tables = _tables(run_id, event, exc)
    digest = int.from_bytes(hashlib.sha256(raw).digest()[:8], "big", signed=True)
    reason = f"SINK_REJECTED: {tables}: {_describe(exc)}"
    reason = reason.encode("ascii", "backslashreplace").decode().replace("\x00", "\\x00")
    return DeadLetter(
        reason=reason,
        raw=raw,
        key=None,
        source_topic=f"sink:{tables}",
        source_partition=-1,
        source_offset=digest,
    )


def _dead_letter(conn: psycopg.Connection[Any], run_id: str, event: Any, exc: BaseException) -> int:
    from connectors.postgres.sink import stage_events, write_staged

    letter = reject_letter(run_id, event, exc)
    log.error("PostgreSQL refused a row; kept in dead_letters: %s", letter.reason)
    metrics.SINK_REJECTED.labels(letter.source_topic.removeprefix("sink:")).inc()
    try:
        return write_staged(conn, run_id, stage_events(run_id, [letter]))
    except DATA_ERRORS as again:
        if not is_data_error(again):
            raise
        log.error("dead letter refused too (%s); dropped: %s", _describe(again), letter.reason)
        return 0
