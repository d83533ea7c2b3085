#!/usr/bin/env bash
# Installs tinyproxy (the HTTP forward proxy of tests/test_proxy.py) when it is missing.
# Idempotent and quiet: does nothing if tinyproxy is already installed; apt's chatter
# is shown only if the install fails. The package's own service is stopped and kept
# off: each test run starts its own tinyproxy on a free loopback port.
#   bash scripts/setup-proxy.sh
set -euo pipefail
have() { command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || [ -x /usr/sbin/tinyproxy ]; }
if have; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-proxy.sh: tinyproxy is missing; run as root, or install it yourself" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# policy-rc.d: the package must not start its own proxy on port 8888
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
status=0
{ apt-get update -q && apt-get install -y -q --no-install-recommends tinyproxy; } >"$log" 2>&1 || status=$?
[ -n "$made_policy" ] && rm -f "$policy"
if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    echo "setup-proxy.sh: could not install tinyproxy" >&2
    exit 1
fi
have
