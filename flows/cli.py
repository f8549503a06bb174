"""The ``scalpflow`` command line (typer + rich).

scalpflow demo [--no-ui]            embedded PostgreSQL, in-process synthetic session, monitor
scalpflow monitor                   the monitor on SCALPFLOW_PG_DSN or the demo's stored data
scalpflow infra up|down|status      real Kafka (Maven Central jars) + PostgreSQL here
scalpflow feed synthetic ...        a synthetic session into Kafka md.ticks
scalpflow run ...                   the flows over Kafka into PostgreSQL
scalpflow risk reset ...            re-arm an account after a kill switch/halt (journaled)
scalpflow topics                    offsets per topic/partition (kafka-python)
scalpflow db migrate                apply SQL migrations
scalpflow report contract-note ...  an account's contract note for a day (CSV + PDF)
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.errors import OneLineErrors
from flows.recovery import RecoveryArgs
from flows.settings import Settings, Topics

if TYPE_CHECKING:
    from connectors.synthetic import SyntheticMarket
    from flows.accounts import AccountsFile
    from flows.run_config import RunConfig
    from operators.underlying_stage import StrategySpec

REPO = Path(__file__).resolve().parents[1]
console = Console(stderr=True)

app = typer.Typer(
    cls=OneLineErrors,
    help="scalpflow: streaming paper trading and research for NSE options.",
    no_args_is_help=True,
)
infra_app = typer.Typer(
    help="Start/stop the real Kafka broker and PostgreSQL server here.", no_args_is_help=True
)
feed_app = typer.Typer(help="Market-data feeds into Kafka.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
risk_app = typer.Typer(help="Operator controls of the live accounts.", no_args_is_help=True)
app.add_typer(infra_app, name="infra")
app.add_typer(risk_app, name="risk")
app.add_typer(feed_app, name="feed")
app.add_typer(db_app, name="db")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _fail(message: str) -> NoReturn:
    """Print a one-line error (no traceback) and exit 1."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code=1)


def _require_dsn(settings: Settings) -> str:
    dsn = settings.dsn()
    if not dsn:
        _fail("set SCALPFLOW_PG_DSN (e.g. from `scalpflow infra up`) or use `scalpflow demo`")
    return dsn


# ---------------------------------------------------------------------------------------- infra
def _infra(script: str, action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "infra" / script), action], capture_output=True, text=True, check=False
    )


@infra_app.command("up")
def infra_up() -> None:
    """Install (first time) and start Kafka on 127.0.0.1:9092 and PostgreSQL on 127.0.0.1:54329."""
    for script in ("kafka/kafka.sh", "postgres/pg.sh"):
        res = _infra(script, "start")
        sys.stderr.write(res.stderr)
        if res.returncode != 0:
            _fail(f"{script} start failed")
        if script.startswith("postgres"):
            dsn = res.stdout.strip().splitlines()[-1]
            from connectors.db import migrate

            info = migrate(dsn)
            console.print(f"PostgreSQL storage mode: {info.detail}")
            console.print(f"export SCALPFLOW_PG_DSN={dsn}")


@infra_app.command("down")
def infra_down() -> None:
    """Stop both services (data is kept)."""
    for script in ("kafka/kafka.sh", "postgres/pg.sh"):
        res = _infra(script, "stop")
        sys.stderr.write(res.stderr)


@infra_app.command("status")
def infra_status() -> None:
    """Say whether each service answers."""
    bad = False
    for script in ("kafka/kafka.sh", "postgres/pg.sh"):
        res = _infra(script, "status")
        sys.stderr.write(res.stderr)
        bad |= res.returncode != 0
    if bad:
        raise typer.Exit(code=1)


