"""``--compare REV`` for the per-stage benchmarks: the ``operators`` package of a git revision
against the working tree's, in alternating fresh processes (so load from other processes on a
shared machine hits both about equally), on the same inputs; outputs must hash the same.

Each worker reports which form of the operators it ran: the working tree's compiled build is
used when it is fresh (see ``operators/_native.py``), an exported revision has none. Set
``SCALPFLOW_NATIVE=0`` to compare the Python of two revisions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
Result = dict[str, float | int | str]


def operators_form() -> str:
    """``compiled`` or ``pure Python``: how the ``operators`` this process imported run."""
    try:
        from operators import _native
    except ImportError:  # a revision from before the compiled build
        return "pure Python"
    return "compiled" if _native.active else "pure Python"


def run_worker(module: str, operators_root: Path, args: list[str]) -> Result:
    """One ``python -m module --worker ARGS`` whose ``operators`` comes from ``operators_root``.

    ``python -m`` puts the working directory first on ``sys.path``, so running in
    ``operators_root`` makes its ``operators`` win; the rest comes from this checkout.
    """
    done = subprocess.run(
        [sys.executable, "-m", module, "--worker", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=operators_root,
        capture_output=True,
        text=True,
        check=True,
    )
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare_trees(
    rev: str, workdir: Path, pairs: int, module: str, args: list[str]
) -> dict[str, list[Result]]:
    """Export ``operators`` of ``rev`` into ``workdir`` and run the worker ``module`` (with
    ``args``, see ``run_worker``) on it and on the working tree, alternately, ``pairs`` times
    each."""
    old_tree = workdir / "old"
    old_tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "operators"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
    trees = {rev: old_tree, "working tree": ROOT}
    results: dict[str, list[Result]] = {name: [] for name in trees}
    for _ in range(pairs):
        for name, path in trees.items():
            results[name].append(run_worker(module, path, args))
    return results


def report(results: dict[str, list[Result]], key: str, unit: str, detail: str) -> None:
    """Best ``key`` per tree (in ``unit``), each tree's form and output hash, the speed-up."""
    for name, runs in results.items():
        best = min(float(r[key]) for r in runs)
        first = runs[0]
        print(
            f"{name:>14}: {best:6.2f} {unit} ({first['form']}; {detail}) "
            f"sha256 {str(first['sha256'])[:16]}… {first['outputs']}"
        )
    old, new = (min(float(r[key]) for r in runs) for runs in results.values())
    hashes = {str(r["sha256"]) for runs in results.values() for r in runs}
    print(f"speed-up ×{old / new:.2f}; outputs {'identical' if len(hashes) == 1 else 'DIFFER'}")


def compare_parser(description: str | None, pairs: int) -> argparse.ArgumentParser:
    """The options every ``--compare``-able micro-benchmark takes (session length, timed
    rounds, the git revision to compare with and how many old/new process pairs)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--minutes", type=int, default=60, help="session length")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per process")
    parser.add_argument("--compare", metavar="REV", help="also time operators/ of git REV")
    parser.add_argument(
        "--pairs", type=int, default=pairs, help="old/new process pairs (--compare)"
    )
    return parser


def dispatch(
    args: argparse.Namespace,
    worker: Callable[[], object],
    compare: Callable[[str, int, int, int], None],
    alone: Callable[[], None],
) -> None:
    """A ``--compare``-able benchmark's ``main`` after parsing: as a ``--worker`` print
    ``worker()``'s measurement as JSON (for the parent that compares), with ``--compare REV``
    compare the trees, else measure this tree ``alone``."""
    if args.worker:
        print(json.dumps(worker()))
    elif args.compare:
        compare(args.compare, args.minutes, args.rounds, args.pairs)
    else:
        alone()
