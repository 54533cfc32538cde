#!/usr/bin/env bash
# Makes sure this machine has the standard tools the encryption tests check interoperability with: Debian's age
# (the Go reference implementation, age and age-keygen), GnuPG, and util-linux's script (a pseudo-terminal for
# age's passphrase prompt); and cron, for the schedule test that uses the real crontab. Idempotent.
set -euo pipefail
log() { echo "[ensure-crypto-tools] $*" >&2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=()
command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || missing+=(age)
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v crontab >/dev/null 2>&1 || missing+=(cron)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq >/dev/null
  # cron's package would start its daemon: keep it from doing so where no policy says otherwise.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && $SUDO rm -f "$policy"' EXIT
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
log "age $(age --version), $(gpg --version | head -1)"
