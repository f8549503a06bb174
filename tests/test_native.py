"""The compiled (mypyc) operator modules: used only when built from exactly these sources.

``scripts/test.sh`` runs the suite with ``SCALPFLOW_REQUIRE_NATIVE=1`` (the compiled modules
must be the ones under test: they are what the benchmarks measure) and then the operator tests
again with ``SCALPFLOW_NATIVE=0`` (the pure-Python sources); the recorded output fingerprints
in ``tests/operators`` must hold in both.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from operators import _native

ROOT = Path(__file__).resolve().parent.parent


def _import_all() -> None:
    for name in _native.NATIVE_MODULES:
        importlib.import_module(f"operators.{name}")


def test_the_configured_form_of_the_operators_is_the_one_in_use() -> None:
    _import_all()
    if os.environ.get(_native.ENV) == "0":
        assert not _native.active
        assert _native.compiled_modules() == []
    elif os.environ.get("SCALPFLOW_REQUIRE_NATIVE") == "1":
        assert _native.stale_reason() is None, _native.stale_reason()
        assert _native.active
        assert _native.compiled_modules() == sorted(_native.NATIVE_MODULES)
    else:
        assert _native.active == (_native.stale_reason() is None)


def _copy_sources(tmp_path: Path) -> tuple[Path, Path]:
    package = tmp_path / "operators"
    package.mkdir()
    for name in _native.NATIVE_MODULES:
        target = _native.source_path(name, package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_native.source_path(name), target)
    build = tmp_path / "native"
    build.mkdir()
    return package, build


def _write_stamp(build: Path, stamp: dict[str, object]) -> None:
    (build / _native.STAMP).write_text(json.dumps(stamp))


def test_a_build_of_the_same_sources_is_fresh(tmp_path: Path) -> None:
    package, build = _copy_sources(tmp_path)
    _write_stamp(build, _native.expected_stamp(package))
    assert _native.stale_reason(build, package) is None


def test_editing_a_compiled_source_makes_the_build_stale(tmp_path: Path) -> None:
    package, build = _copy_sources(tmp_path)
    _write_stamp(build, _native.expected_stamp(package))
    with (package / "market" / "candles.py").open("a") as f:
        f.write("\n# edited after the build\n")
    reason = _native.stale_reason(build, package)
    assert reason is not None
    assert "candles" in reason


def test_a_build_for_another_interpreter_or_module_list_is_stale(tmp_path: Path) -> None:
    package, build = _copy_sources(tmp_path)
    stamp = _native.expected_stamp(package)
    _write_stamp(build, {**stamp, "cache_tag": "cpython-399"})
    assert "cpython-399" in str(_native.stale_reason(build, package))
    sources = dict(stamp["sources"])  # type: ignore[call-overload]
    sources.pop("stages.market")
    _write_stamp(build, {**stamp, "sources": sources})
    assert "compiled" in str(_native.stale_reason(build, package))


def test_no_build_is_reported_as_such(tmp_path: Path) -> None:
    package, _ = _copy_sources(tmp_path)
    reason = _native.stale_reason(tmp_path / "nowhere", package)
    assert reason is not None
    assert "no native build" in reason


def test_switching_the_compiled_modules_off_runs_the_sources() -> None:
    code = (
        "import operators.market.candles as c, operators._native as n; print(c.__file__, n.active)"
    )
    env = {**os.environ, _native.ENV: "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0].endswith("candles.py")
    assert out[1] == "False"


_JOB = """
import hashlib, pickle, sys
from datetime import date
import msgspec
from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from operators.stages.account import AccountConfig, AccountLogic
from operators.ai.adaptive import AdaptiveConfig
from operators.stages.market import MarketLogic, MarketState
from operators.trading.risk_limits import RiskLimits
from operators.stages.underlying import UnderlyingConfig, UnderlyingLogic

market = SyntheticMarket(SyntheticConfig(seed=3, date=date(2026, 7, 7), duration_minutes=8))
ticks = list(market.ticks())
instruments = {i.token: i for i in market.instruments()}
names = ("momentum_breakout",)
market_logic = MarketLogic()
underlying = UnderlyingLogic(
    instruments, UnderlyingConfig(bars_from_ticks=True, forward_ticks=True)
)
account = AccountLogic(instruments, AccountConfig(
    account="a", run_id="r",
    limits=RiskLimits(account="a", capital=10_000_000, strategies=names),
    adaptive=AdaptiveConfig(account="a", strategies=names),
))
mode, path, want_native = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
from operators import _native
compiled = set(_native.compiled_modules())
# the form asked for is the form that ran: every stage module compiled, or none
stage_modules = {"stages.market", "stages.underlying", "stages.account"}
assert (stage_modules <= compiled) if want_native else not compiled, (want_native, compiled)
half = len(ticks) // 2
if mode == "first":
    state = ({}, underlying.new_runtime(market.config.underlying), account.new_runtime())
    todo = ticks[:half]
else:
    with open(path, "rb") as f:
        state = pickle.load(f)
    todo = ticks[half:]
bars, ul_rt, acc_rt = state
digest = hashlib.sha256()
for tick in todo:
    out = market_logic.on_tick(bars.setdefault(tick.token, MarketState()), tick)
    for item in underlying.on_item(ul_rt, tick):
        out.extend(account.on_item(acc_rt, item))
    if mode != "first":
        for event in out:
            digest.update(msgspec.json.encode(event) if hasattr(event, "ts_event") else b"late")
if mode == "first":
    with open(path, "wb") as f:
        pickle.dump(state, f)
else:
    print(digest.hexdigest())
"""


def _run_job(mode: str, path: Path, native: bool) -> str:
    env = {**os.environ, _native.ENV: "1" if native else "0"}
    done = subprocess.run(
        [sys.executable, "-c", _JOB, mode, str(path), "1" if native else "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_snapshots_restore_across_the_compiled_and_pure_python_forms(tmp_path: Path) -> None:
    """A mid-session snapshot (market, strategy and account state) pickled by one form and
    restored by the other continues exactly like one pickled and restored by the same form."""
    outputs = {}
    for writer in (False, True):
        snap = tmp_path / f"snap-{writer}.pkl"
        _run_job("first", snap, native=writer)
        for reader in (False, True):
            outputs[writer, reader] = _run_job("second", snap, native=reader)
    assert len(set(outputs.values())) == 1, outputs
    assert len(next(iter(outputs.values()))) == 64


def test_every_class_of_a_compiled_module_copies_like_python() -> None:
    """A class added to a compiled module without ``_native.picklable`` would deep-copy with
    no attributes once compiled (see ``operators._native.picklable``)."""
    import copyreg
    import enum
    import inspect

    import msgspec

    missing = []
    for name in _native.NATIVE_MODULES:
        module = importlib.import_module(f"operators.{name}")
        for cls_name, cls in vars(module).items():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            if issubclass(cls, msgspec.Struct | enum.Enum | BaseException | tuple):
                continue  # NamedTuples copy and pickle as tuples in both forms
            if getattr(cls, "_is_protocol", False):
                continue
            if copyreg.dispatch_table.get(cls) is None:
                missing.append(f"operators.{name}.{cls_name}")
    assert missing == [], f"register with _native.picklable (and @mypyc_attr): {missing}"
