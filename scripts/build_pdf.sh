#!/usr/bin/env bash
# The book as two PDFs, from the book scripts/build_book.sh has built (nothing is executed again):
#   _build/pdf/attention-mechanisms.pdf          English
#   _build/pdf/attention-mechanisms-zh_CN.pdf    Chinese (中文版)
# also copied into _build/html/pdf/, where the site's download button links them. The pages are
# printed by Debian's Chromium through Playwright (tools/pdf.py says how; CONTRIBUTING.md why).
# Arguments go to tools/pdf.py: --edition en, --pages book/01_origin ..., --out DIR.
# As root it installs what it needs from Debian: chromium (printing) and poppler-utils
# (pdftotext, pdfinfo, pdffonts, pdftoppm: tests/browser/test_pdf.py reads the PDFs with them).
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONDONTWRITEBYTECODE
if [ ! -f _build/html/index.html ] || [ ! -f _build/html/zh_CN/index.html ]; then
  echo "!! build the book first: bash scripts/build_book.sh (the PDFs are printed from _build/html)" >&2
  exit 1
fi
bash scripts/setup_env.sh >/dev/null

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
source scripts/debian_packages.sh
install_missing "printing the PDFs, reading them in the tests" required ${missing[@]+"${missing[@]}"}
exec .venv/bin/python tools/pdf.py "$@"
