"""``scalpflow risk reset``: re-arm an account after a kill switch or halt (journaled)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from flows.cli.app import _fail, app, console
from flows.config.settings import Settings

risk_app = typer.Typer(help="Operator controls of the live accounts.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")


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
    from connectors.kafka.admin import BrokerUnavailableError, check_broker, ensure_topics
    from flows.sources.controls import publish, reset_command

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
