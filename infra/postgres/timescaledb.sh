#!/usr/bin/env bash
# TimescaleDB for the test server, installed like Kafka is: from source, built once per machine.
# No TimescaleDB package exists for Debian's PostgreSQL, so this builds the extension from its
# source tarball (cached, keyed by TimescaleDB version and PostgreSQL major) and lays out a
# private copy of Debian's PostgreSQL tree with the extension added. Debian's own tree is left
# untouched: a server started from it keeps working without the extension (with the files in
# its tree but not preloaded, `CREATE EXTENSION timescaledb` ends the session).
#   infra/postgres/timescaledb.sh install SYSTEM_BINDIR DEST_ROOT   # prints the new bin dir
#   infra/postgres/timescaledb.sh source                            # which tarball it would use
# Source, first found: $SCALPFLOW_TIMESCALEDB_SRC (a tarball), the repository's
# ../shared/vendor/timescaledb-*.tar.gz, a build already cached for
# $SCALPFLOW_TIMESCALEDB_VERSION (2.28.3), else the release downloaded where a network allows.
# Settings (env): SCALPFLOW_CACHE (~/.cache/scalpflow).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${SCALPFLOW_CACHE:-$HOME/.cache/scalpflow}"
default_version="${SCALPFLOW_TIMESCALEDB_VERSION:-2.28.3}"
say() { printf '[timescaledb] %s\n' "$*" >&2; }
die() { printf '[timescaledb] ERROR: %s\n' "$*" >&2; exit 1; }

version_of() { basename "$1" | sed -n 's/^timescaledb-\([0-9][0-9.]*[0-9]\)\.tar\.gz$/\1/p'; }

# Sets $tarball, $version and $origin (one line for the log saying where the source came from).
find_source() {
  tarball="" origin=""
  if [ -n "${SCALPFLOW_TIMESCALEDB_SRC:-}" ]; then
    [ -f "$SCALPFLOW_TIMESCALEDB_SRC" ] || die "SCALPFLOW_TIMESCALEDB_SRC=$SCALPFLOW_TIMESCALEDB_SRC is not a file"
    tarball="$SCALPFLOW_TIMESCALEDB_SRC" origin="SCALPFLOW_TIMESCALEDB_SRC"
  else
    local vendor="$repo/../shared/vendor" found
    found="$(ls "$vendor"/timescaledb-*.tar.gz 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$found" ]; then
      tarball="$(cd "$(dirname "$found")" && pwd)/$(basename "$found")" origin="the repository's ../shared/vendor"
    fi
  fi
  if [ -n "$tarball" ]; then
    version="$(version_of "$tarball")"
    [ -n "$version" ] || die "cannot read a version from $tarball (expected timescaledb-X.Y.Z.tar.gz)"
  else
    version="$default_version"
    tarball="$cache/timescaledb-$version.tar.gz" origin="download"
    if [ -f "$tarball" ]; then origin="an earlier download"; fi
  fi
}

download() {
  local url="https://github.com/timescale/timescaledb/archive/refs/tags/$version.tar.gz"
  command -v curl >/dev/null || die "no TimescaleDB source: set SCALPFLOW_TIMESCALEDB_SRC to timescaledb-$version.tar.gz (no curl to download it)"
  say "no source tarball found: downloading $url"
  mkdir -p "$cache"
  curl -fsSL --retry 2 -o "$tarball.part" "$url" \
    || die "download failed (no network?): set SCALPFLOW_TIMESCALEDB_SRC to timescaledb-$version.tar.gz or put it in ../shared/vendor"
  mv "$tarball.part" "$tarball"
}

build_deps() {
  local bin="$1" major="$2"
  if [ -f "$("$bin/pg_config" --includedir-server 2>/dev/null)/postgres.h" ] && command -v cmake >/dev/null \
    && command -v make >/dev/null && command -v cc >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null || die "need postgresql-server-dev-$major, cmake, make and a C compiler"
  say "installing build dependencies: postgresql-server-dev-$major cmake build-essential"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    "postgresql-server-dev-$major" cmake build-essential >/dev/null \
    || die "apt-get install postgresql-server-dev-$major cmake failed"
}