# ------------------------------------------------------------------------------------------- db
@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations; prints the storage mode (TimescaleDB or plain) and why."""
    from connectors.db import migrate

    info = migrate(_require_dsn(Settings()))
    console.print(f"{info.detail}; applied: {list(info.applied) or 'none'}")


# ----------------------------------------------------------------------------------------- feed
def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _market(
    seed: int, day: date, minutes: int | None, strikes: int, rate: float, faults: float = 0.0
) -> SyntheticMarket:
    from connectors.synthetic import FaultConfig, SyntheticConfig, SyntheticMarket

    fault_config = FaultConfig.every_kind(rate=faults) if faults > 0 else FaultConfig()
    return SyntheticMarket(
        SyntheticConfig.session(seed, day, minutes, strikes, rate, faults=fault_config)
    )


def _trading_date(value: str) -> str:
    """Refuse a malformed ``--date`` as a usage error (one line), not a traceback later."""
    try:
        date.fromisoformat(value)
    except ValueError:
        msg = f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-07-08"
        raise typer.BadParameter(msg) from None
    return value


Seed = Annotated[int, typer.Option(min=0, help="Random seed: same seed and date, same ticks.")]
Day = Annotated[
    str,
    typer.Option(
        "--date",
        callback=_trading_date,
        help="Trading date (YYYY-MM-DD); NIFTY weeklies expire on Tuesday.",
    ),
]
Minutes = Annotated[
    int,
    typer.Option(min=1, max=375, help="Session length from 09:15 IST, minutes (375 = full day)."),
]
Strikes = Annotated[int, typer.Option(min=0, max=40, help="Strikes each side of ATM.")]
Rate = Annotated[float, typer.Option(min=0.01, max=10.0, help="Tick-rate scale (1 = realistic).")]


@feed_app.command("synthetic")
def feed_synthetic(
    seed: Seed = 7,
    day: Day = "2026-07-08",
    minutes: Minutes = 60,
    strikes: Strikes = 10,
    speed: Annotated[
        float, typer.Option(min=0.0, help="0 = as fast as possible; N = N× market time.")
    ] = 0.0,
    rate: Rate = 1.0,
    faults: Annotated[
        float, typer.Option(min=0.0, max=0.2, help="Per-tick rate of each injected fault kind.")
    ] = 0.0,
    partitions: Annotated[
        int, typer.Option(min=1, help="Partitions of the ticks topic if it is created.")
    ] = 3,
    verbose: bool = False,
) -> None:
    """Produce a synthetic session to Kafka (and its instrument master to PostgreSQL)."""
    _setup_logging(verbose)
    settings = Settings()
    from connectors.instruments import save_instruments
    from connectors.kafka_io import BrokerUnavailableError, check_broker
    from flows.feed import produce_synthetic

    market = _market(seed, date.fromisoformat(day), minutes, strikes, rate, faults)
    try:
        check_broker(settings.kafka_bootstrap)
    except BrokerUnavailableError as exc:
        _fail(str(exc))
    dsn = settings.dsn()
    if dsn:
        from connectors.db import migrate

        migrate(dsn)
        save_instruments(dsn, market.instruments())
    else:
        console.print("[yellow]SCALPFLOW_PG_DSN unset: instrument master not stored[/]")
    total = market.raw_count
    with _progress() as progress:
        task = progress.add_task(f"producing to {settings.topics.ticks}", total=total)
        count = produce_synthetic(
            market,
            settings.kafka_bootstrap,
            settings.topics.ticks,
            partitions=partitions,
            speed=speed,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"produced {count} messages ({len(market.instruments())} instruments)"
        f" to {settings.topics.ticks}"
    )
    console.print("next: scalpflow run --no-tail  (the flows over it); scalpflow topics")


# ------------------------------------------------------------------------------------------ run
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
    from flows.accounts import AccountsFileError, load_accounts

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
    from flows.backtest import BacktestError, strategy_specs
    from flows.backtest_cli import collect_params

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
    """The live run's config, built like the backtest's and the demo's (flows.run_config)."""
    from flows.run_config import build_run_config

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
    from connectors.db import describe, migrate
    from connectors.instruments import load_instruments
    from connectors.kafka_io import BrokerUnavailableError, check_broker, ensure_topics
    from connectors.model_store import model_version_or_none
    from connectors.runs import record_run
    from flows.pipeline import ENV_CONFIG
    from flows.run_status import StatusTicker, TopicEnd, free_ports

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
        _print_summary(dsn, run_id, where=f"PostgreSQL {describe(dsn)}")


def _print_summary(dsn: str, run_id: str, *, where: str, embedded: bool = False) -> None:
    """What the run wrote and the commands to look at it (see ``flows.cli_summary``)."""
    from connectors.run_summary import summarise
    from flows.cli_summary import print_summary

    monitor = "scalpflow monitor" if embedded else "SCALPFLOW_PG_DSN=... scalpflow monitor"
    print_summary(
        Console(soft_wrap=True),
        summarise(dsn, run_id),
        where=where,
        next_steps=[
            f"{monitor}  (the monitor on this data; pick run {run_id})",
            *(
                []
                if embedded
                else [f"scalpflow report contract-note --account <id> --date <day> --run {run_id}"]
            ),
        ],
    )


def run_topics(settings: Settings) -> dict[str, int]:
    """The configured topics (``SCALPFLOW_TOPIC_*``) with the default partition counts."""
    from connectors.kafka_io import DEFAULT_TOPICS

    defaults = Topics().model_dump()
    return {
        name: DEFAULT_TOPICS.get(defaults[field], 1)
        for field, name in settings.topics.model_dump().items()
    }


