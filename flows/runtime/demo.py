"""The embedded default run: synthetic session in-process → flows → embedded PostgreSQL → UI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from connectors.feeds.sources import IteratorSource
from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.files.model_store import load_model_or_none
from connectors.postgres.db import migrate
from connectors.postgres.embedded import start_embedded
from connectors.postgres.instruments import save_instruments
from connectors.postgres.run_summary import count_rows
from connectors.postgres.runs import record_run
from flows.config.accounts import AccountsFile, load_accounts
from flows.config.accounts import record as record_accounts
from flows.config.run_config import build_run_config
from flows.config.settings import Settings
from flows.pipeline import build_flow, run_flow

REPO = Path(__file__).resolve().parents[2]
# Three users with different capital and strategy sets trading the same market
DEMO_ACCOUNTS = REPO / "examples" / "accounts.toml"


@dataclass
class DemoResult:
    run_id: str
    dsn: str
    counts: dict[str, int]
    server: Any = field(default=None, repr=False)

    def close(self) -> None:
        if self.server is not None:
            self.server.cleanup()


def embedded_dir(settings: Settings) -> Path:
    """Where the embedded PostgreSQL keeps its data (kept after the demo: ``scalpflow
    monitor`` reopens it)."""
    return Path(settings.data_dir).resolve() / "pg"


def run_demo(
    settings: Settings,
    *,
    seed: int,
    day: date,
    minutes: int,
    strikes: int = 10,
    rate: float = 1.0,
    progress_factory: Callable[[], Progress] | None = None,
    accounts: AccountsFile | None = None,
) -> DemoResult:
    """Generate a session, run it through the same flows as live, return row counts.
    ``accounts`` default: the three accounts of ``examples/accounts.toml``."""
    accounts = accounts if accounts is not None else load_accounts(DEMO_ACCOUNTS)
    dsn = settings.dsn()
    server = None
    if not dsn:
        dsn, server = start_embedded(embedded_dir(settings))
    try:
        run_id = _run_session(
            settings, dsn, seed, day, minutes, strikes, rate, progress_factory, accounts
        )
        return DemoResult(run_id=run_id, dsn=dsn, counts=count_rows(dsn, run_id), server=server)
    except BaseException:
        if server is not None:
            server.cleanup()
        raise


def _run_session(
    settings: Settings,
    dsn: str,
    seed: int,
    day: date,
    minutes: int,
    strikes: int,
    rate: float,
    progress_factory: Callable[[], Progress] | None,
    accounts: AccountsFile,
) -> str:
    migrate(dsn)
    market = SyntheticMarket(SyntheticConfig.session(seed, day, minutes, strikes, rate))
    instruments = market.instruments()
    save_instruments(dsn, instruments)
    run_id = f"demo-{day.isoformat()}-s{seed}-m{minutes}"
    run = build_run_config(
        settings,
        kind="demo",
        run_id=run_id,
        accounts_file=accounts,
        source={
            "seed": seed,
            "date": day.isoformat(),
            "minutes": minutes,
            "strikes": strikes,
            "rate": rate,
        },
        pg_dsn=dsn,
    )
    model = load_model_or_none(settings.models_dir)
    record_run(dsn, run_id, "demo", run.record(model.version if model is not None else None))
    total = market.raw_count

    def messages(advance: Callable[[int], None]) -> Iterator[tuple[bytes | None, bytes]]:
        for i, msg in enumerate(market.raw_messages(), 1):
            if i % 2000 == 0:
                advance(2000)
            yield msg.key, msg.value

    config = run.pipeline(regime_model=model)
    record_accounts(dsn, run_id, config)
    by_token = {i.token: i for i in instruments}
    if progress_factory is None:
        run_flow(build_flow(IteratorSource(lambda: messages(lambda _n: None)), by_token, config))
    else:
        with progress_factory() as progress:
            task = progress.add_task(
                f"session {day} ({minutes} min) through the flows", total=total
            )
            source = IteratorSource(lambda: messages(lambda n: progress.advance(task, n)))
            run_flow(build_flow(source, by_token, config))
            progress.update(task, completed=total)
    return run_id


def serve_monitor(dsn: str, port: int, console: Console, address: str = "127.0.0.1") -> None:
    """Run the Streamlit monitor until Ctrl-C, listening on ``address`` only (localhost
    unless ``SCALPFLOW_BIND_ADDRESS`` says otherwise)."""
    env = {**os.environ, "SCALPFLOW_PG_DSN": dsn}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "dashboards" / "monitor.py"),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    console.print(f"[bold green]monitor:[/] http://{address}:{port}  (Ctrl-C to stop)")
    proc = subprocess.Popen(cmd, env=env)
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