# Build into $cache/timescaledb-$version-pg$major/stage (make install DESTDIR=...), once.
build() {
  local bin="$1" major="$2" key_dir="$3"
  [ -f "$key_dir/.built" ] && return 0
  [ -f "$tarball" ] || download
  say "source: $tarball (from $origin)"
  build_deps "$bin" "$major"
  local log="$key_dir/build.log"
  rm -rf "$key_dir" && mkdir -p "$key_dir/src"
  say "building TimescaleDB $version for PostgreSQL $major once (~3-5 min on 2 cores; log: $log)"
  tar xzf "$tarball" -C "$key_dir/src" --strip-components=1 || die "cannot unpack $tarball"
  (
    cd "$key_dir/src"
    BUILD_FORCE_REMOVE=true ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
      -DLINTER=OFF -DSEND_TELEMETRY_DEFAULT=OFF -DPG_CONFIG="$bin/pg_config"
    cd build && make -j"$(nproc)" && make install DESTDIR="$key_dir/stage"
  ) >"$log" 2>&1 || { tail -20 "$log" >&2; die "build failed (full log: $log)"; }
  rm -rf "$key_dir/src"   # the staged files are the cache; the build tree is ~200 MB
  touch "$key_dir/.built"
}

# A copy of the system PostgreSQL tree (bin + lib under lib/postgresql/MAJOR, share under
# share/postgresql/MAJOR, the layout Debian's relocatable build finds relative to its
# binaries) with the staged extension files added. Rebuilt only when either side changed.
install_tree() {
  local bin="$1" dest_root="$2" major="$3" key_dir="$4"
  local pkglib share dest stamp want
  pkglib="$("$bin/pg_config" --pkglibdir)" share="$("$bin/pg_config" --sharedir)"
  dest="$dest_root/pg$major-timescaledb-$version"
  stamp="$("$bin/postgres" --version) / timescaledb $version / $(stat -c %Y "$key_dir/.built")"
  if [ -f "$dest/.installed" ] && [ "$(cat "$dest/.installed")" = "$stamp" ]; then
    echo "$dest/lib/postgresql/$major/bin"; return 0
  fi
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/lib/postgresql" "$dest.tmp/share/postgresql"
  cp -a "$(dirname "$bin")" "$dest.tmp/lib/postgresql/$major"
  cp -a "$share" "$dest.tmp/share/postgresql/$major"
  cp -a "$key_dir/stage$pkglib/." "$dest.tmp/lib/postgresql/$major/lib/"
  cp -a "$key_dir/stage$share/extension/." "$dest.tmp/share/postgresql/$major/extension/"
  local got; got="$("$dest.tmp/lib/postgresql/$major/bin/pg_config" --sharedir)"
  [ "$got" = "$dest.tmp/share/postgresql/$major" ] \
    || die "this PostgreSQL does not find its files relative to its binaries ($got): unsupported layout"
  echo "$stamp" >"$dest.tmp/.installed"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  say "installed TimescaleDB $version into $dest"
  echo "$dest/lib/postgresql/$major/bin"
}

install() {
  local bin="${1:?usage: $0 install SYSTEM_BINDIR DEST_ROOT}" dest_root="${2:?usage: $0 install SYSTEM_BINDIR DEST_ROOT}"
  local major; major="$("$bin/postgres" --version | sed -n 's/.* \([0-9][0-9]*\)\.[0-9].*/\1/p')"
  [ -n "$major" ] || die "cannot tell the PostgreSQL major version of $bin/postgres"
  find_source
  local key_dir="$cache/timescaledb-$version-pg$major"
  # One build or install at a time (the test command and a test fixture may both ask).
  mkdir -p "$cache" "$dest_root"
  exec 9>"$cache/.timescaledb.lock"
  flock 9
  if [ -f "$key_dir/.built" ]; then say "using the cached build $key_dir"; fi
  build "$bin" "$major" "$key_dir"
  install_tree "$bin" "$dest_root" "$major" "$key_dir"
}

case "${1:-}" in
  install) shift; install "$@" ;;
  source) find_source; echo "$tarball (TimescaleDB $version, from $origin)" ;;
  *) echo "usage: $0 install SYSTEM_BINDIR DEST_ROOT | source" >&2; exit 64 ;;
esac
