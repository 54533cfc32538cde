#!/usr/bin/env bash
# Makes sure this machine has an OpenSSH server binary for the sftp:// tests (Debian's openssh-server).
# Idempotent: does nothing when /usr/sbin/sshd exists. The tests start their own sshd on a free loopback port
# with their own keys and configuration; the package's system service is never started for them.
set -euo pipefail
log() { echo "[ensure-openssh] $*" >&2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null 2>&1; then
  log "installing openssh-server"
  $SUDO apt-get update -qq >/dev/null
  # Keep the package from starting a system sshd on port 22: a policy-rc.d that says no, for this install only
  # (container images usually have one already, and then it is left alone).
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && $SUDO rm -f "$policy"' EXIT
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
fi
log "$(/usr/sbin/sshd -V 2>&1 | head -1)"
