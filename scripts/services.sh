#!/usr/bin/env bash
# Make sure the tools the real services need are here (Java 17+, Maven), installing them with
# apt-get when we can. Sourced by scripts/test.sh and .ci/run.
need_pkg() {  # need_pkg COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    printf '[services] installing %s\n' "$2" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    printf '[services] ERROR: %s is missing; install the Debian package %s\n' "$1" "$2" >&2
    return 1
  fi
}
