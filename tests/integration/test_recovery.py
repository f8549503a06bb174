"""Crash recovery on the real services: ``scalpflow run`` with its worker killed (``kill -9``) at
two seeded random points, restarted each time by its supervisor, ends with every PostgreSQL
table equal to an uninterrupted run's, and every Kafka output of that run present. Duplicates
on Kafka are only the re-sent outputs of the epoch in flight at each kill (counted; README)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.instruments import save_instruments
from connectors.synthetic import SyntheticConfig, SyntheticMarket
from flows.settings import Topics
from tests.integration.helpers import consume_all, create_topics, produce, unique_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

SEED = 1307  # the kill points (fractions of the uninterrupted run's bars)


def _env(pg_dsn: str, bootstrap: str, topics: Topics) -> dict[str, str]:
    return {
        **os.environ,
        "SCALPFLOW_PG_DSN": pg_dsn,
        "SCALPFLOW_KAFKA_BOOTSTRAP": bootstrap,
        **{f"SCALPFLOW_TOPIC_{k.upper()}": v for k, v in topics.model_dump().items()},
    }


def _run_cmd(run_id: str, store: Path) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "run", "--no-tail", "--run-id", run_id,
            "--recovery-dir", str(store), "--snapshot-interval", "1"]  # fmt: skip


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (the supervisor's workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def _end_offset(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()


def _tables(conn: psycopg.Connection, run_id: str) -> dict[str, list[tuple[str, ...]]]:
    """Every table with a ``run_id`` column: the run's rows, run id blanked, sorted."""
    names = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'run_id'"
        " AND table_schema = 'public' AND table_name NOT IN ('runs') ORDER BY 1")]  # fmt: skip
    out = {}
    for name in names:
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " AND table_schema = 'public' AND column_name <> 'run_id' ORDER BY ordinal_position",
            (name,))]  # fmt: skip
        select = ", ".join(f'"{c}"::text' for c in cols)
        rows = conn.execute(
            f'SELECT {select} FROM "{name}" WHERE run_id = %s',  # names from the catalog
            (run_id,),
        ).fetchall()
        out[name] = sorted(tuple(str(v).replace(run_id, "RUN") for v in r) for r in rows)
    return out


def _outputs(bootstrap: str, topics: Topics, run_id: str) -> dict[str, list[bytes]]:
    names = {k: v for k, v in topics.model_dump().items() if k != "ticks"}
    tag = run_id.encode()
    return {
        k: [(m.value() or b"").replace(tag, b"RUN") for m in consume_all(bootstrap, t)]
        for k, t in names.items()
    }


def test_kill_9_twice_and_restarts_leave_tables_equal_and_lose_no_output(
    kafka_bootstrap, pg_dsn, pg_conn, tmp_path
) -> None:
    market = SyntheticMarket(SyntheticConfig(seed=7, date=date(2026, 7, 7), duration_minutes=30))
    save_instruments(pg_dsn, market.instruments())
    base_topics = unique_topics("it-recover-base")
    create_topics(kafka_bootstrap, base_topics)
    crash_topics = unique_topics("it-recover-crash").model_copy(update={"ticks": base_topics.ticks})
    create_topics(kafka_bootstrap, crash_topics)
    produce(kafka_bootstrap, base_topics.ticks,
            ((m.key, m.value, m.timestamp_ms) for m in market.raw_messages()))  # fmt: skip
    tag = uuid.uuid4().hex[:6]
    base_id, crash_id = f"rb-{tag}", f"rc-{tag}"

    subprocess.run(_run_cmd(base_id, tmp_path / "base"), check=True,
                   env=_env(pg_dsn, kafka_bootstrap, base_topics), capture_output=True)  # fmt: skip
    base_bars = _end_offset(kafka_bootstrap, base_topics.bars)
    assert base_bars > 1000

    rng = random.Random(SEED)
    kill_at = sorted(int(base_bars * rng.uniform(0.15, 0.85)) for _ in range(2))
    proc = subprocess.Popen(
        _run_cmd(crash_id, tmp_path / "crash"),
        env=_env(pg_dsn, kafka_bootstrap, crash_topics),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed_at = []
    try:
        for target in kill_at:
            while _end_offset(kafka_bootstrap, crash_topics.bars) < target:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.05)
            workers = _children(proc.pid)
            assert len(workers) == 1, workers
            os.kill(workers[0], signal.SIGKILL)
            killed_at.append(_end_offset(kafka_bootstrap, crash_topics.bars))
            while workers[0] in _children(proc.pid):  # reaped before the restart
                time.sleep(0.05)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "done (2 restart(s))" in out, out
    assert out.count("killed by SIGKILL; restart") == 2, out

    crash_tables, base_tables = _tables(pg_conn, crash_id), _tables(pg_conn, base_id)
    for name, rows in base_tables.items():
        extra = sorted(set(crash_tables[name]) - set(rows))[:3]
        missing = sorted(set(rows) - set(crash_tables[name]))[:3]
        assert crash_tables[name] == rows, (name, len(rows), killed_at, extra, missing)
    base_out = _outputs(kafka_bootstrap, base_topics, base_id)
    crash_out = _outputs(kafka_bootstrap, crash_topics, crash_id)
    assert base_out["fills"], "the session traded nothing"
    duplicates = {}
    for name, records in base_out.items():
        assert set(crash_out[name]) == set(records), name  # every output present, none foreign
        duplicates[name] = sum((Counter(crash_out[name]) - Counter(records)).values())
    # Resumed from the last snapshot, not offset 0: only the epoch in flight is sent again,
    # i.e. far fewer bars than were out before the first kill (a restart from 0 re-sends all).
    bars = crash_out["bars"]
    first_at: dict[bytes, int] = {}
    first_copy_at = {}
    for offset, value in enumerate(bars):
        if value in first_at:
            first_copy_at[value] = first_at[value]
        first_at.setdefault(value, offset)
    assert duplicates["bars"] < killed_at[0] / 2, (duplicates, killed_at)
    # each re-sent bar had first been sent shortly before a kill
    for offset in first_copy_at.values():
        assert any(k - duplicates["bars"] <= offset < k for k in killed_at), (offset, killed_at)
    print(f"kill points (bars out): {killed_at}; duplicates per topic: {duplicates}")
