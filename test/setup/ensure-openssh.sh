#!/usr/bin/env bash
# Makes sure this machine has an OpenSSH server binary for the sftp:// tests (Debian's openssh-server).
# Idempotent: does nothing when /usr/sbin/sshd exists. The tests start their own sshd on a free loopback port
# with their own keys and configuration; the package's system service is never started for them.
set -euo pipefail
log() { echo "[ensure-openssh] $*" >&2; }

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null 2>&1; then
  log "installing openssh-server"
  bash "$(dirname "$0")/apt-install.sh" openssh-server openssh-client
fi
log "$(/usr/sbin/sshd -V 2>&1 | head -1)"
