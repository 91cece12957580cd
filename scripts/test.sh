#!/usr/bin/env bash
# Run every test: helper package, notebook freshness and grading, every notebook
# executed (nbval), then the book build with warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
export PATH="$(pwd)/.venv/bin:$PATH"

echo "== pytest: helper package, exercises, and every notebook in book/ and solutions/"
.venv/bin/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
  tests book solutions

echo "== book build (-W: warnings fail it)"
bash scripts/build_book.sh
