#!/usr/bin/env bash
# Installs redis-server (for tests/test_redis_cache.py) when it is missing.
# Idempotent and quiet: does nothing if redis-server is already on PATH; apt's
# chatter is shown only if the install fails.
#   bash scripts/setup-redis.sh
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-redis.sh: redis-server is missing; run as root, or install it yourself" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends redis-server; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-redis.sh: could not install redis-server" >&2
    exit 1
fi
command -v redis-server >/dev/null
