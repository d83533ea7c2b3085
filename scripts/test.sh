#!/usr/bin/env bash
# Installs what the tests need into .venv, then runs ruff, mypy (strict on src/) and pytest.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k cli     # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# Real servers the tests run against: a missing one fails the run under CI.
bash scripts/setup-oidc.sh          # npm oidc-provider, pinned by tests/oidc/package-lock.json
bash scripts/setup-keyring.sh       # apt: gnome-keyring, dbus (a real Secret Service)
bash scripts/setup-redis.sh         # apt: redis-server (the shared cache for fleets)
bash scripts/setup-browser.sh       # apt: chromium; npm: playwright-core (browser logins)
bash scripts/setup-proxy.sh         # apt: tinyproxy (a real forward proxy)
echo "== ruff"
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
echo "== mypy (strict, src/)"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest -q -p no:cacheprovider "$@"
