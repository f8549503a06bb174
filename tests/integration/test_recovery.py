"""Crash recovery on the real services: ``scalpflow run`` with its worker killed (``kill -9``) at
two seeded random points, restarted each time by its supervisor, ends with every PostgreSQL
table equal to an uninterrupted run's, and every Kafka output of that run present. Duplicates
on Kafka are only the re-sent outputs of the epoch in flight at each kill (counted; README)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.postgres.instruments import save_instruments
from flows.config.settings import Topics
from flows.runtime.recovery import STAMP
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
    return [sys.executable, "-m", "flows.cli.app", "run", "--no-tail", "--run-id", run_id,
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
    """End offset of ``topic``'s partition 0 (asked again while a new topic has no leader)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        for _ in range(50):
            try:
                return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.NOT_LEADER_FOR_PARTITION:
                    raise
                time.sleep(0.2)
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


@dataclass(frozen=True)
class Session:
    """A session in a ticks topic, and what an uninterrupted run made of it."""

    bootstrap: str
    pg_dsn: str
    ticks: str
    bars: int
    tables: dict[str, list[tuple[str, ...]]]
    outputs: dict[str, list[bytes]]

    def topics(self, prefix: str) -> Topics:
        topics = unique_topics(prefix).model_copy(update={"ticks": self.ticks})
        create_topics(self.bootstrap, topics)
        return topics


@pytest.fixture(scope="module")
def session(kafka_bootstrap, pg_dsn, pg_conn, tmp_path_factory) -> Session:
    market = SyntheticMarket(SyntheticConfig(seed=7, date=date(2026, 7, 7), duration_minutes=20))
    save_instruments(pg_dsn, market.instruments())
    topics = unique_topics("it-recover-base")
    create_topics(kafka_bootstrap, topics)
    produce(kafka_bootstrap, topics.ticks,
            ((m.key, m.value, m.timestamp_ms) for m in market.raw_messages()))  # fmt: skip
    run_id = f"rb-{uuid.uuid4().hex[:6]}"
    store = tmp_path_factory.mktemp("base") / "store"
    subprocess.run(_run_cmd(run_id, store), check=True,
                   env=_env(pg_dsn, kafka_bootstrap, topics), capture_output=True)  # fmt: skip
    outputs = _outputs(kafka_bootstrap, topics, run_id)
    assert outputs["fills"], "the session traded nothing"
    bars = _end_offset(kafka_bootstrap, topics.bars)
    assert bars > 1000
    tables = _tables(pg_conn, run_id)
    return Session(kafka_bootstrap, pg_dsn, topics.ticks, bars, tables, outputs)


def _assert_tables_equal(session: Session, conn: psycopg.Connection, run_id: str) -> None:
    tables = _tables(conn, run_id)
    assert sorted(tables) == sorted(session.tables)
    for name, rows in session.tables.items():
        extra = sorted(set(tables[name]) - set(rows))[:3]
        missing = sorted(set(rows) - set(tables[name]))[:3]
        assert tables[name] == rows, (name, len(rows), extra, missing)


def test_kill_9_twice_and_restarts_leave_tables_equal_and_lose_no_output(
    session, pg_conn, tmp_path
) -> None:
    bootstrap = session.bootstrap
    topics = session.topics("it-recover-crash")
    run_id = f"rc-{uuid.uuid4().hex[:6]}"
    rng = random.Random(SEED)
    kill_at = sorted(int(session.bars * rng.uniform(0.15, 0.85)) for _ in range(2))
    log = tmp_path / "run.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            _run_cmd(run_id, tmp_path / "store"),
            env=_env(session.pg_dsn, bootstrap, topics),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    killed_at: list[int] = []
    try:
        for target in kill_at:
            while _end_offset(bootstrap, topics.bars) < target:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.05)
            workers = _children(proc.pid)
            assert len(workers) == 1, workers
            os.kill(workers[0], signal.SIGKILL)
            killed_at.append(_end_offset(bootstrap, topics.bars))
            while workers[0] in _children(proc.pid):  # reaped before the restart
                time.sleep(0.05)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = log.read_text()
    assert proc.returncode == 0, out
    assert "done (2 restart(s))" in out, out
    assert out.count("killed by SIGKILL; restart") == 2, out

    _assert_tables_equal(session, pg_conn, run_id)
    outputs = _outputs(bootstrap, topics, run_id)
    duplicates = {}
    for name, records in session.outputs.items():
        assert set(outputs[name]) == set(records), name  # every output present, none foreign
        duplicates[name] = sum((Counter(outputs[name]) - Counter(records)).values())
    # Resumed from the last snapshot, not offset 0: only the epoch in flight is sent again,
    # far fewer bars than were out before the first kill (a restart from 0 re-sends them all),
    # and each re-sent bar had first been sent shortly before a kill.
    bars = outputs["bars"]
    first_at: dict[bytes, int] = {}
    first_copy_at = {}
    for offset, value in enumerate(bars):
        if value in first_at:
            first_copy_at[value] = first_at[value]
        first_at.setdefault(value, offset)
    assert duplicates["bars"] < killed_at[0] / 2, (duplicates, killed_at)
    for offset in first_copy_at.values():
        assert any(k - duplicates["bars"] <= offset < k for k in killed_at), (offset, killed_at)
    print(f"kill points (bars out): {killed_at}; duplicates per topic: {duplicates}")


def test_sigterm_stops_after_a_final_snapshot_and_the_other_form_resumes_it(
    session, pg_conn, tmp_path
) -> None:
    """A graceful stop (compiled operators) and its resumption (pure-Python operators):
    nothing is lost and, the final snapshot being taken at the stop, nothing is sent twice."""
    bootstrap = session.bootstrap
    topics = session.topics("it-recover-stop")
    run_id = f"rs-{uuid.uuid4().hex[:6]}"
    store = tmp_path / "store"
    env = _env(session.pg_dsn, bootstrap, topics)
    proc = subprocess.Popen(_run_cmd(run_id, store), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        while _end_offset(bootstrap, topics.bars) < session.bars * 0.3:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped cleanly after a final snapshot" in out, out  # within its 5 s bound
    stopped_at = _end_offset(bootstrap, topics.bars)
    assert stopped_at < session.bars  # stopped mid-session

    resumed = subprocess.run(_run_cmd(run_id, store), env={**env, "SCALPFLOW_NATIVE": "0"},
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    _assert_tables_equal(session, pg_conn, run_id)
    outputs = _outputs(bootstrap, topics, run_id)
    for name, records in session.outputs.items():
        assert Counter(outputs[name]) == Counter(records), name  # no record twice

    stamp = json.loads((store / STAMP).read_text())
    (store / STAMP).write_text(json.dumps({**stamp, "schema": "0" * 16}))
    refused = subprocess.run(_run_cmd(run_id, store), env=env, capture_output=True, text=True,
                             check=False)  # fmt: skip
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "incompatible build" in refused.stderr
    assert "--fresh" in refused.stderr
