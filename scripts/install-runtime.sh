#!/bin/sh
# Install the service with its runtime dependencies only (no test extras) into a new venv at $1.
# The Dockerfile's build stage runs exactly this, and so does .ci/run: CI proves the image's steps.
set -eu
venv="$1"
here="$(cd "$(dirname "$0")/.." && pwd)"
python3 -m venv "$venv"
"$venv/bin/pip" install --no-cache-dir --quiet --upgrade pip
"$venv/bin/pip" install --no-cache-dir --quiet "$here"
