"""Model store: save/load round trip, hash verification, missing model → rule fallback."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from connectors.files.model_store import (
    LATEST,
    ModelIntegrityError,
    ModelNotFoundError,
    load_model,
    load_model_or_none,
    model_version_or_none,
    save_model,
)
from operators.ai.regime import RULES_VERSION, RegimeLogic, valid_rows
from tests.operators.test_regime import CFG, bars_from, dataset, fitted, synthetic_candles


def test_save_load_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model = fitted()
    info = save_model(model, tmp_path, metadata={"walk_forward": {"accuracy": 0.9}})
    assert info.sha256 == hashlib.sha256(info.model_path.read_bytes()).hexdigest()
    meta = json.loads(info.metadata_path.read_text())
    assert meta["version"] == model.version
    assert meta["sha256"] == info.sha256
    assert meta["feature_names"] == list(model.feature_names)
    assert meta["walk_forward"] == {"accuracy": 0.9}
    assert (tmp_path / LATEST).read_text() == model.version

    loaded = load_model(tmp_path)  # LATEST
    x, y = dataset()
    mask = valid_rows(x, y)
    np.testing.assert_array_equal(loaded.predict(x[mask]), model.predict(x[mask]))
    assert load_model(tmp_path, model.version).version == model.version


def assert_falls_back(
    where: Path | None, caplog: pytest.LogCaptureFixture, level: int, banner: str
) -> None:
    """``load_model_or_none`` gives None (the run uses the rules) and logs ``banner``."""
    with caplog.at_level(level):
        assert load_model_or_none(where) is None
    assert banner in caplog.text


def test_saving_the_same_model_twice_gives_the_same_hash(tmp_path: Path) -> None:
    a = save_model(fitted(), tmp_path / "a")
    b = save_model(fitted(), tmp_path / "b")
    assert a.sha256 == b.sha256


def test_tampered_model_is_rejected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    info = save_model(fitted(), tmp_path)
    blob = bytearray(info.model_path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    info.model_path.write_bytes(bytes(blob))
    with pytest.raises(ModelIntegrityError, match="sha256 mismatch"):
        load_model(tmp_path)
    assert_falls_back(tmp_path, caplog, logging.ERROR, "REGIME MODEL REJECTED")


def test_missing_model_falls_back_to_rules_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path)
    with pytest.raises(ModelNotFoundError, match="'nope' not found"):
        load_model(tmp_path, "nope")
    assert_falls_back(tmp_path / "empty", caplog, logging.WARNING, "REGIME MODEL MISSING")
    assert RULES_VERSION in caplog.text
    o, h, low, c, v, _ = synthetic_candles()
    logic = RegimeLogic("NIFTY", CFG, model=None)
    events = [logic.on_bar(b) for b in bars_from(o[:60], h[:60], low[:60], c[:60], v[:60])]
    versions = {e.model_version for e in events if e is not None}
    assert versions == {RULES_VERSION}


def test_unconfigured_model_dir_warns(caplog: pytest.LogCaptureFixture) -> None:
    assert_falls_back(None, caplog, logging.WARNING, "REGIME MODEL NOT CONFIGURED")


def test_the_version_is_read_without_unpickling_and_agrees_with_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fitted()
    info = save_model(model, tmp_path / "good")
    assert model_version_or_none(tmp_path / "good") == load_model(tmp_path / "good").version
    tampered = save_model(model, tmp_path / "bad")
    tampered.model_path.write_bytes(info.model_path.read_bytes() + b"x")
    # where loading falls back to the rules, so does the version (the run's hash says rules)
    for where in (tmp_path / "bad", tmp_path / "empty", None):
        assert model_version_or_none(where) is None
        assert load_model_or_none(where) is None

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("unpickled")

    monkeypatch.setattr("connectors.files.model_store.pickle.loads", refuse)
    assert model_version_or_none(tmp_path / "good") == model.version
    assert model_version_or_none(tmp_path / "good", model.version) == model.version
    assert model_version_or_none(tmp_path / "good", "other") is None
