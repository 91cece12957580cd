#!/usr/bin/env bash
# Regenerate the student notebooks in notebooks/ from the instructor versions in solutions/,
# then their Chinese twins in zh_CN/notebooks/ (tools/zh_notebooks.py: the same code, the markdown
# from the catalogues in locales/zh_CN/). Never edit notebooks/ or zh_CN/ by hand: CI fails when
# they differ from what this script and tools/zh_notebooks.py write.
#
# nbgrader runs in a throw-away copy of the course (config + solutions), so its working
# files and any half-written output stay out of the repository; notebooks/ is replaced only
# once every chapter has been generated. A failing run leaves notebooks/ as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# The environment's bin folder goes first on PATH, whatever PATH held when this was called:
# nbgrader runs the `alembic` executable (database migration) from PATH whenever it opens a
# gradebook (with --no-db below it opens none).
root=$(pwd)
export PATH="$root/.venv/bin:$PATH"

.venv/bin/python tools/setup_cell.py

mkdir -p .nbgrader
work=$(mktemp -d .nbgrader/release.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp nbgrader_config.py "$work/"
cp -r solutions "$work/solutions"
find "$work/solutions" -name .ipynb_checkpoints -prune -exec rm -rf {} +
# One nbgrader process for every chapter: nbgrader reads the assignment id as a glob of
# solutions/ and generates the matching assignments in sorted order (one process per chapter
# paid nbgrader's start-up and database set-up each time). If a chapter fails, nbgrader still
# tries the others and then exits non-zero, so notebooks/ is not replaced. --no-db: the
# throw-away copy's gradebook would be deleted unread (the student notebooks are the same
# bytes without it); instructors who grade with nbgrader run generate_assignment in their own
# course directory.
(cd "$work" && "$root/.venv/bin/python" -m nbgrader generate_assignment '*' --force --no-db)

# Swap the new release in: two renames on the same file system.
rm -rf "$work/notebooks.old"
[ -d notebooks ] && mv notebooks "$work/notebooks.old"
mv "$work/notebooks" notebooks
echo "== notebooks/ regenerated from solutions/"
# The Chinese twins of the student notebooks (the chapters' twins are tools/zh_notebooks.py's
# alone: a chapter's pending translation does not hold up a release of exercises). A student
# notebook whose instructions changed has messages the catalogues do not have yet: this fails,
# naming them, until tools/i18n.py update has run and they are translated; notebooks/ is
# replaced already, zh_CN/ is left as it was.
.venv/bin/python tools/zh_notebooks.py notebooks/*/*.ipynb
echo "== zh_CN/notebooks/ regenerated from notebooks/ and locales/zh_CN/"
