"""``scalpflow backtest``: replay a range of Kafka md.ticks through the live flows.

Mounted by flows/cli/app.py through ``register(app, feed_app)``.

scalpflow backtest --from 2026-07-08T09:15 --to 2026-07-08T10:15 --strategy vwap_reversal
scalpflow backtest ... --strategy momentum_breakout --params p.json --params stop_pct=0.25
scalpflow backtest ... --strategy vwap_reversal --sweep stop_pct=0.1,0.2,0.3 --processes 2

Times without a zone are IST. Parameters: ``--params`` takes a JSON file or ``key=value``
(values read as JSON when they parse); with several strategies write ``strategy.key=value``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from flows.backtest.engine import (
    check_kafka,
    count_range,
    load_instrument_master,
    run_backtest,
    write_pdf,
)
from flows.backtest.spec import (
    RANK_KEYS,
    BacktestEnv,
    BacktestError,
    BacktestResult,
    BacktestSpec,
    load_params_file,
    parse_sweep,
    parse_time,
    strategy_specs,
)
from flows.backtest.sweep import rank, run_sweep, sweep_specs
from flows.cli.options import _progress
from flows.config.accounts import AccountsFileError, load_accounts
from flows.config.accounts import strategy_specs as accounts_strategies
from flows.config.settings import Settings
from operators.strategies.base import StrategyError, parse_param_overrides

err_console = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    one_line = " ".join(message.split())
    err_console.print(f"[bold red]error:[/] {one_line}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=1)


def collect_params(items: list[str]) -> dict[str, Any]:
    """``--params`` values in order: JSON files and ``key=value`` pairs (later ones win)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" in item and not Path(item).is_file():
            try:
                out.update(parse_param_overrides([item]))
            except StrategyError as exc:
                raise BacktestError(str(exc)) from exc
        else:
            out.update(load_params_file(Path(item)))
    return out


