#!/usr/bin/env bash
# The Dockerfile's steps, run on the host (no container engine on CI): the runtime-only install,
# the config check with the image's environment, `serve` with 2 workers, and the HEALTHCHECK.
# Only the bind address differs: 127.0.0.1 here, 0.0.0.0 in the image.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
scripts/install-runtime.sh "$work/venv"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export PROXY_SERVER__HOST=127.0.0.1 PROXY_SERVER__PORT="$port" PROXY_SERVER__WORKERS=2 \
       PROXY_STORAGE__PATH="$work/data"
"$work/venv/bin/resize-proxy" check-config --config config.toml
"$work/venv/bin/resize-proxy" serve --config config.toml > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    python3 scripts/healthcheck.py "http://127.0.0.1:$port/healthz" && break
    sleep 0.2
done
python3 scripts/healthcheck.py "http://127.0.0.1:$port/healthz" || { cat "$work/serve.log"; exit 1; }
echo "container steps: install, check-config, serve (2 workers) and healthcheck ok"
