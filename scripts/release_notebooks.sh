#!/usr/bin/env bash
# Regenerate the student notebooks in notebooks/ from the instructor versions in solutions/.
# Never edit notebooks/ by hand: CI fails when it differs from this script's output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python tools/setup_cell.py
for dir in solutions/*/; do
  .venv/bin/python -m nbgrader generate_assignment "$(basename "$dir")" --force
done
