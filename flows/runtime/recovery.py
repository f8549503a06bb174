"""The live run's Bytewax recovery store: where it lives, how it is made, and when it is refused.

Bytewax snapshots every source partition (Kafka offsets) and every stateful step (candles,
reorder buffers, strategy, risk, execution, portfolio) into SQLite partitions at the end of
each epoch, and a restarted run resumes from the last epoch all partitions completed. What
Bytewax does not do is notice that the pickled state was written by other code: a state class
that gained or lost a field would unpickle into an object that half works. So beside the
partitions lies ``scalpflow-recovery.json`` with

- ``format``: ``SNAPSHOT_FORMAT``, bumped by hand when a state's meaning changes;
- ``schema``: ``state_schema()``, a digest of the attribute layout of every class whose
  instances can sit in a snapshot (read from the sources with ``ast``, so the compiled and the
  pure-Python form agree, and comments or logic edits do not count);
- ``config_hash``: the run's config hash (a snapshot of another config must not continue);
- ``partitions``: how many SQLite partitions were made.

``prepare`` creates the store on first use and checks the stamp on every later one; a
mismatch raises ``IncompatibleStoreError`` whose message says how to start fresh, before any
worker loads anything. The stamp is written last, so a store whose creation was interrupted is
refused too, never half-used.

``python -m flows.runtime.recovery DIR --partitions N [--keep I]`` does the same outside
``scalpflow run`` (the k8s init container: each pod keeps only its own partition).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Bump when a snapshotted state keeps its fields but changes what they mean.
SNAPSHOT_FORMAT = 3  # 2: a --no-tail Kafka partition snapshots (next offset, end); 3: the
# parse step is a stateful step keyed by source partition (price band and duplicate window)
STAMP = "scalpflow-recovery.json"
FRESH_HINT = "start fresh with `scalpflow run --fresh` (or delete {dir})"

#: Modules whose classes may be pickled into a snapshot (state objects and what they hold).
STATE_SOURCES: tuple[str, ...] = (
    "operators/**/*.py",
    "flows/trading.py",
    "flows/market.py",
    "flows/adapters.py",
    "flows/sources/aligned_kafka.py",
)


class IncompatibleStoreError(Exception):
    """The recovery directory holds state this build or config must not resume."""


def _class_layout(node: ast.ClassDef) -> list[str]:
    """Names a class's instances can carry: class-level annotations and ``self.x =``
    assignments anywhere in its body, plus its bases (which contribute theirs)."""
    names: set[str] = set()
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            names.add(item.target.id)
        if isinstance(item, ast.Assign):
            for target in item.targets:
                if isinstance(target, ast.Name) and target.id == "__slots__":
                    names.add("__slots__=" + ast.unparse(item.value))
    for sub in ast.walk(node):
        targets: list[ast.expr] = []
        if isinstance(sub, ast.Assign):
            targets = list(sub.targets)
        elif isinstance(sub, ast.AnnAssign | ast.AugAssign):
            targets = [sub.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                names.add(target.attr)
    bases = sorted("base:" + ast.unparse(b) for b in node.bases)
    return sorted(names) + bases


def state_schema(root: Path = REPO) -> str:
    """Digest of the attribute layout of every class in ``STATE_SOURCES``."""
    digest = hashlib.sha256()
    files = sorted({p for pattern in STATE_SOURCES for p in root.glob(pattern)})
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                rel = path.relative_to(root).as_posix()
                digest.update(f"{rel}:{node.name}={_class_layout(node)}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Stamp:
    """What a recovery store was made for (``STAMP`` beside the partitions)."""

    format: int
    schema: str
    config_hash: str
    partitions: int

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def expected_stamp(config_hash: str, partitions: int) -> Stamp:
    return Stamp(SNAPSHOT_FORMAT, state_schema(), config_hash, partitions)


def read_stamp(directory: Path) -> Stamp:
    path = directory / STAMP
    hint = FRESH_HINT.format(dir=directory)
    if not path.is_file():
        msg = (
            f"{directory} is not a complete scalpflow recovery store (no {STAMP}; "
            f"an interrupted first start?); {hint}"
        )
        raise IncompatibleStoreError(msg)
    try:
        return Stamp(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        msg = f"unreadable {path} ({exc}); {hint}"
        raise IncompatibleStoreError(msg) from None


def check(directory: Path, want: Stamp) -> None:
    """Refuse (one-line ``IncompatibleStoreError``) a store not made for ``want``."""
    have = read_stamp(directory)
    hint = FRESH_HINT.format(dir=directory)
    mismatches = (
        (
            (have.format, have.schema) != (want.format, want.schema),
            f"was written by an incompatible build (snapshot format {have.format}/schema"
            f" {have.schema}, this build {want.format}/{want.schema}); {hint}",
        ),
        (
            have.config_hash != want.config_hash,
            f"belongs to another run config (hash {have.config_hash[:12]}, now"
            f" {want.config_hash[:12]}); use the same settings or {hint}",
        ),
        (
            have.partitions != want.partitions,
            f"has {have.partitions} partition(s), this run needs {want.partitions} (one per"
            f" process); {hint}",
        ),
    )
    for differs, why in mismatches:
        if differs:
            msg = f"the recovery store {directory} {why}"
            raise IncompatibleStoreError(msg)


def _create(directory: Path, want: Stamp, keep: int | None) -> None:
    from bytewax.recovery import init_db_dir

    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=".recovery-") as tmp:
        work = Path(tmp) / "store"
        work.mkdir()
        init_db_dir(work, want.partitions)
        if keep is not None:  # one pod's share of a cluster's partitions
            for part in work.glob("part-*.sqlite3"):
                if part.name != f"part-{keep}.sqlite3":
                    part.unlink()
        (work / STAMP).write_text(want.to_json())  # last: a stamped store is complete
        directory.mkdir(parents=True, exist_ok=True)
        for item in work.iterdir():
            shutil.move(str(item), directory / item.name)


def prepare(directory: Path, want: Stamp, *, fresh: bool = False, keep: int | None = None) -> bool:
    """Make the store on first use (or anew with ``fresh``), else check it; True if made."""
    if fresh and directory.exists():
        shutil.rmtree(directory)
    if directory.exists() and any(directory.iterdir()):
        check(directory, want)
        return False
    _create(directory, want, keep)
    return True


def default_dir(data_dir: Path, run_id: str) -> Path:
    """One store per run id: snapshots of different runs must never mix."""
    return data_dir / "recovery" / run_id


def store_size(directory: Path) -> int:
    """Bytes on disk of the store (partitions with their WAL files)."""
    return sum(p.stat().st_size for p in directory.glob("part-*") if p.is_file())


@dataclass(frozen=True)
class RecoveryArgs:
    """How a worker process runs with recovery (``python -m bytewax.run`` flags)."""

    directory: Path
    snapshot_interval: timedelta
    backup_interval: timedelta = timedelta(0)

    def bytewax_args(self) -> list[str]:
        return [
            "-r",
            str(self.directory),
            "-s",  # bytewax.run takes whole seconds
            str(max(1, round(self.snapshot_interval.total_seconds()))),
            "-b",
            str(round(self.backup_interval.total_seconds())),
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.runtime.recovery", description="Create or check a recovery store."
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--config-hash", default="")
    parser.add_argument(
        "--config-env", default=None, help="hash this environment variable's JSON run config"
    )
    parser.add_argument("--keep", type=int, default=None, help="keep only this partition")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    digest = args.config_hash
    if args.config_env:
        from connectors.postgres.runs import config_hash

        spec = json.loads(os.environ[args.config_env])
        digest = config_hash({k: v for k, v in spec.items() if k != "pg_dsn"})
    want = expected_stamp(digest, args.partitions)
    try:
        made = prepare(args.directory, want, fresh=args.fresh, keep=args.keep)
    except IncompatibleStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{'created' if made else 'checked'} {args.directory}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
