#!/usr/bin/env bash
# The test command: set up everything on a fresh machine (virtualenv, Python deps, Kafka jars
# from Maven Central, Debian's PostgreSQL server, TimescaleDB built from its source tarball),
# start a real Kafka broker and PostgreSQL (TimescaleDB and plain), run pytest (all tests,
# including the slow end-to-end ones), and stop what it started.
#   scripts/test.sh                # everything
#   scripts/test.sh -m "not slow"  # the quick subset; any pytest arguments work
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
. scripts/services.sh
need_pkg java openjdk-17-jre-headless
need_pkg mvn maven
need_pkg chromium chromium           # the monitor's browser test (Playwright drives Debian's)
need_pkg pdftoppm poppler-utils      # ... which also renders a report page to PNG
scripts/bootstrap.sh

started=()
cleanup() {
  for s in "${started[@]}"; do eval "$s stop" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

if ! infra/kafka/kafka.sh status >/dev/null 2>&1; then
  infra/kafka/kafka.sh start
  started+=("infra/kafka/kafka.sh")
fi
# Two PostgreSQL servers: the suite runs against TimescaleDB (built from source once and
# cached, see infra/postgres/timescaledb.sh), and the both-modes tests also against Debian's
# plain server. SCALPFLOW_TEST_TIMESCALEDB=0 runs everything on the plain one. TimescaleDB's
# background jobs are off on the test server: policies run when a test runs them.
pg_start() {  # pg_start PORT TIMESCALEDB(0|1): start unless running; the DSN in $pg_dsn
  local env="PG_PORT=$1 SCALPFLOW_PG_TIMESCALEDB=$2 SCALPFLOW_PG_TIMESCALEDB_JOBS=0"
  if ! env $env infra/postgres/pg.sh status >/dev/null 2>&1; then
    started+=("env $env infra/postgres/pg.sh")
  fi
  pg_dsn="$(env $env infra/postgres/pg.sh start | tail -n 1)"
}
pg_start "${PG_PORT:-54329}" 0
SCALPFLOW_TEST_PLAIN_PG_DSN="$pg_dsn"
if [ "${SCALPFLOW_TEST_TIMESCALEDB:-1}" = 1 ]; then
  pg_start "${SCALPFLOW_TEST_TSDB_PORT:-54339}" 1
fi
SCALPFLOW_TEST_PG_DSN="$pg_dsn"
export SCALPFLOW_TEST_PG_DSN SCALPFLOW_TEST_PLAIN_PG_DSN
export SCALPFLOW_KAFKA_BOOTSTRAP="${SCALPFLOW_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"

# House rules first (skip with SCALPFLOW_SKIP_LINT=1): lint, format and types are part of "green".
if [ -z "${SCALPFLOW_SKIP_LINT:-}" ]; then
  echo "[test] ruff check, ruff format --check, mypy" >&2
  .venv/bin/ruff check --quiet .
  .venv/bin/ruff format --check --quiet .
  .venv/bin/mypy --no-error-summary operators flows connectors dashboards tests benchmarks
fi

# The suite runs against the compiled operators (what the benchmarks measure) and must find
# them; the operator tests then run again on the pure-Python sources, which must give the same
# recorded fingerprints.
SCALPFLOW_REQUIRE_NATIVE=1 .venv/bin/python -m pytest "$@"
if [ $# -eq 0 ]; then
  echo "[test] operator tests again on the pure-Python sources (SCALPFLOW_NATIVE=0)" >&2
  SCALPFLOW_NATIVE=0 .venv/bin/python -m pytest -q tests/operators
fi
