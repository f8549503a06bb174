"""Backtests: replay a time range of Kafka ``md.ticks`` through the very flows that trade live.

A backtest is the live pipeline (``flows.pipeline.build_flow``) with one difference, its
source: :class:`~connectors.kafka.replay.KafkaReplaySource` reads ``[start, end)`` of the ticks
topic and merges all partitions deterministically. Outputs go to PostgreSQL only, under a
run-scoped namespace (every table is keyed by ``run_id``); nothing is published to the live
``trade.*`` topics.

- The run's configuration (range, topic, strategies and parameters, account, capital,
  candle lateness, regime model) is hashed; the run id is derived from that hash unless one
  is given, and ``runs`` records both. Re-running a backtest replaces its namespace.
- :class:`BacktestResult` carries the metrics (``operators.trading.analytics``) and a hash of the
  fills and of the whole journal (ordered rows without ``run_id``), so "the same backtest
  gives the same fills" is a string comparison.
- :func:`run_sweep` runs a parameter grid in parallel processes and :func:`rank` orders the
  results.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from connectors.kafka.replay import (
    KafkaReplay,
    KafkaReplaySource,
    ReplayError,
    ReplayRecord,
    ReplaySnapshot,
)
from connectors.postgres.backtest_store import (
    NamespaceError,
    combined_hash,
    fill_count_and_true_up,
    journal_hashes,
    prepare_namespace,
    trade_rows,
)
from connectors.postgres.db import DatabaseError, connect
from connectors.postgres.runs import config_hash, record_run
from flows.backtest.spec import (
    BacktestEnv,
    BacktestError,
    BacktestResult,
    BacktestSpec,
    Progress,
    derive_run_id,
)
from flows.config.accounts import record as record_accounts
from operators.ai.regime import RegimeModel
from operators.events import Instrument
from operators.trading.analytics import Metrics, SimpleTrade, compute_metrics


class _CountingPartition(StatefulSourcePartition[ReplayRecord, ReplaySnapshot]):
    """Replay records, counted; the market stage parses them like live Kafka messages."""

    def __init__(
        self, inner: StatefulSourcePartition[Any, ReplaySnapshot], progress: Progress
    ) -> None:
        self._inner = inner
        self._progress = progress

    def next_batch(self) -> list[ReplayRecord]:
        batch = list(self._inner.next_batch())
        self._progress(len(batch))
        return batch

    def snapshot(self) -> ReplaySnapshot:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class ReplayMessageSource(FixedPartitionedSource[ReplayRecord, ReplaySnapshot]):
    """:class:`KafkaReplaySource` with each batch reported to ``progress``; the market stage
    decodes its records (and routes bad ones to the DLQ) exactly as live messages."""

    def __init__(self, replay: KafkaReplaySource, progress: Progress | None = None) -> None:
        self.replay = replay
        self.progress: Progress = progress or (lambda _n: None)

    def list_parts(self) -> list[str]:
        return self.replay.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: ReplaySnapshot | None
    ) -> _CountingPartition:
        inner = self.replay.build_part(step_id, for_part, resume_state)
        return _CountingPartition(inner, self.progress)


def check_kafka(bootstrap: str, timeout_s: float = 5.0) -> None:
    """Fail with one line when no broker answers (as a BacktestError)."""
    from connectors.kafka.admin import BrokerUnavailableError, check_broker

    try:
        check_broker(bootstrap, timeout=timeout_s)
    except BrokerUnavailableError as exc:
        raise BacktestError(str(exc)) from exc


def count_range(bootstrap: str, topic: str, start: datetime, end: datetime) -> int:
    """Records the range covers (an upper bound: the offsets between its ends, all partitions).

    Raises BacktestError when the topic is missing or holds nothing in ``[start, end)``.
    """
    try:
        reader = KafkaReplay(bootstrap, topic, start, end, timeout_s=10.0)
    except ReplayError as exc:
        raise BacktestError(str(exc)) from exc
    try:
        total = sum(hi - lo for lo, hi in reader.plan.values())
    finally:
        reader.close()
    if total <= 0:
        msg = f"no records in {topic} between {start.isoformat()} and {end.isoformat()}"
        raise BacktestError(msg)
    return total


def load_instrument_master(dsn: str) -> dict[str, Instrument]:
    from connectors.postgres.instruments import load_instruments

    try:
        instruments = load_instruments(dsn)
    except DatabaseError as exc:
        raise BacktestError(str(exc)) from exc
    if not instruments:
        msg = "the instrument master is empty: run `scalpflow feed synthetic` (or a feed) first"
        raise BacktestError(msg)
    return instruments


def load_regime_model(models_dir: str | None) -> RegimeModel | None:
    from connectors.files.model_store import load_model_or_none

    return load_model_or_none(models_dir) if models_dir else None


def _paise(rupees: Decimal) -> int:
    return int((rupees * 100).to_integral_value())


def metrics_of(trades: Sequence[Mapping[str, Any]]) -> Metrics:
    return compute_metrics(_simple(t) for t in trades)


def _simple(t: Mapping[str, Any]) -> SimpleTrade:
    return SimpleTrade(
        entry_ts=t["entry_ts"],
        exit_ts=t["exit_ts"],
        gross=_paise(t["gross"]),
        costs=_paise(t["costs"]),
        net=_paise(t["net"]),
    )


def run_backtest(
    spec: BacktestSpec,
    env: BacktestEnv,
    *,
    run_id: str | None = None,
    progress: Progress | None = None,
    instruments: Mapping[str, Instrument] | None = None,
    params: Mapping[str, Any] | None = None,
) -> BacktestResult:
    """Replay ``spec``'s range through the whole pipeline into ``run_id``'s namespace.

    Reads the instrument master and the regime model unless given, checks the range holds
    records, records the run with its config hash, runs the flow in this process and reads
    the journal back. ``params`` only labels the result (the sweep point it ran).
    """
    from flows.pipeline import build_flow, run_flow

    instruments = instruments if instruments is not None else load_instrument_master(env.pg_dsn)
    model = load_regime_model(env.models_dir)
    config = spec.config(model.version if model is not None else None)
    digest = config_hash(config)
    run_id = run_id or derive_run_id(digest)
    count_range(env.kafka_bootstrap, spec.topic, spec.start, spec.end)
    try:
        prepare_namespace(env.pg_dsn, run_id)
    except (NamespaceError, DatabaseError) as exc:
        raise BacktestError(str(exc)) from exc
    try:
        record_run(env.pg_dsn, run_id, "backtest", config)
    except DatabaseError as exc:
        raise BacktestError(str(exc)) from exc

    counted = [0]

    def count(n: int) -> None:
        counted[0] += n
        if progress is not None:
            progress(n)

    source = ReplayMessageSource(
        KafkaReplaySource(
            env.kafka_bootstrap,
            spec.topic,
            spec.start,
            spec.end,
            batch_size=env.batch_size,
            buffer_size=env.buffer_size,
        ),
        count,
    )
    pipeline = spec.run_config(run_id, env.pg_dsn).pipeline(regime_model=model)
    try:
        record_accounts(env.pg_dsn, run_id, pipeline)
    except DatabaseError as exc:
        raise BacktestError(str(exc)) from exc
    t0 = time.perf_counter()
    try:
        run_flow(build_flow(source, instruments, pipeline, flow_id=f"backtest-{run_id}"))
    except Exception as exc:  # bytewax wraps errors raised in steps; show the cause's line
        msg = f"the backtest flow failed: {_last_line(exc)}"
        raise BacktestError(msg) from exc
    elapsed = time.perf_counter() - t0
    return collect_result(env.pg_dsn, run_id, digest, counted[0], elapsed, params or {})


def collect_result(
    dsn: str,
    run_id: str,
    digest: str,
    records: int,
    elapsed_s: float,
    params: Mapping[str, Any],
) -> BacktestResult:
    """Metrics and output fingerprints of a finished run read back from PostgreSQL."""
    try:
        trades = trade_rows(dsn, run_id)
        hashes = journal_hashes(dsn, run_id)
        fills, true_up = fill_count_and_true_up(dsn, run_id)
    except DatabaseError as exc:
        raise BacktestError(str(exc)) from exc
    return BacktestResult(
        run_id=run_id,
        config_hash=digest,
        metrics=metrics_of(trades),
        records=records,
        fills=fills,
        fills_hash=hashes.get("fills", ""),
        journal_hash=combined_hash(hashes),
        table_hashes=hashes,
        elapsed_s=elapsed_s,
        params=dict(params),
        charges_true_up=true_up,
    )


def _last_line(exc: BaseException) -> str:
    """The innermost meaningful line of a (possibly Bytewax-wrapped) exception."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def write_pdf(path: Path, result: BacktestResult, dsn: str) -> Path:
    """The optional PDF report: the monitor's (title page with the run's range, accounts,
    strategies and parameters; metrics; price with trades; equity; trade list), with the
    metrics this command printed."""
    from dashboards.report import report_from_db

    with connect(dsn) as conn:
        return report_from_db(conn, result.run_id, path, metrics=result.metrics.summary())
