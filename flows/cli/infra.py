"""``scalpflow infra up|down|status``, ``scalpflow db migrate``: local services, the schema."""

from __future__ import annotations

import subprocess
import sys

import typer

from flows.cli.app import REPO, _fail, _require_dsn, app, console
from flows.config.settings import Settings

infra_app = typer.Typer(
    help="Start/stop the real Kafka broker and PostgreSQL server here.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(infra_app, name="infra")
app.add_typer(db_app, name="db")


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
            from connectors.postgres.db import migrate

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
    from connectors.postgres.db import migrate

    info = migrate(_require_dsn(Settings()))
    console.print(f"{info.detail}; applied: {list(info.applied) or 'none'}")
