#!/usr/bin/env bash
# Makes sure this machine has PostgreSQL server binaries and the pgvector extension for them.
# Idempotent: does nothing when vector.so is already installed. Needs root (apt) the first time.
# pgvector is not packaged for Debian 12, so it is built from the next Debian release's source package.
set -euo pipefail

log() { echo "[ensure-pgvector] $*" >&2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

pick_pg_config() {
  local pc
  for pc in $(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V -r); do
    echo "$pc"; return 0
  done
  return 1
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq >/dev/null; apt_updated=1; fi
}

# 1. server binaries (initdb, pg_ctl, postgres)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  log "installing PostgreSQL server"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
major=$(ls /usr/lib/postgresql | sort -V | tail -1)
bindir=/usr/lib/postgresql/$major/bin

# 2. pg_config and the server headers (server-dev) are needed to find and build the extension
if [ ! -x "$bindir/pg_config" ] || [ ! -f "$("$bindir/pg_config" --includedir-server)/postgres.h" ]; then
  log "installing postgresql-server-dev-$major"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-server-dev-$major" >/dev/null
fi
pg_config="$bindir/pg_config"
if [ -f "$("$pg_config" --pkglibdir)/vector.so" ] && [ -f "$("$pg_config" --sharedir)/extension/vector.control" ]; then
  log "pgvector already installed for PostgreSQL $major"
  exit 0
fi

# 3. build pgvector from the next Debian release's source package, with a private apt source list
log "building pgvector for PostgreSQL $major from Debian's source package"
command -v make >/dev/null && command -v cc >/dev/null || { apt_update_once; $SUDO apt-get install -y -qq build-essential >/dev/null; }
tmp=$(mktemp -d)
chmod 755 "$tmp"   # apt's _apt user downloads into it
trap 'rm -rf "$tmp"' EXIT
uri=$(grep -m1 '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}')
if [ -z "$uri" ]; then
  uri=$(grep -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}')
fi
[ -n "$uri" ] || { log "cannot find a Debian mirror in the apt sources"; exit 1; }
mkdir -p "$tmp/lists/partial" "$tmp/src"
cat > "$tmp/src.sources" <<SRC
Types: deb-src
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
opts=(-o "Dir::Etc::SourceList=$tmp/src.sources" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$tmp/lists")
apt-get "${opts[@]}" update -qq >/dev/null
(cd "$tmp/src" && apt-get "${opts[@]}" source --download-only pgvector >/dev/null 2>&1)
tarball=$(ls "$tmp"/src/pgvector_*.orig.tar.* | head -1)
mkdir -p "$tmp/build"
tar -xf "$tarball" -C "$tmp/build" --strip-components=1
make -s -C "$tmp/build" PG_CONFIG="$pg_config" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
$SUDO make -s -C "$tmp/build" install PG_CONFIG="$pg_config" >/dev/null
log "pgvector $(grep default_version "$("$pg_config" --sharedir)/extension/vector.control" | cut -d"'" -f2) installed"
