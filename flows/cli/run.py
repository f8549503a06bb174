"""``scalpflow run``: the flows over Kafka into PostgreSQL, in supervised worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.config.settings import Settings, Topics
from flows.runtime.recovery import RecoveryArgs

if TYPE_CHECKING:
    from flows.config.accounts import AccountsFile
    from flows.config.run_config import RunConfig
    from operators.stages.underlying import StrategySpec

from flows.cli.app import _fail, _require_dsn, _setup_logging, app, console
from flows.cli.summary import print_run_summary

AccountsOption = Annotated[
    Path | None,
    typer.Option(
        "--accounts",
        help="Accounts file (TOML, see examples/accounts.toml); default: one account"
        " from SCALPFLOW_ACCOUNT / SCALPFLOW_CAPITAL_RUPEES.",
    ),
]


def _accounts_file(path: Path | None) -> AccountsFile | None:
    if path is None:
        return None
    from flows.config.accounts import AccountsFileError, load_accounts

    try:
        return load_accounts(path)
    except AccountsFileError as exc:
        _fail(str(exc))


StrategyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--strategy",
        help="Strategy name or package.module:Class (repeatable); default: every built-in one.",
    ),
]
ParamsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--params",
        help="Strategy parameters: a JSON file or key=value (repeatable; strategy.key=value"
        " with several strategies).",
    ),
]


def _strategies(names: list[str], params: list[str]) -> tuple[StrategySpec, ...]:
    """``--strategy``/``--params`` exactly as ``scalpflow backtest`` reads them."""
    if params and not names:
        _fail("--params needs --strategy (name the strategies the parameters are for)")
    if not names:
        return ()
    from flows.backtest.spec import BacktestError, strategy_specs
    from flows.cli.backtest import collect_params

    try:
        return strategy_specs(names, collect_params(params))
    except BacktestError as exc:
        _fail(str(exc))


def live_run_config(
    settings: Settings,
    *,
    run_id: str,
    tail: bool,
    trading: bool,
    processes: int,
    accounts: Path | None,
    strategy: list[str],
    params: list[str],
) -> RunConfig:
    """The live run's config, built like the backtest's and the demo's (flows.config.run_config)."""
    from flows.config.run_config import build_run_config

    accounts_file = _accounts_file(accounts)
    if accounts_file is not None and (strategy or params):
        _fail("--accounts names each account's strategies: drop --strategy/--params")
    return build_run_config(
        settings,
        kind="live",
        run_id=run_id,
        strategies=_strategies(strategy, params),
        accounts_file=accounts_file,
        tail=tail,
        trading=trading,
        processes=processes,
        kafka_outputs=True,
    )


FLOW = "flows.pipeline:flow_from_env()"


