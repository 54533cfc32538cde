#!/usr/bin/env bash
# Makes sure this machine has PostgreSQL 17 and 18 (server and client, each with pgvector) and a PostgreSQL 17
# client built WITHOUT zstd (pg_dump/pg_restore/psql/libpq/pg_config only), for the cross-version and
# compression-fallback tests. They are built from Debian's source packages (postgresql-17 from trixie,
# postgresql-18 and pgvector from sid) into a cache outside any checkout:
#
#   ${PGVB_PG_CACHE:-/var/cache/pgvector-backup/pg}/
#     17/         full install: bin/{postgres,initdb,pg_ctl,pg_dump,pg_restore,psql,pg_config,...}, lib/, share/;
#                 pgvector in lib/postgresql/vector.so (= $(bin/pg_config --pkglibdir)/vector.so)
#     18/         the same for PostgreSQL 18
#     17-nozstd/  client only: bin/{pg_dump,pg_restore,pg_dumpall,psql,pg_config}, lib/libpq.so*
#     .logs/      the last build log of each part
#     .lock       flock(1) lock: a second run waits for the first, then finds everything built
#
# Every part is skipped when it is already there (bin/postgres, or bin/pg_dump for the client-only build, exists and
# bin/pg_config --version prints the expected major; vector.so and vector.control exist for pgvector), so a second
# run takes a fraction of a second. A part is installed into a staging directory and moved into place as a whole,
# so an interrupted build never leaves something that looks complete.
#
# Sources: a private deb-src list in a temp dir (URIs copied at run time from the first URIs: line of
# /etc/apt/sources.list.d/debian.sources, Suites: trixie sid); the system's apt lists are not touched. When the
# source index names a version whose files are already gone from the pool (404), the script steps down to the
# newest version the pool still has and checks the tarball's sha256 against that version's .dsc.
#
# Needs root (or sudo) for apt the first time, and to create the default cache directory. When run as root, the cache
# is made readable by the postgres user (test clusters are started as postgres).
# Builds run under `nice -n 15` with `make -j${PGVB_PG_BUILD_JOBS:-2}`; each takes 2.5-7 minutes.
#
# Environment: PGVB_PG_CACHE (cache root), PGVB_PG_BUILD_JOBS (make -j, default 2),
#              PGVB_PG_LOCK_TIMEOUT (seconds to wait for another run, default 3600).
# Usage: bash test/setup/ensure-postgres-versions.sh
set -Eeuo pipefail
umask 022

log() { echo "[ensure-postgres-versions] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'rc=$?; log "ERROR: failed (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $rc' ERR

CACHE=${PGVB_PG_CACHE:-/var/cache/pgvector-backup/pg}
CACHE=${CACHE%/}
case "$CACHE" in
  /?*) ;;
  *) die "PGVB_PG_CACHE must be an absolute path other than / (got '${PGVB_PG_CACHE:-}')" ;;
esac
JOBS=${PGVB_PG_BUILD_JOBS:-2}
LOCK_TIMEOUT=${PGVB_PG_LOCK_TIMEOUT:-3600}
NICE=(nice -n 15)
# make must not join a jobserver of a make that happens to run this script
MAKE=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "${NICE[@]}" make)
PG_COMMON_FLAGS=(--with-lz4 --without-icu --with-openssl --with-readline --with-zlib)
BUILD_DEPS=(build-essential bison flex pkg-config perl bzip2 xz-utils libzstd-dev liblz4-dev libreadline-dev
  zlib1g-dev libssl-dev)
STEP_DOWN_MAX=4 # how many lower upstream versions to try when the pool lacks the indexed one

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
as_root() {
  if [ -z "$SUDO" ]; then "$@"; return; fi
  command -v sudo >/dev/null 2>&1 || die "root is needed for: $* (run as root, or install sudo)"
  sudo "$@"
}

# ---------------------------------------------------------------------------------------------------------------
# cache directory and lock
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  as_root mkdir -p "$CACHE"
  as_root chown "$(id -u):$(id -g)" "$CACHE"
