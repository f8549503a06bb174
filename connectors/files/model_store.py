"""Regime model files: save with version + content hash + metadata, load with verification.

Layout in ``directory``:
- ``regime-<version>.pkl``: the pickled ``RegimeModel`` (estimator + version);
- ``regime-<version>.json``: metadata (version, sha256 of the .pkl bytes, feature names,
  sklearn version, caller's extra metadata such as the walk-forward report);
- ``LATEST``: the version written last, used when no version is asked for.

The hash guards integrity (a truncated or swapped file), not authenticity: only load
model directories you trust, since unpickling runs code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.errors import ConnectorError
from operators.ai.regime import RULES_VERSION, RegimeModel

log = logging.getLogger(__name__)

LATEST = "LATEST"


class ModelStoreError(ConnectorError):
    """Root of model-store errors."""


class ModelNotFoundError(ModelStoreError):
    """No model files for the requested version."""


class ModelIntegrityError(ModelStoreError):
    """The model bytes do not match the recorded sha256, or the file is not a model."""


@dataclass(frozen=True)
class ModelInfo:
    version: str
    sha256: str
    model_path: Path
    metadata_path: Path


def _paths(directory: Path, version: str) -> tuple[Path, Path]:
    return directory / f"regime-{version}.pkl", directory / f"regime-{version}.json"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_model(
    model: RegimeModel,
    directory: Path | str,
    metadata: dict[str, Any] | None = None,
    *,
    promote: bool = True,
) -> ModelInfo:
    """Write the model and its metadata json; with ``promote`` also point LATEST at it.

    An unpromoted model stays loadable by its version, but flows (which load LATEST) keep
    trading with the model they had.
    """
    import sklearn

    if not model.version or "/" in model.version or model.version.startswith("."):
        msg = f"unusable model version {model.version!r}"
        raise ModelStoreError(msg)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(model, protocol=5)
    digest = hashlib.sha256(blob).hexdigest()
    model_path, meta_path = _paths(directory, model.version)
    meta = {
        **(metadata or {}),
        "version": model.version,
        "sha256": digest,
        "model_file": model_path.name,
        "feature_names": list(model.feature_names),
        "seed": model.seed,
        "rows": model.rows,
        "params": model.params,
        "sklearn_version": sklearn.__version__,
    }
    _atomic_write(model_path, blob)
    _atomic_write(meta_path, json.dumps(meta, indent=2, sort_keys=True).encode())
    if promote:
        _atomic_write(directory / LATEST, model.version.encode())
    return ModelInfo(model.version, digest, model_path, meta_path)


def _verified(directory: Path, version: str | None) -> tuple[str, Path, bytes]:
    """The version asked for (or LATEST), its file and its bytes, checked against the sha256
    of its metadata; nothing is unpickled."""
    if version is None:
        latest = directory / LATEST
        if not latest.is_file():
            msg = f"no {LATEST} pointer in {directory}"
            raise ModelNotFoundError(msg)
        version = latest.read_text().strip()
    model_path, meta_path = _paths(directory, version)
    if not model_path.is_file() or not meta_path.is_file():
        msg = f"model {version!r} not found in {directory}"
        raise ModelNotFoundError(msg)
    try:
        meta = json.loads(meta_path.read_text())
        expected = meta["sha256"]
    except (ValueError, KeyError) as exc:
        msg = f"unreadable metadata {meta_path}: {exc}"
        raise ModelIntegrityError(msg) from exc
    if meta.get("version", version) != version:
        msg = f"{meta_path} describes model {meta.get('version')!r}, not {version!r}"
        raise ModelIntegrityError(msg)
    blob = model_path.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected:
        msg = f"sha256 mismatch for {model_path}: expected {expected}, got {actual}"
        raise ModelIntegrityError(msg)
    return version, model_path, blob


def load_model(directory: Path | str, version: str | None = None) -> RegimeModel:
    """Load a model (``version`` or LATEST), verifying the sha256 in its metadata."""
    version, model_path, blob = _verified(Path(directory), version)
    model = pickle.loads(blob)  # integrity-checked above; trusted directory only
    if not isinstance(model, RegimeModel) or model.version != version:
        msg = f"{model_path} does not hold RegimeModel {version!r}"
        raise ModelIntegrityError(msg)
    return model


def model_version_or_none(directory: Path | str | None, version: str | None = None) -> str | None:
    """The version ``load_model_or_none`` would load, read from the files without
    unpickling the model (its bytes checked against their sha256, as loading does); None
    where it would fall back to the rules. For a caller that only records the version (the
    run's config hash): its workers load the model themselves."""
    if directory is None:
        return None
    try:
        return _verified(Path(directory), version)[0]
    except ModelStoreError:
        return None


def load_model_or_none(
    directory: Path | str | None, version: str | None = None
) -> RegimeModel | None:
    """Load the model, or log a loud warning and return None so the flow uses the rules.

    Integrity errors also fall back (a corrupt model must not trade), logged as errors.
    """
    if directory is None:
        log.warning("REGIME MODEL NOT CONFIGURED: falling back to %s", RULES_VERSION)
        return None
    try:
        return load_model(directory, version)
    except ModelNotFoundError as exc:
        log.warning("REGIME MODEL MISSING (%s): falling back to %s", exc, RULES_VERSION)
    except ModelIntegrityError as exc:
        log.error("REGIME MODEL REJECTED (%s): falling back to %s", exc, RULES_VERSION)
    return None
