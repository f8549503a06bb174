"""Compile the hot ``operators`` modules with mypyc into ``build/native``.

    .venv/bin/python scripts/build_native.py [--force]

Does nothing when the build already matches the sources (see ``operators/_native.py``). The
build goes to a temporary directory first and replaces ``build/native`` only when complete, so
an interrupted or failed build never leaves a half-built tree that ``operators`` would load.
Exit status 1 (with the compiler's error) when the build fails; the pure-Python modules keep
working either way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(force: bool = False) -> int:
    os.environ["SCALPFLOW_NATIVE"] = "0"  # import the sources' metadata, never the old build
    sys.path.insert(0, str(ROOT))
    from operators import _native

    if not force and _native.stale_reason() is None:
        print(f"[native] up to date: {_native.BUILD_DIR}", file=sys.stderr)
        return 0
    from mypyc.build import mypycify
    from setuptools import Distribution

    started = time.monotonic()
    print(
        f"[native] compiling {len(_native.NATIVE_MODULES)} operator modules with mypyc "
        "(about a minute)",
        file=sys.stderr,
    )
    _native.BUILD_DIR.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=_native.BUILD_DIR.parent, prefix="native-") as tmp:
        work = Path(tmp)
        out = work / "out"
        stamp = _native.expected_stamp()  # hashed before compiling: an edit meanwhile is stale
        os.chdir(ROOT)  # mypyc names modules after paths relative to the working directory
        extensions = mypycify(
            [str(_native.source_path(name).relative_to(ROOT)) for name in _native.NATIVE_MODULES],
            opt_level="3",
            target_dir=str(work / "c"),
            group_name=_native.GROUP,
        )
        dist = Distribution({"name": "scalpflow-native", "ext_modules": extensions})
        dist.script_name = "build_native"
        dist.script_args = [
            "--quiet",
            "build_ext",
            "--build-lib",
            str(out),
            "--build-temp",
            str(work / "obj"),
        ]
        dist.parse_command_line()
        dist.run_commands()
        (out / _native.STAMP).write_text(json.dumps(stamp, indent=1, sort_keys=True))
        if _native.BUILD_DIR.exists():
            shutil.rmtree(_native.BUILD_DIR)
        out.rename(_native.BUILD_DIR)
    print(
        f"[native] built {_native.BUILD_DIR} in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    try:
        return build(force=args.force)
    except (SystemExit, Exception) as exc:  # mypy errors exit; compiler errors raise
        print(f"[native] build failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