@app.command("run")
def run(
    run_id: Annotated[str, typer.Option(help="Namespace of this run's rows.")] = "live",
    tail: Annotated[
        bool, typer.Option(help="Keep consuming new ticks (live) or stop at the end.")
    ] = True,
    processes: Annotated[
        int, typer.Option(min=1, help="Bytewax processes (scale with partitions).")
    ] = 1,
    trading: Annotated[bool, typer.Option(help="Run the trading stage too.")] = True,
    metrics_port: Annotated[
        int, typer.Option(help="Prometheus /metrics on this port (+1 per extra process); 0 = off.")
    ] = 0,
    accounts: AccountsOption = None,
    strategy: StrategyOption = None,
    params: ParamsOption = None,
    print_config: Annotated[
        bool,
        typer.Option(
            help="Print the run config (the workers' SCALPFLOW_FLOW_CONFIG JSON, e.g. for the"
            " k8s ConfigMap) and exit."
        ),
    ] = False,
    recovery_dir: Annotated[
        Path | None,
        typer.Option(
            help="Recovery store (snapshots of offsets and state); default"
            " SCALPFLOW_DATA_DIR/recovery/<run-id>, created on first use."
        ),
    ] = None,
    snapshot_interval: Annotated[
        int | None,
        typer.Option(help="Seconds between snapshots (default SCALPFLOW_SNAPSHOT_INTERVAL_S)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Discard the recovery store and start from the first offset.")
    ] = False,
    max_restarts: Annotated[
        int, typer.Option(help="Restarts after a worker crash within 10 minutes, then give up.")
    ] = 5,
    verbose: bool = False,
) -> None:
    """Run the dataflow over Kafka md.ticks into Kafka topics and PostgreSQL; resumes from
    its recovery store after a crash or a stop, restarting crashed workers itself."""
    _setup_logging(verbose)
    settings = Settings()
    dsn = _require_dsn(settings)
    config = live_run_config(
        settings,
        run_id=run_id,
        tail=tail,
        trading=trading,
        processes=processes,
        accounts=accounts,
        strategy=strategy or [],
        params=params or [],
    )
    if print_config:
        sys.stdout.write(config.to_json() + "\n")
        return
    from connectors.files.model_store import model_version_or_none
    from connectors.kafka.admin import BrokerUnavailableError, check_broker, ensure_topics
    from connectors.postgres.db import describe, migrate
    from connectors.postgres.instruments import load_instruments
    from connectors.postgres.runs import record_run
    from flows.cli.run_status import StatusTicker, TopicEnd, free_ports
    from flows.pipeline import ENV_CONFIG

    try:
        check_broker(settings.kafka_bootstrap)
    except BrokerUnavailableError as exc:
        _fail(str(exc))
    migrate(dsn)
    if not load_instruments(dsn):
        _fail(
            "the instrument master is empty: run `scalpflow feed synthetic`"
            " (or an Angel One feed) first"
        )
    ensure_topics(settings.kafka_bootstrap, run_topics(settings))
    # the version its workers will load, from the files (they unpickle the model, not this)
    version = model_version_or_none(config.models_dir)
    digest = record_run(dsn, run_id, "live", config.record(version))
    recovery = _recovery(
        settings, run_id, recovery_dir, snapshot_interval, digest, processes, fresh
    )
    env = {**os.environ, ENV_CONFIG: config.to_json()}
    # /metrics on every process: the status line below reads ticks and event time from it.
    ports = [metrics_port + i for i in range(processes)] if metrics_port else free_ports(processes)
    console.print(f"run_id={run_id}, tail={tail}")
    topic_end = TopicEnd(settings.kafka_bootstrap, settings.topics.ticks)
    emit = lambda s: console.print(s, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    try:
        with StatusTicker(ports, topic_end, emit).running():
            stopped = _supervise(env, processes, ports, recovery, tail, max_restarts)
    finally:
        topic_end.close()
    if not stopped:
        print_run_summary(dsn, run_id, where=f"PostgreSQL {describe(dsn)}")


def run_topics(settings: Settings) -> dict[str, int]:
    """The configured topics (``SCALPFLOW_TOPIC_*``) with the default partition counts."""
    from connectors.kafka.admin import DEFAULT_TOPICS

    defaults = Topics().model_dump()
    return {
        name: DEFAULT_TOPICS.get(defaults[field], 1)
        for field, name in settings.topics.model_dump().items()
    }


# ----------------------------------------------------------------------------------------- risk
def _recovery(
    settings: Settings,
    run_id: str,
    directory: Path | None,
    interval_s: int | None,
    config_hash: str,
    processes: int,
    fresh: bool,
) -> RecoveryArgs:
    """The run's recovery store, made on first use, refused (one line) if incompatible."""
    from datetime import timedelta

    from flows.runtime.recovery import IncompatibleStoreError, default_dir, expected_stamp, prepare

    store = directory or settings.recovery_dir or default_dir(settings.data_dir, run_id)
    try:
        made = prepare(store, expected_stamp(config_hash, processes), fresh=fresh)
    except IncompatibleStoreError as exc:
        _fail(str(exc))
    interval = timedelta(seconds=interval_s or settings.snapshot_interval_s)
    console.print(f"recovery store {store} ({'new' if made else 'resuming'})")
    return RecoveryArgs(store, interval)


def _supervise(
    env: dict[str, str],
    processes: int,
    ports: list[int],
    recovery: RecoveryArgs,
    tail: bool,
    max_restarts: int,
) -> bool:
    """Run the worker processes under ``flows.runtime.supervisor`` until done (False) or stopped by
    a signal (True). Live runs use ``flows.runtime.live_runner`` (its epoch is the snapshot interval
    with a recovery store, as in ``bytewax.run``); replays ``bytewax.run``."""
    from flows.cli.run_status import free_ports
    from flows.runtime.supervisor import (
        RESTARTS_ENV,
        SUPERVISOR_ENV,
        Outcome,
        RestartPolicy,
        Supervisor,
    )

    # the cluster's own ports: free ones (fixed ones clashed with any other run on the host)
    cluster = [p for p in free_ports(2 * processes) if p not in ports][:processes]
    addresses = ";".join(f"127.0.0.1:{p}" for p in cluster)
    runner = ["-m", "flows.runtime.live_runner"] if tail else ["-m", "bytewax.run", FLOW]

    def launch(i: int, restarts: int) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, *runner, *recovery.bytewax_args()]
        if processes > 1:
            cmd += ["-i", str(i), "-a", addresses]
        extra = {
            "SCALPFLOW_METRICS_PORT": str(ports[i]),
            RESTARTS_ENV: str(restarts),
            SUPERVISOR_ENV: str(os.getpid()),  # the workers end if this process is killed
        }
        return subprocess.Popen(cmd, env={**env, **extra})

    supervisor = Supervisor(launch, processes, RestartPolicy(max_restarts=max_restarts))
    supervisor.install_signal_handlers()
    console.print(f"running {processes} process(es) under supervision (pid {os.getpid()})")
    result = supervisor.run()
    if result.outcome is Outcome.GAVE_UP:
        _fail(
            f"flow processes kept failing ({result.restarts} restarts, last {result.codes});"
            " rerun with --verbose for their log"
        )
    if result.outcome is Outcome.STOP_TIMED_OUT:
        _fail("flow processes did not stop within 5 s and were killed (last snapshot kept)")
    if result.outcome is Outcome.STOPPED:
        console.print(f"stopped cleanly after a final snapshot ({result.stop_s:.1f} s)")
        return True
    console.print(f"done ({result.restarts} restart(s))")
    return False


# ----------------------------------------------------------------------------------------- demo
