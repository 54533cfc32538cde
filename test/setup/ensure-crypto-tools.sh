#!/usr/bin/env bash
# Makes sure this machine has the standard tools the encryption tests check interoperability with: Debian's age
# (the Go reference implementation, age and age-keygen), GnuPG, and util-linux's script (a pseudo-terminal for
# age's passphrase prompt); and cron, for the schedule test that uses the real crontab. Idempotent.
set -euo pipefail
log() { echo "[ensure-crypto-tools] $*" >&2; }

missing=()
command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || missing+=(age)
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v crontab >/dev/null 2>&1 || missing+=(cron)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  bash "$(dirname "$0")/apt-install.sh" "${missing[@]}"
fi
log "age $(age --version), $(gpg --version | head -1)"
