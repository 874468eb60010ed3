#!/usr/bin/env bash
# What the whole test suite needs beyond the Python packages, on a fresh Debian machine: called by
# `make test` and by .ci/run, so a newcomer and CI run the same suite with nothing skipped.
#
#   nginx                         tests/e2e/test_cdn_nginx.py (a real cache in front)
#   chromium, nodejs, npm         tests/e2e/test_browser.py (playwright-core drives /usr/bin/chromium)
#   ceph-mon ceph-osd radosgw ceph-common   radosgw, a second real S3 server for the storage tests
#   npm ci of every package-lock.json under tests/   playwright-core; Next.js, Nuxt Image, unpic, esbuild
#
# Debian packages are installed only when missing, and each npm folder only when its lockfile changed
# since the last `npm ci` there, so a second run costs about a second. Needs root (or sudo) only when
# something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "install-test-deps: need root to run: $*" >&2; exit 1
    fi
}

missing=""
[ -x /usr/sbin/nginx ] || missing="$missing nginx"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
for pkg in ceph-mon ceph-osd radosgw ceph-common; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "install-test-deps: apt-get install$missing"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

find tests -name package-lock.json -not -path '*/node_modules/*' | sort | while read -r lock; do
    folder=$(dirname "$lock")
    stamp="$folder/node_modules/.installed-lock"
    if [ -f "$stamp" ] && cmp -s "$lock" "$stamp"; then
        continue
    fi
    echo "install-test-deps: npm ci in $folder"
    npm ci --prefix "$folder" --no-audit --no-fund --loglevel=error
    cp "$lock" "$stamp"
done
