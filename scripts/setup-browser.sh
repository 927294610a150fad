#!/usr/bin/env bash
# Headless Chromium (Debian's package) and axe-core (pinned in tests/support/axe, `npm ci`)
# for the accessibility tests. Idempotent; scripts/test.sh runs it. Without root or apt-get
# it says what is missing and the browser tests skip (under CI=true they fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."
AXE_DIR=tests/support/axe

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@"
}

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
    if can_apt; then
        apt_install "${missing[@]}"
    else
        echo "setup-browser: cannot install ${missing[*]} (needs root and apt-get); browser tests will skip" >&2
        exit 0
    fi
fi

if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ] || \
        [ "$AXE_DIR/package-lock.json" -nt "$AXE_DIR/node_modules/.package-lock.json" ]; then
    (cd "$AXE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "browser harness: $(chromium --version 2>/dev/null || chromium-browser --version), axe-core $(node -p "require('./$AXE_DIR/node_modules/axe-core/package.json').version")"
