"""CLI for the Angel One connector: live feed, candle backfill, credentials encryption.

Mounted by flows/cli/app.py through ``register(app, feed_app)``: ``scalpflow feed angelone``,
``scalpflow backfill angelone`` (a ``backfill`` group is created if the main app has none) and
``scalpflow angelone encrypt-credentials``.

Standalone: ``python -m flows.cli.angelone --help``.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from connectors.errors import ConnectorError
from connectors.feeds.angelone.backfill import backfill_candles
from connectors.feeds.angelone.errors import AngelOneError
from connectors.feeds.angelone.feed import AngelOneFeed, FeedAuth, FeedConfig, Subscription
from connectors.feeds.angelone.instruments import InstrumentMaster, exchange_type
from connectors.feeds.angelone.packets import MODE_SNAP_QUOTE
from connectors.feeds.angelone.publisher import FeedPublisher
from connectors.feeds.angelone.session import AngelOneSession
from connectors.feeds.angelone.settings import (
    AngelOneCredentials,
    AngelOneSettings,
    generate_key,
    write_encrypted_credentials,
)
from operators.market.sessions import IST, ist_date

log = logging.getLogger(__name__)
app = typer.Typer(help="Angel One SmartAPI tools", no_args_is_help=True)

KAFKA_ENV = "SCALPFLOW_KAFKA_BOOTSTRAP"
PG_ENV = "SCALPFLOW_PG_DSN"


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _login(settings: AngelOneSettings) -> AngelOneSession:
    session = AngelOneSession(settings, settings.credentials())
    session.login()
    return session


def feed_auth(session: AngelOneSession) -> FeedAuth:
    """The websocket credentials of a logged-in session (read fresh at every reconnect)."""
    tokens = session.tokens
    if tokens is None:
        msg = "not logged in"
        raise AngelOneError(msg)
    return FeedAuth(
        auth_token=tokens.jwt_token.get_secret_value(),
        api_key=tokens.api_key.get_secret_value(),
        client_code=tokens.client_code.get_secret_value(),
        feed_token=tokens.feed_token.get_secret_value(),
    )


def build_subscriptions(
    master: InstrumentMaster,
    session: AngelOneSession,
    underlying: str,
    strikes: int,
    expiry: str,
    today: date,
    mode: int = MODE_SNAP_QUOTE,
) -> list[Subscription]:
    """Index + ATM ± ``strikes`` CE/PE of the chosen expiry, ATM from the index's REST LTP."""
    index = master.index(underlying)
    spot = session.ltp(index.exchange, index.symbol, index.token)
    chosen_expiry = master.resolve_expiry(underlying, expiry, today)
    chain = master.chain(underlying, chosen_expiry, round(spot * 100), strikes)
    tokens: dict[int, list[str]] = {exchange_type(index): [index.token]}
    for inst in chain:
        tokens.setdefault(exchange_type(inst), []).append(inst.token)
    log.info("%s spot %.2f, expiry %s, %d options", underlying, spot, chosen_expiry, len(chain))
    return [Subscription(mode=mode, tokens={k: tuple(v) for k, v in tokens.items()})]


def feed(
    underlying: Annotated[str, typer.Option(help="NIFTY or BANKNIFTY")] = "NIFTY",
    strikes: Annotated[int, typer.Option(help="strikes each side of ATM")] = 10,
    expiry: Annotated[str, typer.Option(help="next | following | YYYY-MM-DD")] = "next",
    kafka: Annotated[str, typer.Option(envvar=KAFKA_ENV)] = "127.0.0.1:9092",
    ticks_topic: str = "md.ticks",
    dlq_topic: str = "md.dlq",
    risk_topic: str = "risk.events",
    data_timeout: Annotated[float, typer.Option(help="seconds without data = stall")] = 5.0,
    metrics_port: Annotated[int, typer.Option(help="Prometheus port, 0 = off")] = 9108,
) -> None:
    """Stream live NSE F&O ticks from Angel One into Kafka until Ctrl-C."""
    settings = AngelOneSettings()
    try:
        session = _login(settings)
        master = InstrumentMaster.load(settings.instrument_master_url, settings.instrument_cache)
        today = ist_date(datetime.now(UTC))
        subs = build_subscriptions(master, session, underlying.upper(), strikes, expiry, today)
    except (ConnectorError, ValueError) as exc:
        raise _fail(exc) from None
    if metrics_port:
        from connectors import metrics
        from flows.config.settings import Settings

        metrics.serve(metrics_port, Settings().bind_address)
    publisher = FeedPublisher(
        kafka, ticks_topic=ticks_topic, dlq_topic=dlq_topic, risk_topic=risk_topic
    )
    config = FeedConfig(
        ws_url=settings.ws_url,
        data_timeout_s=data_timeout,
        connect_timeout_s=settings.ws_connect_timeout_s,
        backoff_base_s=settings.ws_backoff_base_s,
        backoff_cap_s=settings.ws_backoff_cap_s,
    )
    AngelOneFeed(
        config, subs, lambda: feed_auth(session), publisher, refresh_auth=session.refresh
    ).run_until_stopped()


