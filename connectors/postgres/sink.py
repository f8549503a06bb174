"""Idempotent PostgreSQL sink for Bytewax: typed events in, batched upserts out.

Every table has a natural key (DESIGN invariant 6), so a window or an epoch emitted twice by
Bytewax's at-least-once output leaves the tables unchanged. The flow thread only hands batches
to a writer thread (bounded queue); the writer COPYs bars and option analytics into staging
tables and upserts them with one statement per table, the small tables with ``executemany``,
all in one transaction per *epoch*: chunks go into an open transaction as they arrive and
every epoch end (``snapshot``) and ``close`` commit it and wait, so a reader never sees part
of an epoch. A broken connection (PostgreSQL down or restarting) is retried with capped
backoff for as long as the ``RetryPolicy`` budget allows (minutes by default) while the flow
waits (backpressure); the epoch is then written again on a new connection. Past the budget
the run stops with a clear ``DatabaseError``: losing rows silently is not an option.

Why one module (~570 lines): staging, the writer thread, the epoch transaction and the retry
loop share one connection's lifecycle; split, the rule "commit only at epoch ends" would
span files. The rows themselves are ``connectors.postgres.rows``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from connectors.postgres import rejects as pg_rejects
from connectors.postgres.db import DatabaseError, connect
from connectors.postgres.journal import journal_rows
from connectors.postgres.rows import SQL, Row
from connectors.routes import route
from operators.events import Bar, OptionAnalytics

log = logging.getLogger(__name__)


# --- bulk path: COPY into per-connection staging tables, then one upsert per table ----------
#
# The high-volume events (bars: candles + indicators; option analytics) are not sent row by
# row. Each flush COPYs them (binary) into temporary staging tables that live as long as the
# connection and empty themselves at commit, then moves them with one
# ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` per table. Paise become rupees and the
# analytics time is truncated to the second on the server, with exactly the values the
# row functions above produce. A natural key that appears twice in one flush keeps its last
# row (``DISTINCT ON ... ORDER BY seq DESC``), as sequential upserts would.

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS scalpflow_stage_bars (
    seq bigint, token text, interval text, ts timestamptz, open bigint, high bigint,
    low bigint, close bigint, volume bigint, vwap double precision, ticks integer,
    indicators text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS scalpflow_stage_analytics (
    seq bigint, token text, ts timestamptz, underlying text, price double precision,
    forward double precision, iv double precision, delta double precision,
    gamma double precision, theta double precision, vega double precision,
    iv_percentile double precision
) ON COMMIT DELETE ROWS"""

_COPY_BARS = "COPY pg_temp.scalpflow_stage_bars FROM STDIN (FORMAT BINARY)"
_BAR_TYPES = [
    "int8", "text", "text", "timestamptz", "int8", "int8", "int8", "int8", "int8", "float8",
    "int4", "text",
]  # fmt: skip
_COPY_ANALYTICS = "COPY pg_temp.scalpflow_stage_analytics FROM STDIN (FORMAT BINARY)"
_ANALYTICS_TYPES = ["int8", "text", "timestamptz", "text", *["float8"] * 8]

_LAST_BAR = "ORDER BY token, interval, ts, seq DESC"
BULK_UPSERTS: dict[str, str] = {
    "candles": f"""
        INSERT INTO candles (run_id, token, interval, ts, open, high, low, close, volume, vwap,
                             ticks)
        SELECT DISTINCT ON (token, interval, ts) %(run_id)s, token, interval, ts,
               open::numeric / 100, high::numeric / 100, low::numeric / 100,
               close::numeric / 100, volume, vwap / 100, ticks
        FROM pg_temp.scalpflow_stage_bars {_LAST_BAR}
        ON CONFLICT (run_id, token, interval, ts) DO UPDATE SET
          open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
          volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, ticks = EXCLUDED.ticks""",
    "indicators": f"""
        INSERT INTO indicators (run_id, token, interval, ts, values)
        SELECT DISTINCT ON (token, interval, ts) %(run_id)s, token, interval, ts,
               indicators::jsonb
        FROM pg_temp.scalpflow_stage_bars {_LAST_BAR}
        ON CONFLICT (run_id, token, interval, ts) DO UPDATE SET values = EXCLUDED.values""",
    "option_analytics": """
        INSERT INTO option_analytics (run_id, token, ts, underlying, price, forward, iv, delta,
                                      gamma, theta, vega, iv_percentile)
        SELECT DISTINCT ON (token, date_trunc('second', ts)) %(run_id)s, token,
               date_trunc('second', ts), underlying, price, forward, iv, delta, gamma, theta,
               vega, iv_percentile
        FROM pg_temp.scalpflow_stage_analytics
        ORDER BY token, date_trunc('second', ts), seq DESC
        ON CONFLICT (run_id, token, ts) DO UPDATE SET
          price = EXCLUDED.price, forward = EXCLUDED.forward, iv = EXCLUDED.iv,
          delta = EXCLUDED.delta, gamma = EXCLUDED.gamma, theta = EXCLUDED.theta,
          vega = EXCLUDED.vega, iv_percentile = EXCLUDED.iv_percentile""",
}