fi
[ -w "$CACHE" ] || die "cache directory $CACHE is not writable"
chmod 755 "$CACHE" 2>/dev/null || true
exec 9>>"$CACHE/.lock"
if ! flock -n 9; then
  log "another run is building in $CACHE; waiting for its lock (up to ${LOCK_TIMEOUT}s)"
  flock -w "$LOCK_TIMEOUT" 9 || die "timed out after ${LOCK_TIMEOUT}s waiting for $CACHE/.lock"
fi
mkdir -p "$CACHE/.logs"
rm -rf "$CACHE"/.stage-* # left behind by a killed run (we hold the lock, so nobody else is using them)

WORK=""
cleanup() {
  [ -n "$WORK" ] && rm -rf "$WORK"
  rm -rf "$CACHE"/.stage-*."$$" 2>/dev/null || true
}
trap cleanup EXIT
trap 'log "interrupted; nothing half-built is left in $CACHE"; exit 130' INT
trap 'log "terminated; nothing half-built is left in $CACHE"; exit 143' TERM

# ---------------------------------------------------------------------------------------------------------------
# checks
# (helpers used inside $(...) never fail: with set -E a failure there would trip the ERR trap in the subshell)
major_of() { { "$1/bin/pg_config" --version 2>/dev/null || true; } | sed -nE 's/^PostgreSQL ([0-9]+).*/\1/p'; }
version_of() { { "$1/bin/pg_config" --version 2>/dev/null || true; } | sed -nE 's/^PostgreSQL ([0-9][^ ]*).*/\1/p'; }
server_ok() { # name major
  local d=$CACHE/$1
  [ -x "$d/bin/postgres" ] && [ -x "$d/bin/pg_config" ] && [ "$(major_of "$d")" = "$2" ]
}
client_ok() { # name major
  local d=$CACHE/$1 b
  for b in pg_dump pg_restore psql pg_config; do [ -x "$d/bin/$b" ] || return 1; done
  [ "$(major_of "$d")" = "$2" ]
}
vector_ok() { # name
  local pc=$CACHE/$1/bin/pg_config
  [ -x "$pc" ] || return 1
  [ -f "$("$pc" --pkglibdir)/vector.so" ] && [ -f "$("$pc" --sharedir)/extension/vector.control" ]
}
vector_version() {
  local pc=$CACHE/$1/bin/pg_config
  [ -x "$pc" ] || return 0
  sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" "$("$pc" --sharedir)/extension/vector.control" 2>/dev/null || true
}
# pg_dump checks the compression method before it connects, so a connection that cannot succeed is enough to probe.
zstd_support() { # name -> prints yes/no
  local out
  [ -x "$CACHE/$1/bin/pg_dump" ] || { echo missing; return 0; }
  out=$(env -u LD_LIBRARY_PATH PGCONNECT_TIMEOUT=2 "$CACHE/$1/bin/pg_dump" -Z zstd:1 -f /dev/null \
    -d "host=/nonexistent-pgvb-probe port=1 dbname=x user=x" 2>&1 || true)
  case "$out" in
    *"does not support compression with ZSTD"*) echo no ;;
    *) echo yes ;;
  esac
}

need17=0 need18=0 needv17=0 needv18=0 needc17=0
server_ok 17 17 || need17=1
server_ok 18 18 || need18=1
{ [ $need17 = 1 ] || ! vector_ok 17; } && needv17=1
{ [ $need18 = 1 ] || ! vector_ok 18; } && needv18=1
{ client_ok 17-nozstd 17 && [ "$(zstd_support 17-nozstd)" = no ]; } || needc17=1

TIMINGS=()
summary() {
  local n
  for n in 17 18; do
    log "  $CACHE/$n: PostgreSQL $(version_of "$CACHE/$n"), pgvector $(vector_version "$n"), zstd $(zstd_support "$n")"
  done
  log "  $CACHE/17-nozstd: PostgreSQL $(version_of "$CACHE/17-nozstd") client, zstd $(zstd_support 17-nozstd)"
  for n in "${TIMINGS[@]}"; do log "  took: $n"; done
}

