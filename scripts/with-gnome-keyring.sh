#!/usr/bin/env bash
# Run a command inside a private D-Bus session bus with a real, unlocked gnome-keyring-daemon
# (the Secret Service API). Everything the keyring stores lives in a fresh temporary folder,
# removed afterwards: nothing of the machine's own keyring is read or touched.
#   bash scripts/with-gnome-keyring.sh .venv/bin/python -c 'import keyring; print(keyring.get_keyring())'
#   bash scripts/with-gnome-keyring.sh sh -c 'keyfob login local && secret-tool lookup service keyfob:local username client_secret'
# Needs gnome-keyring, dbus-run-session and secret-tool: bash scripts/setup-keyring.sh
# KEYRING_PASSWORD: the new login keyring's password (default: a fixed test one).
set -euo pipefail
for tool in gnome-keyring-daemon dbus-run-session; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/setup-keyring.sh" >&2; exit 127; }
done
STATE=$(mktemp -d "${TMPDIR:-/tmp}/keyfob-keyring.XXXXXX")
trap 'rm -rf "$STATE"' EXIT
mkdir -p "$STATE/data" "$STATE/run"
chmod 700 "$STATE" "$STATE/run"
# Fresh each run: against a login.keyring left with another password, --unlock still exits 0
# and every later call raises KeyringLocked.
export XDG_DATA_HOME="$STATE/data"   # keyrings/login.keyring goes here
export XDG_RUNTIME_DIR="$STATE/run"  # gnome-keyring's control socket (else ~/.cache/keyring-*)
export KEYRING_PASSWORD="${KEYRING_PASSWORD:-keyfob-test-keyring-pw}"
# dbus-run-session ends the bus when the command exits; gnome-keyring-daemon exits with it.
# Not exec: the trap must still remove $STATE.
dbus-run-session -- bash -c '
  printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  unset KEYRING_PASSWORD
  exec "$@"' with-gnome-keyring "$@"