# ----------------------------------------------------------------------------------------- risk
def _event_time(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{value!r} is not an ISO time; use e.g. 2026-07-08T10:30:00+05:30"
        raise typer.BadParameter(msg) from None
    if ts.tzinfo is None:
        msg = f"{value!r} has no UTC offset; add one, e.g. +05:30"
        raise typer.BadParameter(msg)
    return value


@risk_app.command("reset")
def risk_reset(
    account: Annotated[str, typer.Option(help="The account whose kill switch or halt to reset.")],
    reason: Annotated[str, typer.Option(help="Why (journaled with the reset).")],
    at: Annotated[
        str | None,
        typer.Option(
            callback=_event_time,
            help="Event time of the reset (ISO, with offset); default now. For a replayed or"
            " synthetic session, an instant in that session.",
        ),
    ] = None,
) -> None:
    """Re-arm an account after a kill switch or halt: a command on the control topic that the
    account stage journals as OPERATOR_RESET (replays reproduce it)."""
    if not reason.strip():
        _fail("--reason must say why the account is reset")
    settings = Settings()
    from connectors.kafka_io import BrokerUnavailableError, check_broker, ensure_topics
    from flows.controls import publish, reset_command

    try:
        check_broker(settings.kafka_bootstrap)
    except BrokerUnavailableError as exc:
        _fail(str(exc))
    topic = settings.topics.control
    ensure_topics(settings.kafka_bootstrap, {topic: 1})
    command = reset_command(
        account, reason.strip(), datetime.fromisoformat(at) if at is not None else None
    )
    publish(settings.kafka_bootstrap, topic, command)
    console.print(f"reset of {account} at {command.ts_event.isoformat()} sent to {topic}")


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

    from flows.recovery import IncompatibleStoreError, default_dir, expected_stamp, prepare

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
    """Run the worker processes under ``flows.supervisor`` until done (False) or stopped by a
    signal (True). Live runs use ``flows.live_runner`` (its epoch is the snapshot interval
    with a recovery store, as in ``bytewax.run``); replays ``bytewax.run``."""
    from flows.run_status import free_ports
    from flows.supervisor import (
        RESTARTS_ENV,
        SUPERVISOR_ENV,
        Outcome,
        RestartPolicy,
        Supervisor,
    )

    # the cluster's own ports: free ones (fixed ones clashed with any other run on the host)
    cluster = [p for p in free_ports(2 * processes) if p not in ports][:processes]
    addresses = ";".join(f"127.0.0.1:{p}" for p in cluster)
    runner = ["-m", "flows.live_runner"] if tail else ["-m", "bytewax.run", FLOW]

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
@app.command("demo")
def demo(
    seed: Seed = 7,
    day: Day = "2026-07-08",
    minutes: Minutes = 90,
    strikes: Strikes = 10,
    rate: Rate = 1.0,
    ui: Annotated[bool, typer.Option(help="Open the Streamlit monitor afterwards.")] = True,
    accounts: Annotated[
        Path | None,
        typer.Option(
            "--accounts",
            help="Accounts file (TOML); default: the three accounts of examples/accounts.toml.",
        ),
    ] = None,
    verbose: bool = False,
) -> None:
    """The embedded default: a synthetic session in-process through the flows into an embedded
    PostgreSQL, then the Streamlit monitor."""
    _setup_logging(verbose)
    # SIGTERM must unwind like Ctrl-C so the embedded PostgreSQL is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = Settings()
    from flows.accounts import AccountsFileError, load_accounts
    from flows.demo import DEMO_ACCOUNTS, embedded_dir, run_demo

    try:
        accounts_file = load_accounts(accounts or DEMO_ACCOUNTS)
    except AccountsFileError as exc:
        _fail(str(exc))
    try:
        result = run_demo(
            settings,
            accounts=accounts_file,
            seed=seed,
            day=date.fromisoformat(day),
            minutes=minutes,
            strikes=strikes,
            rate=rate,
            progress_factory=_progress,
        )
    except Exception as exc:
        from connectors.db import DatabaseError
        from connectors.embedded_pg import EmbeddedPostgresError

        if isinstance(exc, DatabaseError | EmbeddedPostgresError):
            _fail(str(exc))
        raise
    try:
        from connectors.db import describe

        embedded = result.server is not None
        where = (
            f"embedded PostgreSQL in {embedded_dir(settings)}"
            if embedded
            else f"PostgreSQL {describe(result.dsn)}"
        )
        _print_summary(result.dsn, result.run_id, where=where, embedded=embedded)
        if ui:
            from flows.demo import serve_monitor

            serve_monitor(result.dsn, settings.ui_port, console, settings.bind_address)
    finally:
        result.close()


# --------------------------------------------------------------------------------------- topics
@app.command("topics")
def topics(
    names: Annotated[list[str] | None, typer.Argument(help="Topics (default: all).")] = None,
) -> None:
    """Partitions and offsets of Kafka topics (read with kafka-python)."""
    from connectors.kafka_io import BrokerUnavailableError, check_broker, topic_summary

    settings = Settings()
    try:
        check_broker(settings.kafka_bootstrap, timeout=5.0)
    except BrokerUnavailableError as exc:
        _fail(str(exc))
    table = Table("topic", "partition", "begin", "end", "messages")
    for topic, parts in topic_summary(settings.kafka_bootstrap, names).items():
        for p in parts:
            table.add_row(topic, str(p.partition), str(p.begin), str(p.end), str(p.end - p.begin))
    Console().print(table)


def _mount_optional() -> None:
    """Sub-apps of other rooms, mounted when their modules exist."""
    for module, attr in (
        ("flows.ai_cli", "register"),
        ("flows.backtest_cli", "register"),
        ("flows.angelone_cli", "register"),
        ("flows.report_cli", "register"),
        ("flows.monitor_cli", "register"),
    ):
        try:
            mod = __import__(module, fromlist=[attr])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        getattr(mod, attr)(app, feed_app)


_mount_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
