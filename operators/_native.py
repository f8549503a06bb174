"""Run the mypyc-compiled build of the hot operator modules when it matches the sources.

``scripts/build_native.py`` (run by ``scripts/bootstrap.sh``) compiles ``NATIVE_MODULES`` with
mypyc into ``build/native`` and writes a stamp with the sha256 of every compiled source. When
``operators`` is imported, ``activate`` puts ``build/native/operators`` first on the package's
search path, so ``import operators.market.candles`` loads the compiled module, but only if the stamp
matches the sources on disk and ``SCALPFLOW_NATIVE`` is not ``0``. Otherwise the pure-Python
sources run: the same results, about half the speed. A stale build is never used: editing a
source makes its hash differ, and the build is ignored (with a warning) until rebuilt.

This is import plumbing, not domain logic: the modules it compiles stay plain, typed Python,
and every test runs against whichever form is active.
"""

from __future__ import annotations

import copyreg
import hashlib
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The per-tick hot path. Modules that define msgspec structs (mypyc drops their class
#: keywords: orders, fills, costs, kill switch, execution, portfolio) or build on pydantic
#: (strategies, regime, adaptive, risk limits) stay interpreted.
NATIVE_MODULES: tuple[str, ...] = (
    "market.sessions",
    "market.validation",
    "market.candles",
    "market.indicators",
    "stages.market",
    "stages.reorder",
    "options.greeks",
    "options.chain",
    "stages.underlying",
    "trading.feed_health",
    "trading.risk",
    "stages.account",
)

GROUP = "scalpflow_native"  # mypyc's shared library: build/native/scalpflow_native__mypyc.*.so
PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_DIR = PACKAGE_DIR.parent / "build" / "native"
STAMP = "stamp.json"
ENV = "SCALPFLOW_NATIVE"  # "0": always the pure-Python sources

#: True once ``activate`` has put the compiled modules on the path.
active = False


def source_path(name: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The source of a compiled module named relative to ``operators`` (``market.candles``)."""
    return package_dir.joinpath(*name.split(".")).with_suffix(".py")


def source_hashes(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """sha256 of each compiled module's source, as the build stamps them."""
    return {
        name: hashlib.sha256(source_path(name, package_dir).read_bytes()).hexdigest()
        for name in NATIVE_MODULES
    }


def expected_stamp(package_dir: Path = PACKAGE_DIR) -> dict[str, object]:
    """What a build of these sources for this interpreter records."""
    return {"cache_tag": sys.implementation.cache_tag, "sources": source_hashes(package_dir)}


def stale_reason(build_dir: Path = BUILD_DIR, package_dir: Path = PACKAGE_DIR) -> str | None:
    """Why the build in ``build_dir`` cannot be used for these sources, or None if it can."""
    stamp_path = build_dir / STAMP
    if not stamp_path.is_file():
        return f"no native build in {build_dir} (scripts/build_native.py makes one)"
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable {stamp_path}: {exc}"
    want = expected_stamp(package_dir)
    if stamp.get("cache_tag") != want["cache_tag"]:
        return f"native build is for {stamp.get('cache_tag')}, this is {want['cache_tag']}"
    built = stamp.get("sources", {})
    if sorted(built) != sorted(NATIVE_MODULES):
        return f"native build compiled {sorted(built)}, not {sorted(NATIVE_MODULES)}"
    changed = sorted(n for n, h in source_hashes(package_dir).items() if built.get(n) != h)
    if changed:
        older = ", ".join(str(source_path(n, package_dir)) for n in changed)
        return f"native build is older than {older}"
    return None


def activate(package_path: list[str]) -> bool:
    """Put the compiled modules first on ``package_path`` (``operators.__path__``) if usable."""
    global active
    if os.environ.get(ENV, "1") == "0":
        return False
    reason = stale_reason()
    if reason is not None:
        if (BUILD_DIR / STAMP).exists():  # a build exists but is out of date: say so
            log.warning("using pure-Python operators: %s", reason)
        return False
    libs = sorted(BUILD_DIR.glob(f"{GROUP}__mypyc.*"))
    if not libs:
        log.warning("using pure-Python operators: %s has no %s library", BUILD_DIR, GROUP)
        return False
    # The compiled modules import their shared library by top-level name: load it from the
    # build directory without putting that directory on sys.path.
    name = f"{GROUP}__mypyc"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, libs[0])
        if spec is None or spec.loader is None:
            return False
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    package_path.insert(0, str(BUILD_DIR / "operators"))
    active = True
    return True


def activate_subpackage(package_path: list[str], package: str) -> None:
    """Put a subpackage's compiled modules first on its ``__path__`` (each of ``operators``'
    subpackages with compiled modules calls this), once ``activate`` found the build usable."""
    if active:
        sub = BUILD_DIR.joinpath(*package.split("."))
        if sub.is_dir():
            package_path.insert(0, str(sub))


def compiled_modules() -> list[str]:
    """The ``operators`` modules currently loaded from compiled code (for reports, tests)."""
    return sorted(
        name
        for name in NATIVE_MODULES
        if (mod := sys.modules.get(f"operators.{name}")) is not None
        and not str(getattr(mod, "__file__", "")).endswith(".py")
    )


def attributes(obj: Any) -> dict[str, Any]:
    """An object's instance attributes, compiled or not (``vars`` needs a ``__dict__``)."""
    if hasattr(type(obj), "__mypyc_attrs__"):
        return _state_of(obj)
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    names = (n for c in type(obj).__mro__ for n in getattr(c, "__slots__", ()))
    return {n: getattr(obj, n) for n in names if hasattr(obj, n) and not n.startswith("__")}


def _state_of(obj: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name in type(obj).__mypyc_attrs__:
        if name == "__dict__":  # attributes an interpreted subclass added
            extra = getattr(obj, "__dict__", {})
            state.update((k, v) for k, v in extra.items() if not k.startswith("__"))
            continue
        if name.startswith("__"):  # e.g. __hash__ = None next to __eq__: class-level
            continue
        try:
            state[name] = getattr(obj, name)
        except AttributeError:  # an attribute never set (as Python would not pickle it)
            pass
    return state


_CUSTOM_SETSTATE: set[type[Any]] = set()


def restore(obj: Any, state: dict[str, Any]) -> None:
    """Set ``obj``'s attributes from ``state`` (what ``attributes`` returned), compiled or
    not: for classes' own ``__setstate__`` hooks, which cannot ``__dict__.update``."""
    for name, value in state.items():
        object.__setattr__(obj, name, value)  # frozen dataclasses too


def _rebuild(cls: Any, state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)  # no __init__, as unpickling in Python (see ``picklable``)
    if cls in _CUSTOM_SETSTATE:
        obj.__setstate__(state)
    else:
        restore(obj, state)
    return obj


def _reduce(obj: Any) -> tuple[Any, ...]:
    return _rebuild, (type(obj), attributes(obj))


def picklable(*classes: type[Any]) -> None:
    """Let ``copy.deepcopy`` and ``pickle`` (Bytewax snapshots, process exchange) copy these
    classes the same way whether they are compiled or not.

    mypyc's native classes keep attributes in C slots; the copy goes through ``attributes``
    and ``_rebuild`` (a copyreg reducer), so a pickle made by either form restores in the
    other. Each class must also carry ``@mypyc_attr(allow_interpreted_subclasses=True)``: then
    ``cls.__new__`` does not call ``__init__``, as unpickling expects (``serializable=True``
    would say the same, but with it mypy 2.4's mypyc builds classes whose constructor skips
    ``__init__``). Pickles made before this existed (plain Python ``__reduce_ex__``) restore
    in the pure-Python form only.
    """
    for cls in classes:
        copyreg.pickle(cls, _reduce)
        # mypyc adds a __getstate__/__setstate__ pair of its own (whose __setstate__ fails
        # on frozen dataclasses), as do slotted frozen dataclasses; a __setstate__ alone is
        # the class's own hook (e.g. filling in attributes older snapshots lack).
        own = vars(cls)
        if "__setstate__" in own and "__getstate__" not in own:
            _CUSTOM_SETSTATE.add(cls)