if [ $((need17 + need18 + needv17 + needv18 + needc17)) = 0 ]; then
  log "everything is already built in $CACHE:"
  summary
  exit 0
fi

# ---------------------------------------------------------------------------------------------------------------
# build dependencies
missing=()
for p in "${BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing build dependencies: ${missing[*]}"
  for p in "${missing[@]}"; do
    if ! apt-cache show --no-all-versions "$p" >/dev/null 2>&1; then
      log "apt lists are missing $p: apt-get update"
      as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || die "apt-get update failed"
      break
    fi
  done
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi

# ---------------------------------------------------------------------------------------------------------------
# sources, from a private deb-src list
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgvb-pg-build.XXXXXX")
chmod 755 "$WORK"
uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$uri" ] || die "no URIs: line in /etc/apt/sources.list.d/debian.sources to take the Debian mirror from"
uri=${uri%/}
mkdir -p "$WORK/apt/lists/partial"
cat >"$WORK/apt/src.sources" <<SRC
Types: deb-src
URIs: $uri
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
APT_OPTS=(-o "Dir::Etc::SourceList=$WORK/apt/src.sources" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$WORK/apt/lists")
log "fetching the trixie and sid source indexes from $uri"
apt-get "${APT_OPTS[@]}" update -qq >"$WORK/apt/update.log" 2>&1 || {
  cat "$WORK/apt/update.log" >&2
  die "apt-get update of the private deb-src list failed"
}

# Lower versions to try when the indexed one is gone from the pool: 17.12-0+deb13u1 -> 17.11-0+deb13u1, 17.11-1, ...
step_downs() {
  local v=$1 up rev prefix last i u
  up=${v#*:}
  if [[ $up == *-* ]]; then rev=${up##*-}; up=${up%-*}; else rev=""; fi
  prefix=${up%.*}
  last=${up##*.}
  [[ $last =~ ^[0-9]+$ ]] && [ "$prefix" != "$up" ] || return 0
  for ((i = 1; i <= STEP_DOWN_MAX && last - i >= 0; i++)); do
    u=$prefix.$((last - i))
    if [ -n "$rev" ]; then
      echo "$u-$rev"
      [ "$rev" = 1 ] || echo "$u-1"
    else
      echo "$u"
    fi
  done
}

declare -A SRC_TARBALL SRC_VERSION
fetch_source() { # pkg: downloads and checks the upstream tarball, sets SRC_TARBALL[pkg] and SRC_VERSION[pkg]
  local pkg=$1 dest=$WORK/src/$1 indexed directory v fv dsc line sha file got="" candidates
  mkdir -p "$dest"
  chmod 755 "$dest"
  # let apt's unprivileged _apt user download into it, as apt prefers
  [ "$(id -u)" = 0 ] && getent passwd _apt >/dev/null && chown _apt "$dest"
  indexed=$(apt-cache "${APT_OPTS[@]}" showsrc "$pkg" 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V -r -u)
  [ -n "$indexed" ] || die "$pkg is not in the trixie/sid source index"
  directory=$(apt-cache "${APT_OPTS[@]}" showsrc "$pkg" | awk '/^Directory:/ {print $2; exit}')
  candidates=$( { echo "$indexed"; step_downs "$(echo "$indexed" | head -1)"; } | sort -V -r -u)
  for v in $candidates; do
    fv=${v#*:}
    dsc=$dest/${pkg}_$fv.dsc
    if grep -qxF "$v" <<<"$indexed"; then
      if (cd "$dest" && apt-get "${APT_OPTS[@]}" source --download-only "$pkg=$v") >"$dest/get.log" 2>&1; then
        got=$v
        log "$pkg $v: downloaded with apt-get source (hashes checked against the signed index)"
        break
      fi
      grep -q ' 404 ' "$dest/get.log" || { cat "$dest/get.log" >&2; die "apt-get source $pkg=$v failed"; }
      log "$pkg $v is in the source index but its files are gone from the pool (404); stepping down"
    else
      # not in the index: probe the pool for the .dsc
      if /usr/lib/apt/apt-helper download-file "$uri/$directory/${pkg}_$fv.dsc" "$dsc" >"$dest/get.log" 2>&1; then
        got=$v
        log "$pkg $v: found in the pool, not in the index"
        break
      fi
      rm -f "$dsc"
      grep -q ' 404 ' "$dest/get.log" || { cat "$dest/get.log" >&2; die "download of ${pkg}_$fv.dsc failed"; }
    fi
  done
  [ -n "$got" ] || die "no version of $pkg found in the pool (tried: $(echo $candidates))"
  [ -f "$dsc" ] || die "$dsc missing after download"
  line=$(awk '/^Checksums-Sha256:/ {f=1; next} /^[^ ]/ {f=0} f && $3 ~ /\.orig\.tar\./ {print $1, $3; exit}' "$dsc")
  [ -n "$line" ] || die "no orig tarball in the Checksums-Sha256 of $dsc"
  sha=${line%% *}
  file=${line#* }
  if [ ! -f "$dest/$file" ]; then
    /usr/lib/apt/apt-helper download-file "$uri/$directory/$file" "$dest/$file" "SHA256:$sha" >"$dest/get.log" 2>&1 ||
      { cat "$dest/get.log" >&2; die "download of $file failed"; }
  fi
  echo "$sha  $dest/$file" | sha256sum -c --status ||
    die "sha256 of $file does not match its .dsc ($sha): refusing to build it"
  log "$pkg $got: $file sha256 $sha matches ${pkg}_$fv.dsc"
  SRC_TARBALL[$pkg]=$dest/$file
  SRC_VERSION[$pkg]=$got
}

[ $need17 = 1 ] || [ $needc17 = 1 ] && fetch_source postgresql-17
[ $need18 = 1 ] && fetch_source postgresql-18
[ $needv17 = 1 ] || [ $needv18 = 1 ] && fetch_source pgvector

# ---------------------------------------------------------------------------------------------------------------
# builds
fail_with_log() { # what logfile
  tail -n 40 "$2" >&2 || true
  die "$1 failed; the full log is $2"
}
check_postgres_can_read() { # dir
  [ "$(id -u)" = 0 ] && getent passwd postgres >/dev/null || return 0
  chmod -R a+rX "$1"
  runuser -u postgres -- test -r "$1/bin/pg_config" ||
    die "the postgres user cannot read $1 (a parent directory of $CACHE is not world-searchable?)"
}

# build_pg NAME MAJOR server|client CONFIGURE-ARGS...
build_pg() {
  local name=$1 major=$2 kind=$3
  shift 3
  local pkg=postgresql-$major prefix=$CACHE/$name stage=$CACHE/.stage-$name.$$ src=$WORK/build-$name
  local logf=$CACHE/.logs/$name.log t0 d
  t0=$(date +%s)
  log "building PostgreSQL $major ($pkg ${SRC_VERSION[$pkg]}, $kind) into $prefix, niced; log: $logf"
  mkdir -p "$src"
  tar -xf "${SRC_TARBALL[$pkg]}" -C "$src" --strip-components=1
  (cd "$src" && "${NICE[@]}" ./configure --prefix="$prefix" "$@") >"$logf" 2>&1 || fail_with_log "configure of $name" "$logf"
  if [ "$kind" = server ]; then
    "${MAKE[@]}" -C "$src" -j"$JOBS" >>"$logf" 2>&1 || fail_with_log "make of $name" "$logf"
    "${MAKE[@]}" -C "$src" install DESTDIR="$stage" >>"$logf" 2>&1 || fail_with_log "make install of $name" "$logf"
  else
    for d in src/interfaces/libpq src/bin/pg_dump src/bin/psql src/bin/pg_config; do
      "${MAKE[@]}" -C "$src/$d" -j"$JOBS" >>"$logf" 2>&1 || fail_with_log "make -C $d of $name" "$logf"
      "${MAKE[@]}" -C "$src/$d" install DESTDIR="$stage" >>"$logf" 2>&1 ||
        fail_with_log "make -C $d install of $name" "$logf"
    done
  fi
  [ -d "$stage$prefix" ] || die "make install of $name left nothing in $stage$prefix"
  cat >"$stage$prefix/BUILD-INFO" <<INFO
source: $pkg ${SRC_VERSION[$pkg]} ($(basename "${SRC_TARBALL[$pkg]}"), sha256 $(sha256sum "${SRC_TARBALL[$pkg]}" | cut -d' ' -f1))
configure: --prefix=$prefix $*
kind: $kind
built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)
INFO
  rm -rf "$prefix"
  mv "$stage$prefix" "$prefix"
  rm -rf "$stage" "$src"
  check_postgres_can_read "$prefix"
  local secs=$(($(date +%s) - t0))
  TIMINGS+=("PostgreSQL $(version_of "$prefix") ($name): ${secs}s")
  log "built PostgreSQL $(version_of "$prefix") into $prefix in ${secs}s"
}

build_vector() { # NAME
  local name=$1 pc=$CACHE/$1/bin/pg_config src=$WORK/pgvector-$1 logf=$CACHE/.logs/pgvector-$1.log t0
  t0=$(date +%s)
  log "building pgvector ${SRC_VERSION[pgvector]} for $CACHE/$name; log: $logf"
  mkdir -p "$src"
  tar -xf "${SRC_TARBALL[pgvector]}" -C "$src" --strip-components=1
  # OPTFLAGS= : no -march=native, so the cache stays usable if it is copied to another machine (Debian does the same)
  "${MAKE[@]}" -C "$src" -j"$JOBS" PG_CONFIG="$pc" OPTFLAGS= >"$logf" 2>&1 ||
    fail_with_log "pgvector build for $name" "$logf"
  "${MAKE[@]}" -C "$src" install PG_CONFIG="$pc" OPTFLAGS= >>"$logf" 2>&1 ||
    fail_with_log "pgvector install for $name" "$logf"
  rm -rf "$src"
  vector_ok "$name" || die "pgvector install for $name did not produce vector.so and vector.control"
  check_postgres_can_read "$CACHE/$name"
  local secs=$(($(date +%s) - t0))
  TIMINGS+=("pgvector $(vector_version "$name") for $name: ${secs}s")
  log "built pgvector $(vector_version "$name") for $name in ${secs}s"
}

[ $need17 = 1 ] && build_pg 17 17 server --with-zstd "${PG_COMMON_FLAGS[@]}"
[ $needv17 = 1 ] && build_vector 17
[ $need18 = 1 ] && build_pg 18 18 server --with-zstd "${PG_COMMON_FLAGS[@]}"
[ $needv18 = 1 ] && build_vector 18
[ $needc17 = 1 ] && build_pg 17-nozstd 17 client --without-zstd "${PG_COMMON_FLAGS[@]}"

# ---------------------------------------------------------------------------------------------------------------
# final checks
server_ok 17 17 && vector_ok 17 || die "$CACHE/17 is incomplete after the build"
server_ok 18 18 && vector_ok 18 || die "$CACHE/18 is incomplete after the build"
client_ok 17-nozstd 17 || die "$CACHE/17-nozstd is incomplete after the build"
[ "$(zstd_support 17)" = yes ] || die "$CACHE/17/bin/pg_dump does not support zstd"
[ "$(zstd_support 18)" = yes ] || die "$CACHE/18/bin/pg_dump does not support zstd"
[ "$(zstd_support 17-nozstd)" = no ] || die "$CACHE/17-nozstd/bin/pg_dump supports zstd, but must not"
log "done:"
summary
