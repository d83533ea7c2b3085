#!/usr/bin/env bash
# Installs what tests/test_keyring_real.py needs: a real Secret Service (gnome-keyring),
# a private D-Bus session (dbus-run-session) and libsecret's secret-tool. Idempotent.
#   bash scripts/setup-keyring.sh        # as root (or through sudo)
set -euo pipefail
if command -v gnome-keyring-daemon >/dev/null && command -v dbus-run-session >/dev/null \
  && command -v secret-tool >/dev/null; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Wait for another apt (e.g. a parallel setup script) instead of failing on its lock.
APT=(apt-get -o DPkg::Lock::Timeout=300)
for try in 1 2 3 4 5 6; do
  $SUDO "${APT[@]}" update -q && break
  [ "$try" -lt 6 ] || exit 1
  sleep 10
done
DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y -q --no-install-recommends \
  gnome-keyring dbus dbus-daemon libsecret-tools
gnome-keyring-daemon --version | head -1
