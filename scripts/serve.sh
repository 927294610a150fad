#!/usr/bin/env bash
# Set up and start the HTTP service on the embedded offline model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/alttext serve "$@"