def _parse_when(text: str, end_of_day: bool) -> datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM`` in IST (a bare end date means 15:30)."""
    fmt = "%Y-%m-%d %H:%M" if " " in text.strip() else "%Y-%m-%d"
    try:
        naive = datetime.strptime(text.strip(), fmt)  # noqa: DTZ007 - IST attached below
    except ValueError as exc:
        msg = f"expected YYYY-MM-DD or 'YYYY-MM-DD HH:MM', got {text!r}"
        raise typer.BadParameter(msg) from exc
    if fmt == "%Y-%m-%d":
        hour, minute = (15, 30) if end_of_day else (9, 15)
        naive = naive.replace(hour=hour, minute=minute)
    return naive.replace(tzinfo=IST)


def backfill(
    from_: Annotated[str, typer.Option("--from", help="start, IST: YYYY-MM-DD[ HH:MM]")],
    to: Annotated[str, typer.Option("--to", help="end, IST: YYYY-MM-DD[ HH:MM]")],
    interval: Annotated[str, typer.Option(help="ONE_MINUTE ... ONE_DAY")] = "ONE_MINUTE",
    underlying: Annotated[str, typer.Option(help="index to backfill if no --token")] = "NIFTY",
    token: Annotated[list[str] | None, typer.Option(help="instrument token(s)")] = None,
    exchange: Annotated[str, typer.Option(help="exchange of --token")] = "NFO",
    dsn: Annotated[str, typer.Option(envvar=PG_ENV, help="PostgreSQL DSN")] = "",
) -> None:
    """Backfill historical candles into PostgreSQL ``candles`` (run_id '', upsert)."""
    import psycopg

    if not dsn:
        raise _fail(ValueError(f"no database: pass --dsn or set {PG_ENV}"))
    start, end = _parse_when(from_, False), _parse_when(to, True)
    settings = AngelOneSettings()
    try:
        session = _login(settings)
        if token:
            targets = [(exchange, t) for t in token]
        else:
            master = InstrumentMaster([])
            index = master.index(underlying.upper())
            targets = [(index.exchange, index.token)]
        with psycopg.connect(dsn, autocommit=True) as conn:
            total = 0
            for exch, tok in targets:
                total += backfill_candles(
                    session.candles,
                    conn,
                    exchange=exch,
                    token=tok,
                    interval=interval,
                    start=start,
                    end=end,
                    max_days=settings.candle_max_days,
                )
    except (ConnectorError, ValueError, psycopg.Error) as exc:
        raise _fail(exc) from None
    typer.echo(f"backfilled {total} candles for {len(targets)} instrument(s)")


@app.command("encrypt-credentials")
def encrypt_credentials(
    output: Annotated[Path, typer.Argument(help="file to write (mode 0600)")],
    key_env: str = "SCALPFLOW_ANGELONE_CREDENTIALS_KEY",
    new_key: Annotated[bool, typer.Option(help="print a fresh key and exit")] = False,
) -> None:
    """Encrypt Angel One credentials (prompted, not echoed) with AES-256-GCM."""
    if new_key:
        typer.echo(generate_key())
        return
    creds = AngelOneCredentials(
        api_key=typer.prompt("API key", hide_input=True),
        client_code=typer.prompt("client code", hide_input=True),
        mpin=typer.prompt("MPIN", hide_input=True),
        totp_secret=typer.prompt("TOTP secret", hide_input=True),
    )
    try:
        write_encrypted_credentials(output, creds, key_env)
    except ConnectorError as exc:
        raise _fail(exc) from None
    typer.echo(f"wrote {output}; set SCALPFLOW_ANGELONE_CREDENTIALS_FILE={output}")


app.command("feed")(feed)
app.command("backfill")(backfill)


def register(main_app: typer.Typer, feed_app: typer.Typer) -> None:
    """Mount into the main CLI: ``feed angelone``, ``backfill angelone``, ``angelone ...``."""
    feed_app.command("angelone")(feed)
    backfill_app = next(
        (
            g.typer_instance
            for g in main_app.registered_groups
            if g.name == "backfill" and g.typer_instance is not None
        ),
        None,
    )
    if backfill_app is None:
        backfill_app = typer.Typer(help="Historical data into PostgreSQL.", no_args_is_help=True)
        main_app.add_typer(backfill_app, name="backfill")
    backfill_app.command("angelone")(backfill)
    main_app.add_typer(app, name="angelone")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app()
