"""Backtests: replay a time range of Kafka ``md.ticks`` through the very flows that trade live.

Why one module (~670 lines): spec, parameter parsing, the replay source wrapper, preflight,
result collection and the sweep; the split into ``flows/backtest/`` (spec, sweep; SQL to
``connectors``) waits for the folder regroup of issue 16.

A backtest is the live pipeline (``flows.pipeline.build_flow``) with one difference, its
source: :class:`~connectors.replay.KafkaReplaySource` reads ``[start, end)`` of the ticks
topic and merges all partitions deterministically. Outputs go to PostgreSQL only, under a
run-scoped namespace (every table is keyed by ``run_id``); nothing is published to the live
``trade.*`` topics.

- The run's configuration (range, topic, strategies and parameters, account, capital,
  candle lateness, regime model) is hashed; the run id is derived from that hash unless one
  is given, and ``runs`` records both. Re-running a backtest replaces its namespace.
- :class:`BacktestResult` carries the metrics (``operators.analytics``) and a hash of the
  fills and of the whole journal (ordered rows without ``run_id``), so "the same backtest
  gives the same fills" is a string comparison.
- :func:`run_sweep` runs a parameter grid in parallel processes and :func:`rank` orders the
  results.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from connectors.db import DatabaseError, connect
from connectors.replay import (
    KafkaReplay,
    KafkaReplaySource,
    ReplayError,
    ReplayRecord,
    ReplaySnapshot,
)
from connectors.runs import config_hash, record_run
from flows.accounts import AccountSpec, default_accounts
from flows.accounts import record as record_accounts
from flows.errors import FlowError
from flows.run_config import RunConfig
from flows.settings import Topics
from operators.analytics import Metrics, SimpleTrade, compute_metrics
from operators.events import Instrument
from operators.regime import RegimeModel
from operators.strategies.base import StrategyError, parse_param_overrides
from operators.strategies.registry import create_strategy
from operators.underlying_stage import StrategySpec

Progress = Callable[[int], None]

RUN_PREFIX = "bt-"
# Tables a backtest writes, each keyed by run_id. The journal hash covers the decisions and
# their consequences; market data (candles, indicators, analytics) is left out.
JOURNAL_TABLES: tuple[str, ...] = (
    "signals",
    "risk_decisions",
    "orders",
    "fills",
    "trades",
    "positions",
    "risk_events",
    "ai_state",
    "regimes",
    "contract_notes",
)
RUN_TABLES: tuple[str, ...] = (
    *JOURNAL_TABLES,
    "candles",
    "indicators",
    "option_analytics",
    "quotes",
)
RANK_KEYS: tuple[str, ...] = (
    "net_pnl",
    "sharpe",
    "sharpe_daily",
    "profit_factor",
    "win_rate",
    "expectancy",
    "max_drawdown",
)


class BacktestError(FlowError, RuntimeError):
    """A backtest cannot run as asked; the message is one line for the user."""


# ------------------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class BacktestSpec:
    """What to backtest. Everything here (and the regime model's version) is hashed."""

    start: datetime
    end: datetime
    strategies: tuple[StrategySpec, ...]
    topic: str = "md.ticks"
    account: str = "paper"
    capital_rupees: float = 500_000.0
    allowed_lateness_ms: int = 2_000
    accounts: tuple[AccountSpec, ...] = ()  # from an accounts file; empty: the one above
    feed_lag_threshold_ms: int = 500

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            msg = f"--from/--to must carry a time zone: {self.start} .. {self.end}"
            raise BacktestError(msg)
        if self.end <= self.start:
            msg = f"empty range: --to {self.end.isoformat()} is not after --from"
            msg += f" {self.start.isoformat()}"
            raise BacktestError(msg)
        if not self.strategies:
            msg = "no strategy to backtest"
            raise BacktestError(msg)

    def run_config(self, run_id: str = "", pg_dsn: str | None = None) -> RunConfig:
        """This backtest as a :class:`~flows.run_config.RunConfig` (the live run's shape)."""
        accounts = self.accounts or default_accounts(
            self.account, self.capital_rupees, self.strategies
        )
        return RunConfig(
            kind="backtest",
            run_id=run_id,
            source={"from": self.start.isoformat(), "to": self.end.isoformat()},
            accounts=accounts,
            allowed_lateness_ms=self.allowed_lateness_ms,
            feed_lag_threshold_ms=self.feed_lag_threshold_ms,
            topics=Topics(ticks=self.topic),
            pg_dsn=pg_dsn,
        )

    def config(self, model_version: str | None) -> dict[str, Any]:
        """The JSON-able configuration recorded in ``runs`` and hashed into the run id: the
        run config's record (every account's whole configuration, every operator default)."""
        return self.run_config().record(model_version)


@dataclass(frozen=True)
class BacktestEnv:
    """Where a backtest reads and writes (not part of the config hash)."""

    kafka_bootstrap: str
    pg_dsn: str
    models_dir: str | None = None
    batch_size: int = 1_000
    buffer_size: int = 2_000


@dataclass(frozen=True)
class BacktestResult:
    """One finished backtest: identity, figures and fingerprints of its output."""

    run_id: str
    config_hash: str
    metrics: Metrics
    records: int
    fills: int
    fills_hash: str
    journal_hash: str
    table_hashes: Mapping[str, str]
    elapsed_s: float
    params: Mapping[str, Any] = field(default_factory=dict)
    # Σ contract-note charges − Σ per-fill estimates over the run's days, paise (issue 15):
    # the metrics are per round trip, on the estimates; the run's net as the notes have it is
    # ``metrics.net_pnl − charges_true_up``.
    charges_true_up: int = 0

    def figure(self, key: str) -> float | None:
        """A metric by ranking name (``RANK_KEYS``), None when undefined."""
        m = self.metrics
        value: float | int | None = {
            "net_pnl": m.net_pnl,
            "sharpe": m.sharpe_per_trade,
            "sharpe_daily": m.sharpe_daily,
            "profit_factor": m.profit_factor,
            "win_rate": m.win_rate,
            "expectancy": m.expectancy,
            "max_drawdown": m.max_drawdown,
        }[key]
        return None if value is None else float(value)


def derive_run_id(digest: str) -> str:
    return f"{RUN_PREFIX}{digest[:12]}"


def parse_time(value: str, flag: str) -> datetime:
    """An ISO time for --from/--to; a naive time is read as IST (the exchange's clock)."""
    from operators.sessions import IST

    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{flag} must be an ISO time such as 2026-07-08T09:15+05:30, got {value!r}"
        raise BacktestError(msg) from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=IST)