_encode = msgspec.json.encode
_staged: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


@dataclass
class Staged:
    """One flush worth of rows: bulk rows for COPY, the rest per upsert statement."""

    bars: list[Row] = field(default_factory=list)
    analytics: list[Row] = field(default_factory=list)
    other: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))

    @property
    def rows(self) -> int:
        """Table rows this flush writes (a bar is a candle and an indicator row)."""
        return 2 * len(self.bars) + len(self.analytics) + sum(map(len, self.other.values()))


def stage_events(run_id: str, events: Iterable[Any], *, bulk: bool = True) -> Staged:
    """Turn events into rows; ``bulk=False`` sends bars and analytics row by row instead.

    Every event type's rows come from its route (``connectors.routes``); trade-journal
    events (orders, fills, trades, positions) carry their own ``run_id`` and go through
    ``connectors.postgres.journal``; an event type with no route is a programming error.
    """
    staged = Staged()
    bars, analytics, other = staged.bars, staged.analytics, staged.other
    journal: list[Any] = []
    for seq, event in enumerate(events):
        kind = type(event)
        if kind is Bar and bulk:
            c = event.candle
            bars.append((
                seq, c.token, c.interval, c.start, c.open, c.high, c.low, c.close, c.volume,
                c.vwap, c.ticks, _encode(event.indicators).decode(),
            ))  # fmt: skip
        elif kind is OptionAnalytics and bulk:
            a = event
            analytics.append((
                seq, a.token, a.ts_event, a.underlying, a.price, a.forward, a.iv, a.delta,
                a.gamma, a.theta, a.vega, a.iv_percentile,
            ))  # fmt: skip
        elif (r := route(kind)) is None:
            msg = f"no table for {kind.__name__}: add its route to connectors.routes.ROUTES"
            raise TypeError(msg)
        elif r.journal:
            journal.append(event)
        elif r.rows is not None:
            for table, row in r.rows(run_id, event):
                other[SQL[table]].append(row)
    for sql, rows in journal_rows(journal).items():
        other[sql].extend(rows)
    return staged


def write_staged(conn: psycopg.Connection[Any], run_id: str, staged: Staged) -> int:
    """Write one ``Staged`` flush in one transaction; returns the number of table rows."""
    if (staged.bars or staged.analytics) and conn not in _staged:
        conn.execute(_STAGE_DDL)
        _staged.add(conn)
    params = {"run_id": run_id}
    # Inside an open (epoch) transaction this is a savepoint, and the staging tables are not
    # emptied by a commit before the next chunk: empty them here.
    nested = conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    with conn.transaction(), conn.cursor() as cur:
        if staged.bars:
            _copy(cur, _COPY_BARS, _BAR_TYPES, staged.bars)
            cur.execute(BULK_UPSERTS["candles"], params)
            cur.execute(BULK_UPSERTS["indicators"], params)
            if nested:
                cur.execute("TRUNCATE pg_temp.scalpflow_stage_bars")
        if staged.analytics:
            _copy(cur, _COPY_ANALYTICS, _ANALYTICS_TYPES, staged.analytics)
            cur.execute(BULK_UPSERTS["option_analytics"], params)
            if nested:
                cur.execute("TRUNCATE pg_temp.scalpflow_stage_analytics")
        for sql, rows in staged.other.items():
            cur.executemany(sql, rows)
    return staged.rows


