#!/usr/bin/env bash
# Installs the real OpenID/OAuth2 server the tests run keyfob against (npm oidc-provider,
# pinned by tests/oidc/package-lock.json) into tests/oidc/node_modules (git-ignored).
# tests/test_oidc_provider.py skips without it (fails when CI is set).
#   bash scripts/setup-oidc.sh
set -euo pipefail
cd "$(dirname "$0")/../tests/oidc"
command -v node >/dev/null || { echo "setup-oidc: node is not installed" >&2; exit 1; }
if [ ! -d node_modules/oidc-provider ]; then
  npm ci --no-audit --no-fund
fi
