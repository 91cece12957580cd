#!/usr/bin/env bash
# Build the book with execution: every chapter notebook runs, and a failing cell,
# a warning or a broken reference fails the build (-W -n --keep-going). Then the Chinese
# edition from the same sources and the same executed notebooks (tools/i18n.py build):
# English in _build/html/, Chinese in _build/html/zh_CN/; an untranslated or fuzzy message
# fails it too.
set -euo pipefail
cd "$(dirname "$0")/.."
# Keep the bytecode Python compiles (.pyc, in __pycache__/, ignored by git). Some environments
# set PYTHONDONTWRITEBYTECODE; then every kernel and every build or test process would compile
# what it imports (Jupyter, Sphinx, nbgrader, pytest, ...) from source again. (setup_env.sh
# compiles torch and the rest of what the helper package imports once, when it installs.)
unset PYTHONDONTWRITEBYTECODE
bash scripts/setup_env.sh
bash scripts/vendor_static.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS="${PYTHONWARNINGS:-}"
# jupyter-cache re-runs a chapter only when the chapter's own code changes, but its outputs
# also come from the helper package: the explorers' JavaScript and data, the exported ONNX
# models. When the package changes, forget every cached run (and the models those runs wrote).
stamp=_build/.package-stamp
want=$(find attention_course -type f ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$want" ]; then
  echo "== attention_course/ changed since the last build: every chapter runs again"
  rm -rf _build/.jupyter_cache _build/static_models
fi
mkdir -p _build/static_models  # in html_static_path: Sphinx drops an entry missing at start-up
mkdir -p _build && echo "$want" > "$stamp"
# The chapters not in the cache run side by side, one kernel per core (tools/execute_chapters.py);
# the build below then finds them executed. A failing chapter stops here, with its traceback.
.venv/bin/python tools/execute_chapters.py
.venv/bin/jupyter-book build . -W -n --keep-going
echo "== the Chinese edition: the same pages through locales/zh_CN, nothing executed again"
.venv/bin/python tools/i18n.py build
echo "The book is at: $(pwd)/_build/html/index.html (Chinese: $(pwd)/_build/html/zh_CN/index.html)"
