"""The Gradescope and PrairieLearn autograders (attention_course.grading.autograders).

Fast tests build the bundles and turn made-up gradebook rows into each service's results.json. The
slow test does what the services do: it runs the generated ``setup.sh`` into a fresh virtual
environment (this machine's package index stands in for PyTorch's CPU index), lays out Gradescope's
``/autograder`` and PrairieLearn's ``/grade`` in temporary folders, runs ``run_autograder`` and
``run_prairielearn`` on the grading fixtures, and compares every ``results.json`` with the gradebook
the local command writes for the same files.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from attention_course.grading import autograders
from attention_course.grading.__main__ import main as grading_main
from attention_course.grading.course import load_assignment
from attention_course.grading.gradebook import Row
from attention_course.grading.messages import Text
from grading_fixtures import CHAPTER, HIDDEN_ONLY_MISTAKE, MISTAKES, ROOT, SOURCE, submission, write

LIMITS = {"cell_timeout": 4, "total_timeout": 90, "memory_mb": 1536}
PUBLIC_SUFFIX = ": public checks"


def requirement_names(lines) -> set[str]:
    return {autograders._key(line.split("==")[0]) for line in lines}


def test_runtime_requirements_are_the_pinned_ones_without_the_book_tools():
    lines = autograders.runtime_requirements(ROOT)
    pinned = {line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()}
    assert set(lines) <= pinned, "every requirement is a pin of requirements.txt, as written there"
    names = requirement_names(lines)
    assert {"torch", "numpy", "nbformat", "ipykernel"} <= names
    assert not names & {"jupyter-book", "pytest", "ruff", "playwright", "sphinx", "nbgrader"}, names


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    return {service: autograders.build(service, CHAPTER, out, ROOT, **LIMITS) for service in autograders.SERVICES}


def test_gradescope_zip_has_its_scripts_at_the_root_and_everything_the_grader_needs(bundles):
    with zipfile.ZipFile(bundles["gradescope"]) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        config = json.loads(zf.read("autograder.json"))
        setup = zf.read("setup.sh").decode()
        (wheel,) = [n for n in names if n.endswith(".whl")]
    assert {"setup.sh", "run_autograder", "requirements.txt", "requirements-models.txt"} <= names
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111, "the scripts must be executable"
    assert f"course/solutions/{CHAPTER}/{SOURCE.name}" in names, "the nbgrader source with the hidden tests"
    assert config["chapter"] == CHAPTER and config["cell_timeout"] == LIMITS["cell_timeout"]
    torch = next(line for line in autograders.runtime_requirements(ROOT) if line.startswith("torch=="))
    assert autograders.TORCH_CPU_INDEX in setup and torch in setup and wheel in setup


def test_prairielearn_folder_has_an_image_and_a_question(bundles):
    folder = bundles["prairielearn"]
    info = json.loads((folder / "question" / "info.json").read_text())
    options = info["externalGradingOptions"]
    entry = options["entrypoint"]
    assert entry.startswith(autograders.PL_HOME + "/"), entry
    script = folder / "source" / Path(entry).relative_to(autograders.PL_HOME)
    assert script.is_file() and os.access(script, os.X_OK), "the entrypoint is in the image, executable"
    assert options["enabled"] and 0 < options["timeout"] <= 600, "PrairieLearn allows at most 600 s"
    assert info["gradingMethod"] == "External" and SOURCE.name in (folder / "question" / "question.html").read_text()
    assert f"COPY source {autograders.PL_HOME}" in (folder / "Dockerfile").read_text()


def test_unknown_chapter_or_visibility_is_a_clear_error(tmp_path, capsys):
    assert grading_main(["gradescope", "ch99_nothing", "-o", str(tmp_path)]) == 2
    assert CHAPTER in capsys.readouterr().err, "the error lists the chapters there are"
    with pytest.raises(ValueError, match="hidden_visibility"):
        autograders.build("gradescope", CHAPTER, tmp_path, ROOT, hidden_visibility="later")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ results.json from a row
@pytest.fixture(scope="module")
def assignment():
    return load_assignment(ROOT, SOURCE)


def graded_row(a, outcomes: dict[str, str], language: str = "en") -> Row:
    """A row as the grader fills it: each exercise ``passed`` unless ``outcomes`` says otherwise."""
    tests = []
    for t in a.tests:
        outcome = outcomes.get(t.grade_id, "passed")
        message = {"passed": "", "failed_public": f"public mistake in {t.grade_id}",
                   "failed_hidden": "generic hidden sentence"}[outcome]
        tests.append({"grade_id": t.grade_id, "max": t.points, "points": t.points if outcome == "passed" else 0.0,
                      "outcome": outcome, "message": message, "instructor": f"SECRET {t.grade_id}"})
    row = Row(student="s", file=a.notebook, chapter=a.name, tests=tests, max=a.max_points, language=language)
    row.points = {t["grade_id"]: t["points"] for t in tests}
    row.total = sum(row.points.values())
    failed = [t for t in tests if t["outcome"] != "passed"]
    if failed:
        row.reasons.append(Text(autograders.FAILED_COUNT, failed=len(failed), tests=len(tests)))
    return row


def test_gradescope_results_one_scored_test_per_exercise_hidden_verdicts_wait_for_publication(assignment):
    a = assignment
    hidden = [t.grade_id for t in a.tests if t.hidden]
    assert len(hidden) >= 2, "Chapter 3's exercises have hidden tests"
    public_fail, hidden_fail = hidden[0], hidden[1]
    row = graded_row(a, {public_fail: "failed_public", hidden_fail: "failed_hidden"})
    res = autograders.gradescope_results(row, a, [])
    scored = {t["name"]: t for t in res["tests"] if not t["name"].endswith(PUBLIC_SUFFIX)}
    assert list(scored) == [t.grade_id for t in a.tests]
    assert {k: t["score"] for k, t in scored.items()} == row.points and res["score"] == row.total
    assert {k: t["max_score"] for k, t in scored.items()} == {t.grade_id: t.points for t in a.tests}
    visible = [t for t in res["tests"] if t["visibility"] == "visible"]
    assert all(scored[g]["visibility"] == "after_published" for g in hidden)
    assert not any(t["score"] for t in visible), "before publication no points tell a hidden verdict"
    public = {t["name"][: -len(PUBLIC_SUFFIX)]: t for t in res["tests"] if t["name"].endswith(PUBLIC_SUFFIX)}
    assert public[public_fail]["status"] == "failed" and public[public_fail]["output"] == f"public mistake in {public_fail}"
    assert public[hidden_fail]["status"] == "passed", "the public checks of a hidden failure passed"
    shown = json.dumps([t for t in res["tests"] if t["visibility"] == "visible"] + [res["output"]])
    assert "SECRET" not in json.dumps(res) and "exercises failed" not in shown
    assert res["stdout_visibility"] == "hidden", "the grader's log names what the hidden checks found"

    plain = autograders.gradescope_results(row, a, [], hidden_visibility="visible")
    assert [t["name"] for t in plain["tests"]] == [t.grade_id for t in a.tests]
    assert all(t["visibility"] == "visible" for t in plain["tests"])


def test_a_broken_submission_gets_a_top_level_message_and_zero_everywhere(assignment):
    row = Row(student="s", file="general_form.ipynb", language="en")
    row.flag("malformed_notebook", "not valid JSON (line 1, column 9)")
    others = [Row(student="s", file="notes.txt")]
    others[0].flag("not_a_notebook", "a .txt file, not a Jupyter notebook (.ipynb)")
    res = autograders.gradescope_results(row, assignment, others)
    assert res["score"] == 0 and all(t["score"] == 0 for t in res["tests"])
    for words in ("malformed_notebook", "not valid JSON", "notes.txt", "could not be graded"):
        assert words in res["output"], words
    assert "Hidden tests" not in res["output"], "nothing was graded: no word about hidden tests"
    pl = autograders.prairielearn_results(row, assignment, others)
    assert pl["gradable"] is False and "not valid JSON (line 1, column 9)" in pl["format_errors"]


def test_prairielearn_results_score_is_a_fraction_and_tests_carry_the_points(assignment):
    a = assignment
    first = a.tests[0].grade_id
    row = graded_row(a, {first: "failed_public"}, language="zh_CN")
    res = autograders.prairielearn_results(row, a, [])
    assert res["gradable"] is True and res["score"] == pytest.approx((a.max_points - a.tests[0].points) / a.max_points)
    assert 0 <= res["score"] < 1
    assert [(t["name"], t["points"], t["max_points"]) for t in res["tests"]] == \
        [(t.grade_id, row.points[t.grade_id], t.points) for t in a.tests]
    assert res["tests"][0]["message"] == f"public mistake in {first}"
    assert res["tests"][1]["message"] == "通过", "a Chinese notebook's results speak Chinese"


# ------------------------------------------------------------------------------ the containers, for real
ZH_METADATA = {"language": "zh_CN"}


def chinese_submission() -> dict:
    nb = submission({"softmax": MISTAKES["softmax_global_max"]})
    nb["metadata"]["attention_course"] = ZH_METADATA
    return nb


CASES = {  # case -> {file name: content}: the grading fixtures, one submission (folder) each
    "ok": {"general_form.ipynb": submission()},
    "blank": {"general_form.ipynb": submission(solved=False)},
    "mistakes": {"general_form.ipynb": submission({"softmax": MISTAKES["softmax_global_max"],
                                                   "scaled_dot_product_score": MISTAKES["scaled_dot_product_score"],
                                                   **HIDDEN_ONLY_MISTAKE})},
    "borrowed": {"general_form.ipynb": submission({"softmax": "from attention_course.maths.scoring import softmax\n"})},
    "cell_error": {"general_form.ipynb": submission(extra=[(3, "raise RuntimeError('boom at top level')")])},
    "loop": {"general_form.ipynb": submission(extra=[(3, "while True:\n    pass")])},
    "malformed": {"general_form.ipynb": '{"cells": [{"cell_type": "code", "source": "x = 1"'},
    "empty": {"general_form.ipynb": ""},
    "not_a_notebook": {"answers.txt": "I could not finish exercise 4, sorry.\n"},
    "wrong_chapter": {"self_attention.ipynb": (ROOT / "notebooks" / "ch04_self_attention" / "self_attention.ipynb").read_text()},
    "chinese": {"general_form.ipynb": chinese_submission()},
    "two_files": {"general_form.ipynb": submission(), "notes.txt": "see my notebook\n"},
}
PL_CASES = ["ok", "mistakes", "malformed", "wrong_chapter", "chinese", "borrowed"]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "AUTOGRADER", "ATTENTION_AUTOGRADER", "ATTENTION_PYTHON", "ATTENTION_TORCH", "PL_"))}
    env.update(extra)
    return env


def run(args, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def containers(tmp_path_factory):
    """A fresh environment from the Gradescope zip's setup.sh, and results.json of every case in each
    service's layout; the local command's gradebook of the same files."""
    tmp = tmp_path_factory.mktemp("containers")
    out = tmp / "bundles"
    bundles = {service: autograders.build(service, CHAPTER, out, ROOT, **LIMITS) for service in autograders.SERVICES}
    gradescope = tmp / "gs_image"  # what Gradescope's image build leaves in /autograder
    with zipfile.ZipFile(bundles["gradescope"]) as zf:
        zf.extractall(gradescope / "source")
    for script in ("setup.sh", "run_autograder"):
        (gradescope / "source" / script).chmod(0o755)
    venv = tmp / "venv"
    python = getattr(sys, "_base_executable", sys.executable)
    setup = run(["bash", gradescope / "source" / "setup.sh"], cwd=tmp, timeout=1800,
                env=clean_env(ATTENTION_PYTHON=python, ATTENTION_AUTOGRADER_VENV=str(venv), ATTENTION_TORCH_INDEX=""))
    subs = tmp / "local"
    for case, files in CASES.items():
        for name, content in files.items():
            write(subs / case, name, content)
    local = tmp / "local_out"
    run([sys.executable, "-m", "attention_course.grading", subs, "--out", local, "--course", ROOT, "--chapter", CHAPTER,
         "--cell-timeout", LIMITS["cell_timeout"], "--total-timeout", LIMITS["total_timeout"], "--memory-mb",
         LIMITS["memory_mb"], "--jobs", "2"], timeout=900)
    with open(local / "gradebook.csv", encoding="utf-8") as handle:
        gradebook = {row["file"]: row for row in csv.DictReader(handle)}

    def grade(service: str, case: str) -> dict:
        root = tmp / service / case
        if service == "gradescope":
            shutil.copytree(gradescope / "source", root / "source", symlinks=True)
            shutil.copy2(gradescope / "source" / "run_autograder", root / "run_autograder")
            script, env = root / "run_autograder", {"AUTOGRADER_ROOT": str(root)}
        else:
            script, env = bundles["prairielearn"] / "source" / "run_prairielearn", {"PL_GRADE_ROOT": str(root)}
        for name, content in CASES[case].items():
            write(root / ("submission" if service == "gradescope" else "student"), name, content)
        run(["bash", script], cwd=root, timeout=600, env=clean_env(ATTENTION_AUTOGRADER_VENV=str(venv), **env))
        return json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))

    jobs = [("gradescope", c) for c in CASES] + [("prairielearn", c) for c in PL_CASES]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(jobs, pool.map(lambda job: grade(*job), jobs)))
    return {"venv": venv, "gradebook": gradebook, "results": results, "setup": setup.stdout}


def local_row(containers, case: str) -> dict:
    """The local gradebook's row of the case's notebook (its only file, or its .ipynb)."""
    files = sorted(CASES[case], key=lambda name: not name.endswith(".ipynb"))
    return containers["gradebook"][f"{case}/{files[0]}"]


def points(value: str) -> float:
    return float(value) if value else 0.0


@pytest.mark.slow
def test_setup_installs_the_wheel_into_a_fresh_environment_and_checks_the_solution(containers):
    python = containers["venv"] / "bin" / "python"
    where = run([python, "-c", "import attention_course; print(attention_course.__file__)"], env=clean_env(),
                cwd=containers["venv"]).stdout
    assert where.strip().startswith(str(containers["venv"])), f"the course must come from the wheel: {where}"
    assert "self-check: the solution of" in containers["setup"]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_gradescope_results_match_the_local_gradebook(containers, case, assignment):
    row, res = local_row(containers, case), containers["results"][("gradescope", case)]
    assert res["extra_data"]["status"] == row["status"], (res["output"], row["reason"])
    assert res["score"] == points(row["total"])
    scored = {t["name"]: t for t in res["tests"] if t["name"] in assignment.grade_ids}  # the others: 0-point companions
    assert {g: t["score"] for g, t in scored.items()} == {t.grade_id: points(row[t.grade_id]) for t in assignment.tests}
    assert sum(t["score"] for t in res["tests"]) == res["score"]
    assert sum(t["max_score"] for t in scored.values()) == assignment.max_points
    if row["status"] != "ok":
        assert row["status"] in res["output"], "a broken submission is told why at the top"


@pytest.mark.slow
@pytest.mark.parametrize("case", PL_CASES)
def test_prairielearn_results_match_the_local_gradebook(containers, case, assignment):
    row, res = local_row(containers, case), containers["results"][("prairielearn", case)]
    assert res["gradable"] is (row["status"] not in autograders.NOT_GRADABLE)
    assert [t["points"] for t in res["tests"]] == [points(row[t.grade_id]) for t in assignment.tests]
    if res["gradable"]:
        assert res["score"] == pytest.approx(points(row["total"]) / assignment.max_points)
    else:
        assert res["format_errors"] and "score" not in res


@pytest.mark.slow
def test_the_containers_show_what_the_students_may_see(containers):
    results = containers["results"]
    mistakes = results[("gradescope", "mistakes")]
    pooling = {t["name"]: t for t in mistakes["tests"] if t["name"].startswith("test_attention_pooling")}
    assert pooling["test_attention_pooling"]["score"] == 0, "the hidden-only mistake loses its points..."
    assert pooling["test_attention_pooling"]["visibility"] == "after_published"
    assert pooling["test_attention_pooling" + PUBLIC_SUFFIX]["status"] == "passed", "...shown only on publication"
    assert "notes.txt" in results[("gradescope", "two_files")]["output"], "the other files are named"
    chinese = results[("gradescope", "chinese")]
    assert "通过" in json.dumps(chinese, ensure_ascii=False) and chinese["extra_data"]["language"] == "zh_CN"
    assert results[("gradescope", "malformed")]["score"] == 0
