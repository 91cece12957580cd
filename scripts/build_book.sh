#!/usr/bin/env bash
# Build the book with execution: every chapter notebook runs, and a failing cell,
# a warning or a broken reference fails the build (-W -n --keep-going).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/vendor_static.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS="${PYTHONWARNINGS:-}"
.venv/bin/jupyter-book build . -W -n --keep-going
echo "The book is at: $(pwd)/_build/html/index.html"