# ------------------------------------------------------------------------------------ output
def _num(value: float | int | None, fmt: str = "{:,.2f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return fmt.format(value)


def _rs(paise: float | int | None) -> str:
    return "-" if paise is None else f"{paise / 100:,.2f}"


def metrics_table(result: BacktestResult) -> Table:
    m = result.metrics
    table = Table(title=f"backtest {result.run_id}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("trades", str(m.trades)),
        ("wins / losses", f"{m.wins} / {m.losses}"),
        ("win rate", _num(None if m.win_rate is None else 100 * m.win_rate, "{:.1f}%")),
        ("profit factor", _num(m.profit_factor)),
        ("Sharpe (per trade)", _num(m.sharpe_per_trade)),
        ("Sharpe (daily, annualised)", _num(m.sharpe_daily)),
        ("max drawdown (Rs)", _rs(m.max_drawdown)),
        ("expectancy (Rs/trade)", _rs(m.expectancy)),
        ("gross P&L (Rs)", _rs(m.gross_pnl)),
        ("costs (Rs)", _rs(m.costs)),
        ("net P&L (Rs)", _rs(m.net_pnl)),
        ("contract-note true-up (Rs)", _rs(result.charges_true_up)),
        ("net P&L as the contract notes (Rs)", _rs(m.net_pnl - result.charges_true_up)),
        ("fills", str(result.fills)),
        ("ticks replayed", f"{result.records:,}"),
        ("wall time", f"{result.elapsed_s:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def ranked_table(results: list[BacktestResult], by: str) -> Table:
    table = Table(title=f"sweep ranked by {by}")
    for col in ("#", "params", "trades", "win rate", "PF", "Sharpe", "max DD Rs", "net Rs"):
        if col == "params":
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, justify="right", no_wrap=True)
    table.add_column("run id", overflow="fold")
    for i, r in enumerate(results, start=1):
        m = r.metrics
        params = ", ".join(f"{k}={v}" for k, v in sorted(r.params.items()))
        table.add_row(
            str(i),
            params,
            str(m.trades),
            _num(None if m.win_rate is None else 100 * m.win_rate, "{:.1f}%"),
            _num(m.profit_factor),
            _num(m.sharpe_per_trade),
            _rs(m.max_drawdown),
            _rs(m.net_pnl),
            r.run_id,
        )
    return table


# ----------------------------------------------------------------------------------- command
def backtest_cmd(
    start: Annotated[
        str, typer.Option("--from", help="Range start, ISO time (IST if no zone given).")
    ],
    end: Annotated[str, typer.Option("--to", help="Range end (exclusive), ISO time.")],
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="Strategy name or package.module:Class (repeat for several)."),
    ] = None,
    accounts: Annotated[
        Path | None,
        typer.Option(
            help="Accounts file (TOML, see examples/accounts.toml) instead of --strategy."
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(help="Parameters: a JSON file or key=value (repeatable)."),
    ] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(help="Grid axis key=v1,v2,... (repeatable): run every combination."),
    ] = None,
    processes: Annotated[int, typer.Option(min=1, help="Parallel processes for --sweep.")] = 2,
    report: Annotated[
        Path | None, typer.Option(help="Write a PDF report here (the best run of a sweep).")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="Namespace of the rows (default: from the config hash).")
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="Ticks topic to replay (default: settings' md.ticks).")
    ] = None,
    rank_by: Annotated[
        str, typer.Option(help=f"Sweep ranking: one of {', '.join(RANK_KEYS)}.")
    ] = "net_pnl",
    verbose: bool = False,
) -> None:
    """Replay a range of Kafka md.ticks through the live flows; print metrics (or a ranked
    sweep) and optionally write a PDF report."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    try:
        _backtest(start, end, strategy or [], params or [], sweep or [], processes, report, run_id,
                  topic, rank_by, accounts)  # fmt: skip
    except (BacktestError, AccountsFileError) as exc:
        _fail(str(exc))


def _backtest(
    start: str,
    end: str,
    strategies: list[str],
    params: list[str],
    sweep: list[str],
    processes: int,
    report: Path | None,
    run_id: str | None,
    topic: str | None,
    rank_by: str,
    accounts_file: Path | None = None,
) -> None:
    settings = Settings()
    dsn = settings.dsn()
    if not dsn:
        msg = "set SCALPFLOW_PG_DSN (e.g. from `scalpflow infra up`)"
        raise BacktestError(msg)
    if rank_by not in RANK_KEYS:
        msg = f"--rank-by must be one of {', '.join(RANK_KEYS)}, got {rank_by!r}"
        raise BacktestError(msg)
    if sweep and run_id:
        msg = "--run-id names one run; a --sweep derives one run id per grid point"
        raise BacktestError(msg)
    base = collect_params(params)
    accounts = load_accounts(accounts_file).accounts if accounts_file is not None else ()
    if accounts and (strategies or params or sweep):
        msg = "--accounts names each account's strategies: drop --strategy/--params/--sweep"
        raise BacktestError(msg)
    if not accounts and not strategies:
        msg = "give --strategy (repeatable) or --accounts FILE"
        raise BacktestError(msg)
    spec = BacktestSpec(
        start=parse_time(start, "--from"),
        end=parse_time(end, "--to"),
        strategies=accounts_strategies(accounts) if accounts else strategy_specs(strategies, base),
        accounts=accounts,
        topic=topic or settings.topics.ticks,
        account=settings.account,
        capital_rupees=settings.capital_rupees,
        allowed_lateness_ms=settings.allowed_lateness_ms,
        feed_lag_threshold_ms=settings.feed_lag_threshold_ms,
    )
    grid = parse_sweep(sweep)
    points = sweep_specs(spec, base, grid) if grid else []
    env = BacktestEnv(
        kafka_bootstrap=settings.kafka_bootstrap,
        pg_dsn=dsn,
        models_dir=str(settings.models_dir),
        batch_size=settings.source_batch_size,
    )
    check_kafka(env.kafka_bootstrap)
    from connectors.postgres.db import DatabaseError, migrate

    try:
        migrate(dsn)
    except DatabaseError as exc:
        raise BacktestError(str(exc)) from exc
    instruments = load_instrument_master(dsn)
    total = count_range(env.kafka_bootstrap, spec.topic, spec.start, spec.end)
    out = Console()
    if points:
        with _progress(percent=True) as progress:
            task = progress.add_task(
                f"sweep: {len(points)} backtests on {processes} process(es)", total=len(points)
            )
            results = run_sweep(
                points, env, processes=processes, on_done=lambda _r: progress.advance(task)
            )
        ranked = rank(results, rank_by)
        out.print(ranked_table(ranked, rank_by))
        best = ranked[0]
        out.print(f"best: {best.run_id} (config {best.config_hash[:12]})")
    else:
        with _progress(percent=True) as progress:
            task = progress.add_task(f"replaying {spec.topic}", total=total)
            best = run_backtest(
                spec,
                env,
                run_id=run_id,
                instruments=instruments,
                progress=lambda n: progress.advance(task, n),
            )
            progress.update(task, completed=total)
        out.print(metrics_table(best))
        out.print(f"run id      {best.run_id}")
        out.print(f"config hash {best.config_hash}")
        out.print(f"fills hash  {best.fills_hash}")
        out.print(f"journal     {best.journal_hash}")
    if report is not None:
        path = write_pdf(report, best, dsn)
        out.print(f"report written to {path}")
    out.print(f"next: SCALPFLOW_PG_DSN=... scalpflow monitor  (pick run {best.run_id})")


def register(app: typer.Typer, feed_app: typer.Typer) -> None:
    """Mount ``scalpflow backtest``; ``feed_app`` is unused (the hook is shared)."""
    del feed_app
    app.command("backtest")(backtest_cmd)
