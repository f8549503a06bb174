"""The whole dataflow: source → market stage → (trading stage) → Kafka topics + PostgreSQL.

The same ``build_flow`` serves the live run (Kafka source, tail), the embedded demo
(in-process synthetic market) and backtests (Kafka replay source); only the source differs.
Run it in-process with ``run_flow`` or as N processes with
``python -m bytewax.run "flows.pipeline:flow_from_env()" -i K -a "host:port;..."``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, cast

import bytewax.operators as op
from bytewax.connectors.kafka import OFFSET_BEGINNING, KafkaSource
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import FixedPartitionedSource, Source
from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from connectors.kafka.sink import AsyncKafkaSink, message_key
from connectors.postgres.sink import PostgresSink, RetryPolicy, db_key
from connectors.routes import kafka_message
from flows.adapters import key_by
from flows.arrivals import ArrivalClock
from flows.config.accounts import AccountSpec, Isolation
from flows.config.accounts import record as record_accounts
from flows.config.settings import Topics
from flows.market import market_stage
from flows.placement import Placement
from flows.runtime.gc_tuning import streaming_gc, tune_for_streaming
from flows.runtime.outage import stop_process
from flows.sources.controls import control_source
from operators.ai.regime import RegimeModel
from operators.events import Instrument
from operators.market.candles import CandleConfig
from operators.market.validation import ValidationConfig
from operators.stages.underlying import StrategySpec, UnderlyingConfig

DEFAULT_STRATEGIES: tuple[StrategySpec, ...] = tuple(UnderlyingConfig().strategies)


@dataclass(frozen=True)
class PipelineConfig:
    """What a run needs besides its source: where outputs go and how candles close."""

    run_id: str
    pg_dsn: str | None = None
    kafka_bootstrap: str | None = None  # None: no Kafka outputs (the embedded demo)
    topics: Topics = field(default_factory=Topics)
    candle: CandleConfig = field(default_factory=CandleConfig)
    trading: bool = True
    account: str = "paper"
    capital_rupees: float = 500_000.0
    strategies: tuple[StrategySpec, ...] = DEFAULT_STRATEGIES
    # From an accounts file (flows.config.accounts); empty: one account from the three fields above
    accounts: tuple[AccountSpec, ...] = ()
    isolation: Isolation = field(default_factory=Isolation)
    regime_model: RegimeModel | None = None
    # Live only: wall-clock heartbeat of the trading stages (releases event-time buffers and
    # notices a silent feed). None for replays and backtests: output then depends on data only.
    heartbeat: timedelta | None = None
    # PostgreSQL sink partitions (one connection + writer thread each): one per Bytewax worker
    db_partitions: int = 1
    # Bytewax workers of the cluster (processes × 1): with more than one, the stages' keys are
    # placed on chosen workers so a tick crosses processes once (flows.placement)
    workers: int = 1
    # Prometheus bookkeeping; only worth its cost where a /metrics endpoint serves it
    metrics: bool = False
    # FEED_LAGGING when ts_recv - ts_event stays above this (SCALPFLOW_FEED_LAG_THRESHOLD_MS)
    feed_lag_threshold_ms: float = 500.0
    # Plausibility limits on ticks (size, strictness, times, price band, duplicates)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    # PostgreSQL outages: ridden out this long (Settings.pg_retry_budget_s), then the run
    # stops; ``exit_on_outage``: as a clean process exit (the run process), not an exception
    pg_retry_budget_s: float = 600.0
    exit_on_outage: bool = False
    # Live Kafka sources: merging stages release by input watermarks (minimum over the
    # partitions / underlyings), not behind a fixed lateness (see operators.stages.reorder)
    input_watermarks: bool = True


def kafka_source(bootstrap: str, topic: str, *, tail: bool, batch_size: int = 1000) -> Source[Any]:
    """The live input: every partition of ``topic``, kept aligned in event time (see
    ``flows.sources.aligned_kafka``) so a run over a backlog trades like its replay. Without
    ``tail`` each partition ends at the end it had when the run started
    (``flows.sources.bounded_kafka``)."""
    from connectors.kafka.admin import RDKAFKA_LOGGER
    from flows.sources.aligned_kafka import AlignedKafkaSource
    from flows.sources.bounded_kafka import BoundedKafkaSource

    # librdkafka prefetches up to 64 MB per partition by default; bound it so memory does
    # not scale with partitions × backlog during a replay.
    add_config: dict[str, Any] = {"queued.max.messages.kbytes": "8192", "logger": RDKAFKA_LOGGER}
    inner: FixedPartitionedSource[Any, Any]
    if tail:
        inner = KafkaSource(
            brokers=[bootstrap],
            topics=[topic],
            tail=True,
            starting_offset=OFFSET_BEGINNING,
            batch_size=batch_size,
            raise_on_errors=False,
            add_config=cast("dict[str, str]", add_config),
        )
    else:
        inner = BoundedKafkaSource(bootstrap, topic, batch_size=batch_size, add_config=add_config)
    return AlignedKafkaSource(inner, tail=tail)


def source_partitions(source: Source[Any], config: PipelineConfig) -> tuple[int, ...]:
    """The partitions of a live Kafka source: the inputs of the trading stage's input
    watermarks (issue 19). Empty for other sources (a replay merges partitions itself) or
    when ``config.input_watermarks`` is off (then the stages release by bounded lateness)."""
    parts = getattr(source, "input_partitions", None)  # AlignedKafkaSource, in-memory benches
    if not config.input_watermarks or parts is None:
        return ()
    return tuple(sorted(parts()))


def placement_for(
    source: Source[Any], instruments: Mapping[str, Instrument], config: PipelineConfig
) -> Placement | None:
    """Where the stages' keys run (``flows.placement``) with ``config.workers`` workers; None
    with one worker (every key is its plain name, Bytewax's hash places nothing)."""
    if config.workers <= 1:
        return None
    from flows.config.accounts import resolved_accounts

    parts = source.list_parts() if isinstance(source, FixedPartitionedSource) else []
    underlyings = sorted({i.underlying for i in instruments.values()})
    accounts = [a.id for a in resolved_accounts(config)] if config.trading else []
    return Placement(config.workers, parts, underlyings, accounts)


def build_flow(
    source: Source[Any],
    instruments: Mapping[str, Instrument],
    config: PipelineConfig,
    flow_id: str = "scalpflow",
    *,
    controls: Source[Any] | None = None,
) -> Dataflow:
    """``controls``: the operator control topic (``flows.sources.controls``), live runs only."""
    flow = Dataflow(flow_id)
    # every batch's arrival is stamped on the process clock (the live heartbeat's measure of
    # silence, flows.arrivals); transient broker errors are dropped there, not dead-lettered
    arrivals = ArrivalClock()
    raw = op.flat_map_batch("arrivals", op.input("ticks_in", flow, source), arrivals.stamp)
    placement = placement_for(source, instruments, config)
    market = market_stage(
        raw, instruments or None, config.candle, config.metrics, config.validation, placement
    )

    to_db: list[Stream[Any]] = [market.bars, market.dead_letters]
    to_kafka: list[Stream[Any]] = []
    topics = config.topics
    if config.kafka_bootstrap:
        # batch-wise (one Python call per batch, not op.map's per-item shim: see adapters)
        def to_messages(events: list[Any]) -> list[Any]:
            return [kafka_message(topics, e) for e in events]

        to_kafka.append(op.flat_map_batch("bars_to_kafka", market.bars, to_messages))
        to_kafka.append(op.flat_map_batch("dlq_to_kafka", market.dead_letters, to_messages))

    if config.trading:
        from flows.trading import trading_stage

        commands = None
        if controls is not None:
            from flows.config.accounts import resolved_accounts
            from flows.sources.controls import control_commands

            ids = [a.id for a in resolved_accounts(config)]
            key_of = placement.account_key if placement is not None else str
            commands = control_commands(flow, controls, ids, key_of)
        trading = trading_stage(
            market.sourced,
            market.bars,
            instruments,
            config,
            commands,
            arrivals,
            source_partitions(source, config),
            placement,
        )
        to_db.extend(trading.to_db)
        if config.kafka_bootstrap:
            to_kafka.extend(trading.to_kafka)

    if config.pg_dsn:
        from flows.quotes import quote_stream

        to_db.append(quote_stream(market.ticks))  # bid/ask/LTP/OI per minute for the chain
        # keyed by instrument so every write of one row goes through one sink partition
        db_rows = key_by("db_keyed", op.merge("db_rows", *to_db), db_key)
        op.output(
            "postgres",
            db_rows,
            PostgresSink(
                config.pg_dsn,
                config.run_id,
                RetryPolicy(budget_s=config.pg_retry_budget_s),
                on_wait=arrivals.excuse,  # the flow's own backpressure is not a silent feed
                on_outage=stop_process if config.exit_on_outage else None,
                partitions=config.db_partitions,
            ),
        )
    if to_kafka and config.kafka_bootstrap:
        kafka_msgs = key_by("kafka_keyed", op.merge("kafka_msgs", *to_kafka), message_key)
        op.output(
            "kafka",
            kafka_msgs,
            AsyncKafkaSink(
                config.kafka_bootstrap,
                partitions=config.db_partitions,
                on_outage=stop_process if config.exit_on_outage else None,
            ),
        )
    return flow


def run_flow(
    flow: Dataflow,
    *,
    epoch_interval: timedelta = timedelta(seconds=5),
    recovery: RecoveryConfig | None = None,
) -> None:
    """Run in this process with one worker until the source ends (with the garbage
    collector tuned for streaming, see ``flows.runtime.gc_tuning``); ``recovery`` (a store made by
    ``flows.runtime.recovery.prepare``) snapshots every epoch, as ``scalpflow run`` does."""
    with streaming_gc():
        cli_main(
            flow,
            workers_per_process=1,
            epoch_interval=epoch_interval,
            recovery_config=recovery,
        )


ENV_CONFIG = "SCALPFLOW_FLOW_CONFIG"


def flow_from_env() -> Dataflow:
    """Factory for ``python -m bytewax.run``: the whole ``RunConfig`` that ``scalpflow run``
    wrote as JSON (``flows.config.run_config``); nothing is defaulted here."""
    from connectors import metrics
    from connectors.files.model_store import load_model_or_none
    from connectors.postgres.instruments import load_instruments
    from flows.config.run_config import RunConfig
    from flows.runtime import stopping
    from flows.runtime.supervisor import exit_with_supervisor, observe_restarts

    exit_with_supervisor(os.environ)  # no worker outlives a killed `scalpflow run`
    run = RunConfig.from_json(os.environ[ENV_CONFIG])
    metrics_port = int(os.environ.get("SCALPFLOW_METRICS_PORT", "0"))
    metrics.serve(metrics_port, run.bind_address)
    observe_restarts(os.environ)
    # SIGINT/SIGTERM: end the input, final snapshot, exit (flows.runtime.stopping)
    stopping.install()
    config = run.pipeline(
        regime_model=load_model_or_none(run.models_dir), metrics=metrics_port != 0
    )
    config = replace(config, exit_on_outage=True)  # the run process: a clean exit, not a panic
    instruments = load_instruments(run.pg_dsn) if run.pg_dsn else {}
    if run.pg_dsn and config.trading:  # every process: an idempotent upsert
        record_accounts(run.pg_dsn, config.run_id, config)
    if run.kafka_bootstrap is None:
        msg = "the run config names no Kafka bootstrap: build it with `scalpflow run`"
        raise ValueError(msg)
    source = kafka_source(
        run.kafka_bootstrap, config.topics.ticks, tail=run.tail, batch_size=run.batch_size
    )
    controls = control_source(run.kafka_bootstrap, config.topics.control, tail=run.tail)
    tune_for_streaming()  # this process exists to run the flow
    return build_flow(source, instruments, config, controls=controls)