def _copy(cur: psycopg.Cursor[Any], statement: str, types: list[str], rows: list[Row]) -> None:
    with cur.copy(statement) as copy:
        copy.set_types(types)
        write_row = copy.write_row
        for row in rows:
            write_row(row)


def write_events(
    conn: psycopg.Connection[Any], run_id: str, events: Iterable[Any], *, bulk: bool = True
) -> int:
    """Upsert ``events`` in one transaction; returns the number of rows written."""
    return write_staged(conn, run_id, stage_events(run_id, events, bulk=bulk))


# --- the Bytewax sink: a writer thread per partition -------------------------------------


def db_key(event: Any) -> str:
    """Routing key for ``op.key_on`` before the sink: the instrument token where there is one.

    Every write of one natural row then goes through the same partition, in order.
    """
    if type(event) is Bar:
        return str(event.candle.token)
    return str(getattr(event, "token", ""))


@dataclass(frozen=True)
class RetryPolicy:
    """How long the sink rides out a PostgreSQL outage before it stops the run.

    Every failed attempt waits ``min(first_delay_s * 2**n, max_delay_s)``; once the server has
    been unreachable for ``budget_s`` in a row the run stops with a ``DatabaseError`` (the
    rows not written are still in Kafka). Meanwhile the flow thread waits: backpressure.
    """

    budget_s: float = 600.0
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0

    def __post_init__(self) -> None:
        if not (self.budget_s >= 0 and 0 < self.first_delay_s <= self.max_delay_s):
            msg = f"retry policy needs budget_s >= 0 and 0 < first <= max delay: {self}"
            raise ValueError(msg)

    def delay(self, attempt: int) -> float:
        return min(self.first_delay_s * 2 ** min(attempt, 30), self.max_delay_s)


class PgOutageError(DatabaseError):
    """PostgreSQL stayed unreachable for longer than the retry budget."""


def _is_connection_error(exc: DatabaseError) -> bool:
    """``connect`` failed (the server is down or refuses connections): worth retrying."""
    return isinstance(exc.__cause__, psycopg.OperationalError)


@dataclass
class _Chunk:
    """Events of one write inside the open epoch, kept until it commits (a reconnect writes
    the epoch again); ``staged`` is None when some event could not be turned into rows."""

    events: list[Any]
    staged: Staged | None
    rows: int = 0


