"""The recovery store is made once, then resumed only by the build and config that made it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.runtime import recovery
from flows.runtime.recovery import IncompatibleStoreError, expected_stamp, prepare, state_schema
from tests.conftest import REPO


def test_first_use_creates_the_partitions_and_the_stamp_then_resumes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    want = expected_stamp("cfg", 2)
    assert prepare(store, want) is True
    assert sorted(p.name for p in store.glob("part-*.sqlite3")) == [
        "part-0.sqlite3",
        "part-1.sqlite3",
    ]
    assert json.loads((store / recovery.STAMP).read_text())["schema"] == state_schema()
    assert prepare(store, want) is False  # the same build and config: resumed, not remade


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"schema": "0000000000000000"}, "incompatible build"),
        ({"format": recovery.SNAPSHOT_FORMAT + 1}, "incompatible build"),
        ({"config_hash": "other"}, "another run config"),
        ({"partitions": 3}, "partition(s)"),
    ],
)
def test_a_store_of_another_build_or_config_is_refused_with_how_to_start_fresh(
    tmp_path: Path, change: dict[str, object], words: str
) -> None:
    store = tmp_path / "store"
    want = expected_stamp("cfg", 2)
    prepare(store, want)
    stamp = json.loads((store / recovery.STAMP).read_text())
    (store / recovery.STAMP).write_text(json.dumps({**stamp, **change}))
    with pytest.raises(IncompatibleStoreError) as err:
        prepare(store, want)
    message = str(err.value)
    assert words in message
    assert "--fresh" in message
    assert str(store) in message
    assert "\n" not in message
    assert prepare(store, want, fresh=True) is True  # --fresh: a new, empty store
    assert prepare(store, want) is False


def test_a_store_without_its_stamp_is_never_half_used(tmp_path: Path) -> None:
    store = tmp_path / "store"
    prepare(store, expected_stamp("cfg", 1))
    (store / recovery.STAMP).unlink()  # e.g. a first start killed while making the store
    with pytest.raises(IncompatibleStoreError, match="not a complete scalpflow recovery store"):
        prepare(store, expected_stamp("cfg", 1))


def test_a_pod_keeps_only_its_own_partition(tmp_path: Path) -> None:
    assert recovery.main([str(tmp_path / "s"), "--partitions", "3", "--keep", "1"]) == 0
    assert [p.name for p in (tmp_path / "s").glob("part-*")] == ["part-1.sqlite3"]
    assert recovery.main([str(tmp_path / "s"), "--partitions", "3", "--config-hash", "x"]) == 1


def _schema_of(tmp_path: Path, source: str) -> str:
    (tmp_path / "operators").mkdir(exist_ok=True)
    (tmp_path / "operators" / "state.py").write_text(source)
    return state_schema(tmp_path)


def test_the_schema_follows_state_fields_not_comments_or_logic(tmp_path: Path) -> None:
    base = "class S:\n    a: int\n    def f(self):\n        self.b = 1\n"
    digest = _schema_of(tmp_path, base)
    assert _schema_of(tmp_path, "# note\n" + base.replace("= 1", "= 2")) == digest
    assert _schema_of(tmp_path, base + "        self.c = 3\n") != digest  # a new attribute
    assert _schema_of(tmp_path, base.replace("a: int", "a2: int")) != digest  # a renamed field
    assert _schema_of(tmp_path, base.replace("class S:", "class S(Base):")) != digest


def test_the_compiled_and_the_pure_python_form_stamp_the_same_schema() -> None:
    code = "from flows.runtime.recovery import state_schema; print(state_schema())"
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, "SCALPFLOW_NATIVE": native},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for native in ("0", "1")
    }
    assert digests == {state_schema()}