# --------------------------------------------------------------------------------- parameters
def split_top_level(text: str) -> list[str]:
    """Split ``a,[b,c],"d,e"`` on commas outside brackets and quotes."""
    parts: list[str] = []
    depth, quoted = 0, False
    current: list[str] = []
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "[{":
            depth += 1
        elif not quoted and ch in "]}":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_sweep(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """``["stop_pct=0.2,0.3", "regimes=null,[\\"TRENDING\\"]"]`` → values per key (JSON each)."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key.strip() or not values.strip():
            msg = f"--sweep expects key=v1,v2,..., got {pair!r}"
            raise BacktestError(msg)
        name = key.strip()
        grid[name] = [parse_param_overrides([f"{name}={v}"])[name] for v in split_top_level(values)]
    return grid


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of a sweep grid, in a stable order (keys sorted)."""
    keys = sorted(grid)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


def load_params_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        msg = f"cannot read --params file {path}: {exc.strerror or exc}"
        raise BacktestError(msg) from exc
    except json.JSONDecodeError as exc:
        msg = f"--params file {path} is not JSON: {exc}"
        raise BacktestError(msg) from exc
    if not isinstance(data, dict):
        msg = f"--params file {path} must hold a JSON object, got {type(data).__name__}"
        raise BacktestError(msg)
    return data


def strategy_specs(names: Sequence[str], overrides: Mapping[str, Any]) -> tuple[StrategySpec, ...]:
    """Strategy specs with their parameter overrides, validated now (not inside the flow).

    With one strategy a key applies to it; with several, keys are ``strategy.key``.
    """
    if not names:
        msg = "name at least one --strategy"
        raise BacktestError(msg)
    if len(set(names)) != len(names):
        msg = f"a strategy is named twice: {list(names)}"
        raise BacktestError(msg)
    per: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in overrides.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix in per:
            per[prefix][rest] = value
        elif len(names) == 1:
            per[names[0]][key] = value
        else:
            msg = f"parameter {key!r} is ambiguous with several strategies: write strategy.{key}"
            raise BacktestError(msg)
    specs = tuple(StrategySpec(n, per[n]) for n in names)
    for spec in specs:
        try:
            create_strategy(spec.name, dict(spec.params))
        except (StrategyError, ValueError) as exc:
            first = str(exc).strip().splitlines()
            msg = f"strategy {spec.name!r}: {' '.join(line.strip() for line in first)}"
            raise BacktestError(msg) from exc
    return specs


# ------------------------------------------------------------------------------------- source
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


# ------------------------------------------------------------------------------- preflight
def check_kafka(bootstrap: str, timeout_s: float = 5.0) -> None:
    """Fail with one line when no broker answers (as a BacktestError)."""
    from connectors.kafka_io import BrokerUnavailableError, check_broker

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
    from connectors.instruments import load_instruments

    try:
        instruments = load_instruments(dsn)
    except DatabaseError as exc:
        raise BacktestError(str(exc)) from exc
    if not instruments:
        msg = "the instrument master is empty: run `scalpflow feed synthetic` (or a feed) first"
        raise BacktestError(msg)
    return instruments


def load_regime_model(models_dir: str | None) -> RegimeModel | None:
    from connectors.model_store import load_model_or_none

    return load_model_or_none(models_dir) if models_dir else None


# --------------------------------------------------------------------------------- namespace
def prepare_namespace(dsn: str, run_id: str) -> None:
    """Empty ``run_id``'s rows so a re-run replaces them; refuse a run that is not a backtest."""
    try:
        with connect(dsn) as conn:
            row = conn.execute("SELECT kind FROM runs WHERE run_id = %s", (run_id,)).fetchone()
            if row is not None and row[0] != "backtest":
                msg = f"run id {run_id!r} belongs to a {row[0]} run; choose another --run-id"
                raise BacktestError(msg)
            existing = _existing_tables(conn)
            with conn.transaction():
                for table in RUN_TABLES:
                    if table in existing:
                        conn.execute(f"DELETE FROM {table} WHERE run_id = %s", (run_id,))
    except DatabaseError as exc:
        raise BacktestError(str(exc)) from exc


def _existing_tables(conn: Any) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


# ---------------------------------------------------------------------------------- read-back
def _canonical(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value else "NaN"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return repr(value)


def table_rows(conn: Any, table: str, run_id: str) -> list[tuple[str, ...]]:
    """A run's rows of ``table`` without the run_id column, canonical text, sorted."""
    cur = conn.execute(f"SELECT * FROM {table} WHERE run_id = %s", (run_id,))
    names = [d.name for d in cur.description or ()]
    keep = [i for i, n in enumerate(names) if n != "run_id"]
    rows = [tuple(_canonical(r[i]) for i in keep) for r in cur.fetchall()]
    return sorted(rows)


def rows_hash(rows: Iterable[tuple[str, ...]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def journal_hashes(dsn: str, run_id: str) -> dict[str, str]:
    """sha256 per journal table of the run's ordered rows, run_id excluded."""
    with connect(dsn) as conn:
        existing = _existing_tables(conn)
        return {t: rows_hash(table_rows(conn, t, run_id)) for t in JOURNAL_TABLES if t in existing}


def combined_hash(hashes: Mapping[str, str]) -> str:
    return hashlib.sha256(
        "".join(f"{k}={v};" for k, v in sorted(hashes.items())).encode()
    ).hexdigest()


def trade_rows(dsn: str, run_id: str) -> list[dict[str, Any]]:
    """The run's round trips in exit order, as dicts (the report's trade list)."""
    with connect(dsn) as conn:
        cur = conn.execute(
            """
            SELECT t.trade_id, t.strategy, coalesce(i.symbol, t.token) AS symbol, t.direction,
                   t.qty, t.entry_ts, t.exit_ts, t.entry_price, t.exit_price, t.gross, t.costs,
                   t.net, t.entry_reason, t.exit_reason
              FROM trades t LEFT JOIN instruments i ON i.token = t.token
             WHERE t.run_id = %s
             ORDER BY t.exit_ts, t.entry_ts, t.trade_id""",
            (run_id,),
        )
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


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


# ------------------------------------------------------------------------------------ running
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
    prepare_namespace(env.pg_dsn, run_id)
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
        with connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM fills WHERE run_id = %s", (run_id,)).fetchone()
            true_up = conn.execute(
                "SELECT coalesce(sum(true_up), 0) FROM contract_notes WHERE run_id = %s",
                (run_id,),
            ).fetchone()
    except DatabaseError as exc:
        raise BacktestError(str(exc)) from exc
    return BacktestResult(
        run_id=run_id,
        config_hash=digest,
        metrics=metrics_of(trades),
        records=records,
        fills=int(row[0]) if row else 0,
        fills_hash=hashes.get("fills", ""),
        journal_hash=combined_hash(hashes),
        table_hashes=hashes,
        elapsed_s=elapsed_s,
        params=dict(params),
        charges_true_up=int(true_up[0] * 100) if true_up else 0,
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


# ---------------------------------------------------------------------------------------- sweep
def sweep_specs(
    spec: BacktestSpec, base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]
) -> list[tuple[dict[str, Any], BacktestSpec]]:
    """One spec per grid point: ``base`` overrides updated by the point, validated."""
    names = [s.name for s in spec.strategies]
    out = []
    for point in grid_points(grid):
        strategies = strategy_specs(names, {**base, **point})
        out.append((point, replace(spec, strategies=strategies)))
    return out


def _sweep_worker(spec: BacktestSpec, env: BacktestEnv, params: dict[str, Any]) -> BacktestResult:
    return run_backtest(spec, env, params=params)


def run_sweep(
    points: Sequence[tuple[dict[str, Any], BacktestSpec]],
    env: BacktestEnv,
    *,
    processes: int = 2,
    on_done: Callable[[BacktestResult], None] | None = None,
) -> list[BacktestResult]:
    """Run every grid point as its own backtest, ``processes`` at a time (spawned processes:
    Bytewax and librdkafka threads do not survive a fork). Results in grid order."""
    if processes < 1:
        msg = f"--processes must be ≥ 1, got {processes}"
        raise BacktestError(msg)
    results: dict[int, BacktestResult] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
        futures: dict[Future[BacktestResult], int] = {
            pool.submit(_sweep_worker, s, env, p): i for i, (p, s) in enumerate(points)
        }
        for fut in as_completed(futures):
            result = fut.result()
            results[futures[fut]] = result
            if on_done is not None:
                on_done(result)
    return [results[i] for i in range(len(points))]


def rank(results: Iterable[BacktestResult], by: str = "net_pnl") -> list[BacktestResult]:
    """Best first by ``by`` (smallest first for max_drawdown); undefined figures last; ties
    broken by net P&L, then run id, so the order is stable."""
    if by not in RANK_KEYS:
        msg = f"cannot rank by {by!r}; choose one of {', '.join(RANK_KEYS)}"
        raise BacktestError(msg)
    sign = 1.0 if by == "max_drawdown" else -1.0

    def key(r: BacktestResult) -> tuple[int, float, float, str]:
        value = r.figure(by)
        return (value is None, sign * (value or 0.0), -float(r.metrics.net_pnl), r.run_id)

    return sorted(results, key=key)
