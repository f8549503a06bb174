#!/usr/bin/env bash
# The main job on the embedded default: set up the virtualenv, then run a synthetic NSE session
# in-process through the flows into an embedded PostgreSQL (pip wheel) and open the Streamlit
# monitor. Any `scalpflow demo` option works: scripts/demo.sh --minutes 375 --no-ui
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
scripts/bootstrap.sh
exec .venv/bin/scalpflow demo "$@"