class _Writer(threading.Thread):
    """Writes handed-over batches on its own connection; the flow thread never waits on the
    server except in ``flush`` (epoch end) or when ``max_pending`` events are queued.

    One transaction per epoch: chunks are written into an open transaction as they come (the
    server works while the flow runs) and ``flush`` commits it, so a reader sees an epoch's
    rows in every table at once or not at all. The chunks of the open epoch are kept until
    the commit: when the connection breaks, the writer reconnects (``RetryPolicy``) and
    writes them again in a new transaction. A failure that outlasts the budget (or any
    other error) is kept and raised as ``DatabaseError`` by the next ``put``/``flush``.
    """

    def __init__(
        self,
        dsn: str,
        run_id: str,
        retry: RetryPolicy,
        max_pending: int,
        max_flush: int,
        name: str,
        on_wait: Callable[[float], None] | None = None,
        on_outage: Callable[[PgOutageError], None] | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._on_outage = on_outage
        self._dsn = dsn
        self._run_id = run_id
        self._retry = retry
        self._max_pending = max_pending
        self._max_flush = max_flush
        self._on_wait = on_wait
        self._conn: psycopg.Connection[Any] | None = None
        self._open = False  # an epoch transaction is open on _conn
        self._epoch: list[_Chunk] = []  # chunks written in the open transaction
        self._cond = threading.Condition()
        self._queue: deque[list[Any] | None] = deque()  # None: epoch end, commit here
        self._queued = 0  # events waiting in _queue or being written
        self._submitted = 0  # queue entries handed over
        self._done = 0  # queue entries written (an epoch end: committed)
        self._stopping = False
        self._dirty = False  # batches handed over since the last epoch end
        self._error: DatabaseError | None = None
        self.rows = 0  # table rows committed
        self.written = 0  # table rows written, committed or not

    # ---- flow thread

    def put(self, items: list[Any]) -> None:
        with self._cond:
            if self._queued >= self._max_pending and self._error is None:
                self._wait(lambda: self._queued < self._max_pending)
            self._raise_error()
            self._queue.append(items)
            self._queued += len(items)
            self._submitted += 1
            self._dirty = True
            self._cond.notify_all()

    def flush(self) -> None:
        """Commit the epoch: return once every batch handed over so far is committed."""
        with self._cond:
            self._raise_error()
            if not self._dirty:  # nothing handed over since the last epoch end
                return
            self._dirty = False
            self._queue.append(None)
            self._submitted += 1
            target = self._submitted
            self._cond.notify_all()
            self._wait(lambda: self._done >= target)
            self._raise_error()

    def _wait(self, ready: Callable[[], bool]) -> None:
        """Block the flow thread until ``ready()`` or a failure; report how long it waited
        (e.g. so a heartbeat does not take the flow's own backpressure for a silent feed)."""
        start = time.monotonic()
        while not ready() and self._error is None:
            self._cond.wait()
        if self._on_wait is not None:
            self._on_wait(time.monotonic() - start)

    def stop(self) -> None:
        """Flush, end the thread and close the connection; raise a pending failure."""
        try:
            self.flush()
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            self.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            if isinstance(self._error, PgOutageError) and self._on_outage is not None:
                self._on_outage(self._error)  # e.g. a clear stop of the run process
            raise self._error

    # ---- writer thread

    def run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if not self._queue:
                        return
                    # one write: queued batches up to max_flush events, or to an epoch end
                    events: list[Any] = []
                    entries, epoch_end = 0, False
                    while self._queue and len(events) < self._max_flush and not epoch_end:
                        batch = self._queue.popleft()
                        entries += 1
                        if batch is None:
                            epoch_end = True
                        else:
                            events.extend(batch)
                    size = len(events)
                if self._error is None:
                    try:
                        if events:
                            self._write(events)
                        if epoch_end:
                            self._commit()
                    except BaseException as exc:
                        self._fail(exc)
                with self._cond:
                    self._queued -= size
                    self._done += entries
                    self._cond.notify_all()
        finally:
            if self._conn is not None:
                self._conn.close()

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, DatabaseError):
            error = exc
        else:
            error = DatabaseError(f"PostgreSQL write failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
        log.error("%s", error)
        with self._cond:
            self._error = error  # later batches are dropped: they stay in Kafka for replay

    def _write(self, events: list[Any]) -> None:
        """Add one chunk to the open epoch transaction (opening it, reconnecting as needed)."""
        chunk = _Chunk(events, pg_rejects.try_stage(self._run_id, events))
        self._with_retry(lambda: self._write_chunk(chunk))
        self._epoch.append(chunk)

    def _commit(self) -> None:
        if not self._epoch:  # nothing written in this epoch: no transaction to commit
            return

        def commit() -> None:
            if self._open:
                assert self._conn is not None
                self._conn.execute("COMMIT")
                self._open = False

        self._with_retry(commit)
        self.rows += sum(c.rows for c in self._epoch)
        self._epoch.clear()

    def _write_chunk(self, chunk: _Chunk) -> None:
        """One chunk inside the epoch transaction, under its own savepoint: rows the server
        refuses for their content are isolated into dead letters (``connectors.postgres.rejects``,
        savepoints again), leaving the epoch usable; a SQL error of ours stops the sink."""
        conn = self._conn
        assert conn is not None
        assert self._open
        try:
            chunk.rows = pg_rejects.write(conn, self._run_id, chunk.events, chunk.staged)
        except psycopg.ProgrammingError as exc:
            msg = f"PostgreSQL refused a statement ({len(chunk.events)} events in the chunk): {exc}"
            raise DatabaseError(msg) from exc
        self.written += chunk.rows

    def _with_retry(self, action: Callable[[], None]) -> None:
        """Run ``action`` on a connection with the epoch open; on a broken connection, rebuild
        the epoch on a new one and try again, for as long as the retry budget allows."""
        retry = self._retry
        failing_since: float | None = None
        attempt = 0
        while True:
            try:
                if self._conn is None or self._conn.closed or not self._open:
                    self._open_epoch()  # connection lost: the epoch so far is written again
                action()
                if failing_since is not None:
                    down = time.monotonic() - failing_since
                    log.warning("PostgreSQL back after %.1f s; the epoch was written again", down)
                return
            except (psycopg.OperationalError, psycopg.InterfaceError, DatabaseError) as exc:
                if isinstance(exc, DatabaseError) and not _is_connection_error(exc):
                    raise
                self._drop_connection()
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                down = now - failing_since
                if down >= retry.budget_s:
                    events = sum(c.rows for c in self._epoch)
                    msg = (
                        f"PostgreSQL unreachable for {down:.0f} s (retry budget "
                        f"{retry.budget_s:.0f} s, SCALPFLOW_PG_RETRY_BUDGET_S): stopping; "
                        f"{events} rows of the open epoch were not written and stay in Kafka "
                        f"for replay. Last error: {exc}"
                    )
                    raise PgOutageError(msg) from exc
                delay = min(retry.delay(attempt), max(retry.budget_s - down, 0.0))
                attempt += 1
                log.warning(
                    "PostgreSQL write failed (%s); retrying in %.1f s (down %.0f s of a %.0f s "
                    "budget; the flow waits)",
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    delay,
                    down,
                    retry.budget_s,
                )
                time.sleep(delay)

    def _open_epoch(self) -> None:
        """Connect if needed, BEGIN, and write every chunk of the epoch so far."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn)
            self._conn.execute(_STAGE_DDL)
            _staged.add(self._conn)
        self._conn.execute("BEGIN")
        self._open = True
        for chunk in self._epoch:  # after a reconnect: the epoch so far, again
            self._write_chunk(chunk)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._open = False


class _PartitionWriter(StatefulSinkPartition[Any, None]):
    """Hands batches to a ``_Writer``; ``snapshot`` (every epoch end) and ``close`` wait until
    they are committed, so Bytewax never completes an epoch whose rows are not in PostgreSQL."""

    def __init__(self, writer: _Writer) -> None:
        self._writer = writer
        writer.start()

    @property
    def rows(self) -> int:
        return self._writer.rows

    def write_batch(self, values: list[Any]) -> None:
        if values:
            self._writer.put(list(values))

    def snapshot(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.stop()


class PostgresSink(FixedPartitionedSink[Any, None]):
    """Idempotent upserts written by a background thread per partition.

    Takes ``(key, event)`` pairs: put ``op.key_on(step_id, events, db_key)`` in front. Each of
    the ``partitions`` has one connection and one writer thread; Bytewax places every
    partition on exactly one worker and routes each key to one partition. Use one partition
    per worker of the run (the default 1 suits the single-process flow).

    ``retry``: how long an outage is ridden out; ``on_wait(seconds)``: told how long the flow
    thread waited for the server (backpressure); ``on_outage(error)``: called in the flow
    thread before an outage past the budget is raised (the run process stops cleanly there).
    """

    def __init__(
        self,
        dsn: str,
        run_id: str,
        retry: RetryPolicy | None = None,
        *,
        on_wait: Callable[[float], None] | None = None,
        on_outage: Callable[[PgOutageError], None] | None = None,
        partitions: int = 1,
        max_pending: int = 100_000,
        max_flush: int = 50_000,
    ) -> None:
        if partitions < 1 or max_pending < 1 or max_flush < 1:
            msg = f"partitions, max_pending, max_flush must be >= 1: {partitions}, "
            msg += f"{max_pending}, {max_flush}"
            raise ValueError(msg)
        self._dsn = dsn
        self._run_id = run_id
        self._retry = retry or RetryPolicy()
        self._on_wait = on_wait
        self._on_outage = on_outage
        self._partitions = partitions
        self._max_pending = max_pending
        self._max_flush = max_flush

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(self._partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _PartitionWriter:
        writer = _Writer(
            self._dsn,
            self._run_id,
            self._retry,
            self._max_pending,
            self._max_flush,
            name=f"{step_id}-pg-writer-{for_part}",
            on_wait=self._on_wait,
            on_outage=self._on_outage,
        )
        return _PartitionWriter(writer)
