"""The course as a whole: layout, chapter skeleton, student notebooks, grading."""
import filecmp
import json
import subprocess
import sys

import nbformat
import pytest
import yaml

from course_tools import ROOT, assignments, autograde, released_course

CHAPTER_NOTEBOOKS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return released_course(tmp_path_factory.mktemp("nbgrader"))


def test_toc_lists_six_chapters_in_lecture_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [c["file"] for c in toc["parts"][0]["chapters"]]
    assert [c.split("/")[1][:2] for c in chapters] == ["01", "02", "03", "04", "05", "06"]
    for part in toc["parts"]:
        for entry in part["chapters"]:
            assert any((ROOT / (entry["file"] + ext)).is_file() for ext in (".md", ".ipynb")), entry


def test_config_builds_with_execution_and_launch_buttons():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_setup_cells_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "setup_cell.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", CHAPTER_NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_follows_the_skeleton(path):
    nb = nbformat.read(path, as_version=4)
    assert "remove-cell" in nb.cells[0].metadata.get("tags", []), "setup cell must be hidden in the book"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert markdown.lstrip().startswith("(ch"), "chapter must open with a label, e.g. (ch03)="
    for heading in ("## Summary", "## Exercises", "## References"):
        assert heading in markdown, f"{path.name} lacks the section {heading!r}"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit chapter notebooks without outputs: the book build executes them"


@pytest.mark.slow
@pytest.mark.parametrize("name", assignments())
def test_student_notebooks_are_fresh(course, name):
    """notebooks/ must be exactly what `nbgrader generate_assignment` makes from solutions/."""
    fresh, committed = course / "notebooks" / name, ROOT / "notebooks" / name
    assert committed.is_dir(), f"notebooks/{name} is missing: run bash scripts/release_notebooks.sh"
    cmp = filecmp.dircmp(fresh, committed)
    stale = cmp.left_only + cmp.right_only + [f for f in cmp.common_files
                                               if (fresh / f).read_bytes() != (committed / f).read_bytes()]
    assert not stale, f"stale student notebooks {stale}: run bash scripts/release_notebooks.sh"


@pytest.mark.slow
@pytest.mark.parametrize("name", assignments())
def test_solution_gets_full_marks_and_blank_gets_zero(course, name, tmp_path):
    for solution in sorted((ROOT / "solutions" / name).glob("*.ipynb")):
        release = course / "notebooks" / name / solution.name
        scores = autograde(course, name, {"solution": solution, "blank": release})
        score, max_score = scores["solution"]
        assert max_score > 0 and score == max_score, f"solution scored {score}/{max_score}"
        assert scores["blank"][0] == 0, f"untouched student notebook scored {scores['blank']}"


@pytest.mark.parametrize("name", assignments())
def test_exercise_cells_have_points_and_hidden_tests(name):
    for solution in (ROOT / "solutions" / name).glob("*.ipynb"):
        nb = json.loads(solution.read_text())
        graded = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        assert graded and all(c["metadata"]["nbgrader"].get("points", 0) > 0 for c in graded)
        assert any("### BEGIN HIDDEN TESTS" in "".join(c["source"]) for c in graded)
        assert any("### BEGIN SOLUTION" in "".join(c["source"]) for c in nb["cells"])
