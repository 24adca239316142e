#!/usr/bin/env bash
# Installs the Debian packages the tests, demo and benchmarks run for real:
# pgbouncer (the pooler in front of the target), pgcopydb (benchmark peer) and
# chromium (the UI check). Only what is missing, and only as root.
set -euo pipefail
declare -A wanted=([pgbouncer]=/usr/sbin/pgbouncer [pgcopydb]=/usr/bin/pgcopydb [chromium]=/usr/bin/chromium)
missing=()
for pkg in "${!wanted[@]}"; do
  [ -x "${wanted[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts its own pgbouncer on 6432; the tests start their own.
if command -v pgbouncer >/dev/null; then
  pkill -f '^/usr/sbin/pgbouncer.*/etc/pgbouncer/pgbouncer.ini' 2>/dev/null || true
fi
