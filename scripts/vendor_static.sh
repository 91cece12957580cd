#!/usr/bin/env bash
# Fetch the book's front-end files from the npm registry (versions pinned in
# package-lock.json) and copy them into _vendor_static/, so that every page serves
# MathJax, require.js and the Jupyter widgets manager itself and renders with no CDN.
# anywidget's front-end (the AMD module its wheel ships for classic notebooks, pinned in
# requirements.txt) is copied from .venv: the course's explorers are anywidgets, and their
# saved state names the module "anywidget". axe-core (devDependency) is for the browser tests.
# Neither node_modules/ nor _vendor_static/ is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.course-lock-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== npm ci (MathJax, require.js, @jupyter-widgets/html-manager, axe-core)"
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$want" > "$stamp"
fi
# --npm-only: just the npm step (scripts/test.sh runs it while pip installs .venv).
[ "${1:-}" = "--npm-only" ] && exit 0

vendor=_vendor_static
rm -rf "$vendor"
mkdir -p "$vendor/mathjax" "$vendor/html-manager"
es5=node_modules/mathjax/es5
cp "$es5/tex-chtml.js" "$vendor/mathjax/"
cp -r "$es5/input" "$es5/output" "$es5/ui" "$es5/a11y" "$es5/adaptors" "$es5/sre" "$vendor/mathjax/"
cp node_modules/requirejs/require.js "$vendor/require.js"
find node_modules/@jupyter-widgets/html-manager/dist -maxdepth 1 -type f ! -name '*.map' \
  -exec cp {} "$vendor/html-manager/" \;
anywidget_js=$(.venv/bin/python -c 'import anywidget, pathlib; print(pathlib.Path(anywidget.__file__).parent / "nbextension" / "index.js")')
mkdir -p "$vendor/anywidget"
cp "$anywidget_js" "$vendor/anywidget/index.js"

# ---- onnxruntime-web (pinned in package.json): the browser runtime of Chapter 2's RNNsearch,
# Chapter 6's GPT and Chapter 7's Transformer (beside RNNsearch), loaded by their explorers only
# when a reader first uses them. Single-threaded
# WebAssembly (a static host gives no cross-origin isolation, so no threads); the ES module
# loads its .wasm from the same folder. The exported models themselves are written by the
# chapter notebooks into _build/static_models/models/ (attention_course/views/onnx_export.py),
# which _config.yml serves as _static/models/; the folder must exist before Sphinx starts.
ort=node_modules/onnxruntime-web/dist
mkdir -p "$vendor/onnxruntime-web" _build/static_models
cp "$ort/ort.wasm.min.mjs" "$ort/ort-wasm-simd-threaded.mjs" "$ort/ort-wasm-simd-threaded.wasm" \
  "$vendor/onnxruntime-web/"
echo "== front-end files in $vendor: $(du -sh "$vendor" | cut -f1)"
