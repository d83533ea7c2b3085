#!/usr/bin/env bash
# Installs what tests/test_browser_e2e.py needs: Debian's chromium (a real browser, run headless)
# and npm playwright-core (pinned by tests/oidc/package-lock.json; it never downloads a browser)
# next to oidc-provider in tests/oidc/node_modules. Idempotent.
#   bash scripts/setup-browser.sh        # as root (or through sudo) when chromium is missing
set -euo pipefail
cd "$(dirname "$0")/../tests/oidc"
if [ ! -x /usr/lib/chromium/chromium ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Wait for another apt (e.g. a parallel setup script) instead of failing on its lock.
  APT=(apt-get -o DPkg::Lock::Timeout=300)
  for try in 1 2 3 4 5 6; do
    $SUDO "${APT[@]}" update -q && break
    [ "$try" -lt 6 ] || exit 1
    sleep 10
  done
  DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y -q chromium
fi
/usr/lib/chromium/chromium --version
command -v node >/dev/null || { echo "setup-browser: node is not installed" >&2; exit 1; }
if [ ! -d node_modules/oidc-provider ] || [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi
