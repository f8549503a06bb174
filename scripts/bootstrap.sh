#!/usr/bin/env bash
# Create .venv (Python 3.11 or 3.12: Bytewax 0.21.1 has no 3.13 wheels) and install scalpflow
# with its dev and embedded-database extras. Re-runs are cheap: it reinstalls only when
# pyproject.toml changed. Usage: scripts/bootstrap.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
say() { printf '[bootstrap] %s\n' "$*" >&2; }

pick_python() {
  local c
  for c in "${SCALPFLOW_PYTHON_BIN:-}" python3.12 python3.11 python3; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  py="$(pick_python)" || { say "ERROR: Python 3.11 or 3.12 is required (Bytewax 0.21.1 ships no 3.13 wheels)"; exit 1; }
  say "creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
stamp=".venv/.scalpflow-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing scalpflow and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev,embedded]"
  echo "$want" > "$stamp"
fi
# The hot operator modules, compiled with mypyc (about twice as fast; a no-op when up to date).
# Without a C compiler the pure-Python modules run: same results, slower.
if ! .venv/bin/python scripts/build_native.py; then
  say "WARNING: native build failed; running the pure-Python operators (same results, slower)"
fi
