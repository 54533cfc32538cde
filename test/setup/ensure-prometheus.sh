#!/usr/bin/env bash
# Makes sure this machine has a Prometheus Pushgateway and promtool for the metrics tests. Idempotent.
# The Pushgateway is Debian's prometheus-pushgateway; promtool alone is taken out of Debian's prometheus
# package (48 MB, libc only) instead of installing the whole server (327 MB).
set -euo pipefail
log() { echo "[ensure-prometheus] $*" >&2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
updated=0
update_once() { if [ "$updated" = 0 ]; then $SUDO apt-get update -qq >/dev/null; updated=1; fi; }

if ! command -v prometheus-pushgateway >/dev/null 2>&1; then
  log "installing prometheus-pushgateway"
  update_once
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus-pushgateway >/dev/null
  # The package starts a system service on :9091; the tests start their own on free ports.
  $SUDO systemctl disable --now prometheus-pushgateway >/dev/null 2>&1 || $SUDO service prometheus-pushgateway stop >/dev/null 2>&1 || pkill -f '^/usr/bin/prometheus-pushgateway' || true
fi

if ! command -v promtool >/dev/null 2>&1; then
  log "extracting promtool from Debian's prometheus package"
  update_once
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1)
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
  $SUDO install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
fi
log "pushgateway $(prometheus-pushgateway --version 2>&1 | head -1 | awk '{print $3}'), $(promtool --version 2>&1 | head -1)"
