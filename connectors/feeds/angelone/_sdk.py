"""Import the SmartAPI SDK safely: no import-time network call, no ``logs/`` in the cwd.

``SmartApi.smartConnect`` runs ``requests.get('https://api.ipify.org')`` with no timeout in
its class body (and then overwrites the answer with a hard-coded address anyway). Without
network that import can hang for minutes. We bind that one lookup to a stub while the module
is imported, so importing the SDK never touches the network.

``SmartConnect.__init__`` also creates ``logs/YYYY-MM-DD/app.log`` relative to the working
directory. The SDK module's ``os`` and ``logzero`` names are replaced with thin shims that
root those relative paths in a configurable directory (``set_sdk_log_dir``).

Every SDK import in scalpflow goes through this module.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import types
from pathlib import Path
from typing import Any

import requests

_lock = threading.Lock()
_log_dir = (
    Path(os.environ.get("SCALPFLOW_ANGELONE_SDK_LOG_DIR", ""))
    if os.environ.get("SCALPFLOW_ANGELONE_SDK_LOG_DIR")
    else Path(tempfile.gettempdir()) / "scalpflow-smartapi"
)


class _NoNetworkResponse:
    """What the SDK's public-IP lookup gets instead of a network answer."""

    text = "127.0.0.1"
    status_code = 200


def _no_network_get(*_args: object, **_kwargs: object) -> _NoNetworkResponse:
    return _NoNetworkResponse()


def set_sdk_log_dir(path: str | Path) -> None:
    """Root the SDK's ``logs/`` folder in ``path`` instead of the working directory."""
    global _log_dir
    _log_dir = Path(path)


def sdk_log_dir() -> Path:
    return _log_dir


def _rooted(path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(_log_dir, path)


def _os_shim() -> types.SimpleNamespace:
    def makedirs(name: str, mode: int = 0o777, exist_ok: bool = False) -> None:
        os.makedirs(_rooted(name), mode=mode, exist_ok=exist_ok)

    return types.SimpleNamespace(path=os.path, makedirs=makedirs, environ=os.environ)


def _logzero_shim(real: Any) -> types.SimpleNamespace:
    def logfile(filename: str, *args: Any, **kwargs: Any) -> Any:
        return real.logfile(_rooted(filename), *args, **kwargs)

    return types.SimpleNamespace(logfile=logfile, logger=real.logger)


def load_sdk() -> tuple[Any, Any, Any]:
    """Return ``(SmartConnect, SmartWebSocketV2, smartExceptions)`` imported safely."""
    with _lock:
        if "SmartApi.smartConnect" not in sys.modules:
            original_get = requests.get
            requests.get = _no_network_get  # type: ignore[assignment]
            try:
                import SmartApi.smartConnect  # noqa: F401 - the import is the point
            finally:
                requests.get = original_get
        import logzero
        import SmartApi.smartConnect as sc_module
        import SmartApi.smartExceptions as sdk_exceptions
        import SmartApi.smartWebSocketV2 as ws_module

        for module in (sc_module, ws_module):
            if not isinstance(module.os, types.SimpleNamespace):
                module.os = _os_shim()
                module.logzero = _logzero_shim(logzero)
        sc_module.get = _no_network_get  # never used after import; keep it harmless
    return sc_module.SmartConnect, ws_module.SmartWebSocketV2, sdk_exceptions
