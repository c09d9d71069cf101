#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl) are on this machine; installs
# Debian's package when they are not and we may (root).
set -euo pipefail
found() {
  command -v initdb >/dev/null 2>&1 && return 0
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  return 1
}
if found && { [ "$(id -u)" != 0 ] || id postgres >/dev/null 2>&1; }; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "installing the PostgreSQL server (Debian package postgresql)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  found || { echo "PostgreSQL server binaries still not found" >&2; exit 1; }
else
  echo "PostgreSQL server binaries (initdb, pg_ctl) are missing: install the postgresql package" >&2
  exit 1
fi
