#!/usr/bin/env bash
# Run every test: helper package, notebook freshness and grading, the solution notebooks
# executed (nbval), the book build with warnings as errors (its execution is the check of
# book/: each chapter runs once), then the browser tests of the built book. The book build
# and pytest need nothing from each other, so they run side by side (one core each); the
# browser tests wait for both. Every tests/test_*.py and tests/browser/test_*.py is
# collected, new files included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# No MPLBACKEND here: the kernels that build the book must keep the inline backend, or
# plt.show() draws nothing and the chapters lose their figures.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PATH="$(pwd)/.venv/bin:$PATH"

# The browser tests drive Debian's Chromium (Playwright does not download a browser).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing chromium from Debian's packages (browser tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "!! chromium is missing: run 'sudo apt-get install chromium'" >&2
    exit 1
  fi
fi

# The book build runs in the background; both it and pytest always run to the end and both
# are reported. If this script is interrupted, the build is stopped with it.
build_log=$(mktemp)
echo "== book build (-W: warnings fail it), in the background: its log follows pytest's"
bash scripts/build_book.sh >"$build_log" 2>&1 &
build_pid=$!
trap 'pkill -TERM -P "$build_pid" 2>/dev/null || true; kill "$build_pid" 2>/dev/null || true; rm -f "$build_log"' EXIT

echo "== pytest: helper package, exercises, grading, install, and every notebook in solutions/"
pytest_status=0
.venv/bin/python -m pytest -p no:cacheprovider --durations=15 --nbval-lax --nbval-current-env \
  --ignore=tests/browser tests solutions || pytest_status=$?

build_status=0
wait "$build_pid" || build_status=$?
echo "== book build log"
cat "$build_log"
if [ "$pytest_status" != 0 ] || [ "$build_status" != 0 ]; then
  echo "!! pytest exited $pytest_status, the book build $build_status" >&2
  exit 1
fi

echo "== browser tests of the built book (offline: only localhost is reachable)"
.venv/bin/python -m pytest -p no:cacheprovider tests/browser
