"""PostgreSQL sink, old vs new: rows/s and how long the flow thread spends in the sink.

    .venv/bin/python -m benchmarks.bench_pg_sink [--minutes 60] [--batch 200] [--work-us 0 100]
    .venv/bin/python -m benchmarks.bench_pg_sink --old HEAD~1   # once the new sink is committed

Builds real events once (``MarketLogic`` bars and ``ChainLogic`` option analytics over every
tick of a synthetic session, seed 3, 2026-07-07; 60 minutes is 105k bars + 98.5k analytics,
309k table rows) and writes them, in batches of ``--batch`` events, through

* ``old``: ``connectors/postgres/sink.py`` of git revision ``--old`` (read with ``git show``; the
  working tree is not touched), the synchronous ``executemany`` ``DynamicSink``;
* ``new``: the working tree's sink (writer thread, COPY + ``INSERT ... SELECT``), with a
  ``snapshot()`` every ``--epoch-events`` events as Bytewax does at each epoch end.

``--work-us W`` spends W µs of pure-Python CPU on the calling thread per event between
batches, standing in for the rest of the flow (the real flow spends ~120 µs per stored
event); ``flow overhead`` is then the wall time beyond that work. Each variant writes into its
own fresh database (created on the server of ``--dsn``/``SCALPFLOW_PG_DSN``/``pg.sh start``
and dropped afterwards). ``server CPU`` is the backend's user+system time from /proc.
Everything shares two cores with Kafka and PostgreSQL: compare figures from one run only.

``--storage`` compares where the rows go instead (issue 18), with the working tree's sink:

    .venv/bin/python -m benchmarks.bench_pg_sink --storage [--minutes 60]

* ``plain``: plain tables on a plain server (``--plain-dsn``/``SCALPFLOW_TEST_PLAIN_PG_DSN``/
  ``pg.sh start``);
* ``hypertable``: TimescaleDB hypertables (``--tsdb-dsn``/``SCALPFLOW_TEST_PG_DSN``);
* ``compressed``: the same hypertables after ``compress_chunk``, and the same events
  upserted again into the compressed chunks (Bytewax redelivering an epoch).

Each prints rows/s and the size of candles + indicators + option analytics (with indexes),
also scaled to a 375-minute session.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
import types
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from benchmarks._common import pg_server

ROOT = Path(__file__).resolve().parent.parent


def build_events(minutes: int) -> list[Any]:
    """Bars and option analytics (with an IV) of a synthetic session, in tick order."""
    from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
    from operators.events import Bar
    from operators.options.chain import ChainLogic
    from operators.stages.market import MarketLogic, MarketState

    market = SyntheticMarket(
        SyntheticConfig(seed=3, date=date(2026, 7, 7), duration_minutes=minutes)
    )
    instruments = {i.token: i for i in market.instruments()}
    logic, chain = MarketLogic(), ChainLogic("NIFTY")
    states: dict[str, MarketState] = {}
    events: list[Any] = []
    for tick in market.ticks():
        state = states.get(tick.token)
        if state is None:
            state = states[tick.token] = MarketState()
        events.extend(e for e in logic.on_tick(state, tick) if isinstance(e, Bar))
        events.extend(a for a in chain.on_tick(tick, instruments[tick.token]) if a.iv is not None)
    return events


def load_old(rev: str) -> types.ModuleType:
    """``connectors/postgres/sink.py`` as of git revision ``rev``, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{rev}:connectors/postgres/sink.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("pg_sink_old", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    exec(compile(source, f"{rev}:connectors/postgres/sink.py", "exec"), module.__dict__)
    return module


def backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run(
    variant: str,
    sink: Any,
    db: str,
    events: list[Any],
    batch: int,
    epoch_events: int,
    work_us: float,
) -> dict[str, float]:
    """Write ``events`` through ``sink``; time spent inside the sink on this thread."""
    app = f"bench_pg_sink_{variant}_{uuid.uuid4().hex[:6]}"
    os.environ["PGAPPNAME"] = app  # libpq names the sink's connection: find its backend
    try:
        part = (
            sink.build("pg", 0, 1) if hasattr(sink, "build") else sink.build_part("pg", "0", None)
        )
        in_sink = 0.0
        in_sink_cpu = 0.0
        since_epoch = 0
        pid = None
        t0 = time.perf_counter()
        for k in range(0, len(events), batch):
            chunk = events[k : k + batch]
            busy(work_us * 1e-6 * len(chunk))
            s, c = time.perf_counter(), time.thread_time()
            part.write_batch(chunk)
            since_epoch += len(chunk)
            if since_epoch >= epoch_events and hasattr(part, "snapshot"):
                part.snapshot()
                since_epoch = 0
            in_sink += time.perf_counter() - s
            in_sink_cpu += time.thread_time() - c
        s, c = time.perf_counter(), time.thread_time()
        if hasattr(part, "snapshot"):
            part.snapshot()
        in_sink += time.perf_counter() - s
        in_sink_cpu += time.thread_time() - c
        with psycopg.connect(db, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
            ).fetchone()
            pid = row[0] if row else None
        server = backend_cpu_s(pid) if pid else float("nan")
        s = time.perf_counter()
        part.close()
        in_sink += time.perf_counter() - s
        wall = time.perf_counter() - t0
    finally:
        os.environ.pop("PGAPPNAME", None)
    with psycopg.connect(db, autocommit=True) as conn:
        rows = sum(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("candles", "indicators", "option_analytics")
        )
    return {
        "rows": rows,
        "wall": wall,
        "in_sink": in_sink,
        "in_sink_cpu": in_sink_cpu,
        "work": work_us * 1e-6 * len(events),
        "server": server,
    }


BULK_TABLES = ("candles", "indicators", "option_analytics")
SESSION_MINUTES = 375


def table_bytes(conn: psycopg.Connection[Any], hypertables: bool) -> int:
    size = "hypertable_size(%s::regclass)" if hypertables else "pg_total_relation_size(%s)"
    return sum(
        conn.execute(f"SELECT {size}", (t,)).fetchone()[0]  # type: ignore[index]
        for t in BULK_TABLES
    )


def storage_report(args: argparse.Namespace, events: list[Any]) -> None:
    """Rows/s and bytes per session: plain tables, hypertables, compressed hypertables."""
    from connectors.postgres.db import scratch_database
    from connectors.postgres.sink import PostgresSink

    plain = args.plain_dsn or os.environ.get("SCALPFLOW_TEST_PLAIN_PG_DSN") or pg_server(None)
    tsdb = args.tsdb_dsn or os.environ.get("SCALPFLOW_TEST_PG_DSN")
    if not tsdb:
        sys.exit("--storage needs a TimescaleDB server: --tsdb-dsn or SCALPFLOW_TEST_PG_DSN")
    scale = SESSION_MINUTES / args.minutes
    print(f"{'storage':11} {'rows':>9} {'wall s':>7} {'rows/s':>9} {'MB':>8} {'MB/session':>10}")

    def line(name: str, rows: float, wall: float, size: int) -> None:
        mb = size / 1e6
        print(
            f"{name:11} {rows:9,.0f} {wall:7.2f} {rows / wall:9,.0f} {mb:8.1f} {mb * scale:10.1f}",
            flush=True,
        )

    for name, server in (("plain", plain), ("hypertable", tsdb)):
        with scratch_database(server, "bench_pg_sink") as db:
            r = run(name, PostgresSink(db, "bench"), db, events, args.batch, args.epoch_events, 0)
            with psycopg.connect(db, autocommit=True) as conn:
                line(name, r["rows"], r["wall"], table_bytes(conn, name == "hypertable"))
                if name == "plain":
                    continue
                t = time.perf_counter()
                for table in BULK_TABLES:
                    conn.execute(
                        "SELECT compress_chunk(c, if_not_compressed => TRUE)"
                        f" FROM show_chunks('{table}') c"
                    )
                took = time.perf_counter() - t
                size = table_bytes(conn, True)
            rows = r["rows"]
            print(f"  compress_chunk of every chunk: {took:.2f}s ({rows / took:,.0f} rows/s)")
            sink = PostgresSink(db, "bench")
            again = run("compressed", sink, db, events, args.batch, args.epoch_events, 0)
            line("compressed", again["rows"], again["wall"], size)
            print(
                "  compressed: size after compress_chunk; rows/s of the same events upserted again"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--epoch-events", type=int, default=50_000)
    parser.add_argument("--work-us", type=float, nargs="+", default=[0.0, 100.0])
    parser.add_argument("--old", default="HEAD", help="git revision of the old sink")
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--variants", nargs="+", default=["old", "new"])
    parser.add_argument("--storage", action="store_true", help="plain vs hypertable vs compressed")
    parser.add_argument("--plain-dsn", default=None)
    parser.add_argument("--tsdb-dsn", default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from connectors.postgres.db import scratch_database
    from connectors.postgres.sink import PostgresSink

    t = time.perf_counter()
    events = build_events(args.minutes)
    bars = sum(type(e).__name__ == "Bar" for e in events)
    print(
        f"{len(events):,} events ({bars:,} bars, {len(events) - bars:,} option analytics) "
        f"built in {time.perf_counter() - t:.1f}s; batches of {args.batch}, "
        f"snapshot every {args.epoch_events:,} events (new)"
    )
    if args.storage:
        storage_report(args, events)
        return
    old = load_old(args.old) if "old" in args.variants else None
    dsn = pg_server(args.dsn)
    print(
        f"{'variant':8} {'work µs/ev':>10} {'rows':>8} {'wall s':>7} {'rows/s':>9} "
        f"{'flow µs/row':>11} {'flow CPU µs/row':>15} {'overhead s':>10} {'server µs/row':>13}"
    )
    for work in args.work_us:
        for variant in args.variants:
            with scratch_database(dsn, "bench_pg_sink") as db:
                sink = (
                    old.PostgresSink(db, "bench")  # type: ignore[union-attr]
                    if variant == "old"
                    else PostgresSink(db, "bench")
                )
                r = run(variant, sink, db, events, args.batch, args.epoch_events, work)
            rows = r["rows"]
            print(
                f"{variant:8} {work:10.0f} {rows:8,.0f} {r['wall']:7.2f} {rows / r['wall']:9,.0f} "
                f"{r['in_sink'] / rows * 1e6:11.2f} {r['in_sink_cpu'] / rows * 1e6:15.2f} "
                f"{r['wall'] - r['work']:10.2f} {r['server'] / rows * 1e6:13.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
