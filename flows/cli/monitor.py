"""``scalpflow monitor``: open the Streamlit monitor on data already stored.

With ``SCALPFLOW_PG_DSN`` set it reads that database; otherwise the embedded database the
demo left in ``<data_dir>/pg`` (started for as long as the monitor runs), so a demo's session
can be reopened after the demo has exited.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from flows.config.settings import Settings
from flows.errors import FlowError


def monitor(
    port: Annotated[int | None, typer.Option(help="Port (default: SCALPFLOW_UI_PORT).")] = None,
) -> None:
    """Open the monitor on SCALPFLOW_PG_DSN, or on the demo's embedded database."""
    from connectors.postgres.embedded import start_embedded
    from flows.runtime.demo import embedded_dir, serve_monitor

    settings = Settings()
    console = Console(stderr=True)
    dsn = settings.dsn()
    server = None
    if not dsn:
        data = embedded_dir(settings)
        if not data.is_dir():
            msg = f"no data in {data}: run `scalpflow demo` first, or set SCALPFLOW_PG_DSN"
            raise FlowError(msg)
        dsn, server = start_embedded(data)
    try:
        serve_monitor(dsn, port or settings.ui_port, console, settings.bind_address)
    finally:
        if server is not None:
            server.cleanup()


def register(app: typer.Typer, feed_app: typer.Typer) -> None:
    del feed_app
    app.command("monitor")(monitor)
