#!/usr/bin/env bash
# Run every test: helper package, notebook freshness and grading, the solution notebooks
# executed (nbval), the book build with warnings as errors (its execution is the check of
# book/: each chapter runs once), and the browser tests of the built book. Two lanes run side
# by side, one core each, because neither needs the other: pytest in the foreground; the book
# build followed by the browser tests in the background (on two workers: by then the pytest
# lane has usually finished and left its core free). Every tests/test_*.py and
# tests/browser/test_*.py is collected, new files included.
set -euo pipefail
cd "$(dirname "$0")/.."
# Keep the bytecode Python compiles (.pyc, in __pycache__/, ignored by git). Some environments
# set PYTHONDONTWRITEBYTECODE; then every kernel and every build or test process would compile
# what it imports (Jupyter, Sphinx, nbgrader, pytest, ...) from source again. (setup_env.sh
# compiles torch and the rest of what the helper package imports once, when it installs.)
unset PYTHONDONTWRITEBYTECODE
# npm fetches the book's front-end files while pip installs .venv: neither needs the other.
bash scripts/vendor_static.sh --npm-only &
npm_pid=$!
bash scripts/setup_env.sh
wait "$npm_pid"
# No MPLBACKEND here: the kernels that build the book must keep the inline backend, or
# plt.show() draws nothing and the chapters lose their figures.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# One math-library thread per process: the two lanes (and the browser tests' two workers) already
# keep both cores busy, and a second torch/OpenMP thread per process only makes the processes wait
# for each other. The course's models are too small to gain from it (Chapter 6 runs in 55 s with one
# thread, 58 s with two, on an idle machine). Training sets one thread itself, so no cached model
# changes with this.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export PATH="$(pwd)/.venv/bin:$PATH"

# The browser tests drive Debian's Chromium (Playwright does not download a browser).
source scripts/debian_packages.sh
command -v chromium >/dev/null || install_missing "browser tests" required chromium

# The background lane: the book build, then the browser tests. Both lanes always run to the
# end and both are reported; the lane's log is printed after pytest's. If this script is
# interrupted, the lane (its own process group) is stopped with it.
book_log=$(mktemp)
echo "== in the background: the book build (-W: warnings fail it), the PDFs, then the browser tests"
set -m
(
  bash scripts/build_book.sh
  # The PDF editions, printed from the book just built (the browser tests read them back, and the
  # site's download button links them). A failure here is reported; the browser tests still run.
  echo "== the PDF editions (scripts/build_pdf.sh)"
  pdf_status=0
  bash scripts/build_pdf.sh || pdf_status=$?
  echo "== browser tests of the built book (offline: only localhost is reachable)"
  # Two workers (pytest-xdist), each with its own Chromium; the tests of one page stay together
  # on one worker (--dist loadscope, one unit per page: tests/browser/conftest.py), so each page
  # is loaded once.
  .venv/bin/python -m pytest -p no:cacheprovider -n 2 --dist loadscope --durations=10 tests/browser
  exit "$pdf_status"
) >"$book_log" 2>&1 &
book_pid=$!
set +m
trap 'kill -TERM -- -"$book_pid" 2>/dev/null || true; rm -f "$book_log"' EXIT

# Lint and the package's budget (pyproject.toml's [tool.ruff]: unused or undefined names, complexity,
# statements per function); a finding fails the run at the end, after every test has run too.
echo "== ruff check (pyproject.toml)"
pytest_status=0
.venv/bin/ruff check --no-cache . || pytest_status=$?

echo "== pytest: helper package, exercises, grading, install, and every notebook in solutions/"
.venv/bin/python -m pytest -p no:cacheprovider --durations=15 --nbval-lax --nbval-current-env \
  --ignore=tests/browser tests solutions || pytest_status=$?

# The tests that compare two implementations of one computation (marked numerics: ours against
# SmolLM2, torch's attention, ONNX Runtime, the frozen pre-refactor code, ...) once more under other
# kernels: the run above had one thread; here two threads, then one thread with MKL held to AVX2 and
# torch's own kernels to their plain (non-vectorised) versions. They must hold on any CPU, not on
# the one that wrote them (CONTRIBUTING.md, "Numbers that hold on any machine").
for setting in "OMP_NUM_THREADS=2 MKL_NUM_THREADS=2" \
               "OMP_NUM_THREADS=1 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=default"; do
  echo "== numerics tests under $setting"
  env $setting .venv/bin/python -m pytest -p no:cacheprovider -q -m numerics --ignore=tests/browser tests \
    || pytest_status=$?
done

book_status=0
wait "$book_pid" || book_status=$?
echo "== background lane: book build and browser tests"
cat "$book_log"
if [ "$pytest_status" != 0 ] || [ "$book_status" != 0 ]; then
  echo "!! pytest exited $pytest_status; the book build and browser tests $book_status" >&2
  exit 1
fi
echo "== all tests passed"
