"""Borrowing decided on the objects (attention_course.grading.borrowing): a graded function that is,
reaches or, while the checks call it, runs the package's reference implementation gets no points,
however it was obtained; the course's own solutions keep theirs.

Fast tests run the worker's :class:`CallWatch` in this process on routes the source-text analysis
cannot follow; the slow one grades a small class of Ch. 3 submissions through the real command line.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import os
import pkgutil
import sys
import subprocess
import types

import numpy as np
import pytest

import attention_course
from attention_course.grading import borrowing
from attention_course.grading.borrowing import (REFERENCES, CallWatch, code_fingerprint, judge_evidence,
                                                reference_fingerprints)
from attention_course.grading.course import cell_source, is_solution, load_course
from course_tools import ROOT

PACKAGE_DIR = os.path.dirname(attention_course.__file__)
SOFTMAX = "attention_course.maths.scoring.softmax"

# Ways to make Ch. 3's softmax the package's own. All but the first two hide the package's name
# (``_P``), so the source-text analysis does not see them (test_the_source_text_misses_the_hidden_routes).
_P = "_P = 'attention' + '_course'\n"
_LOAD = "__import__('attention' + '_course.maths.scoring')  # the worker has not loaded it yet\n"
ROUTES = {
    "import": "from attention_course.maths.scoring import softmax\n",
    "alias": "from attention_course.maths import scoring as reference\nsoftmax = reference.softmax\n",
    "importlib_getattr": _P + ("import importlib\nsoftmax = getattr(importlib.import_module(_P + '.maths.scoring'), "
                               "'soft' + 'max')\n"),
    "sys_modules_loop": _LOAD + ("import sys\nfor _name, _module in list(sys.modules.items()):\n"
                         "    if _name.endswith('.scoring') and hasattr(_module, 'softmax'):\n"
                         "        softmax = getattr(_module, 'softmax')\n"),
    "pkgutil_loop": _P + ("import importlib, pkgutil\n_p = importlib.import_module(_P)\n_found = {}\n"
                          "for _info in pkgutil.walk_packages(_p.__path__, _p.__name__ + '.'):\n"
                          "    if _info.name.endswith('scoring'):\n"
                          "        _found.update(vars(importlib.import_module(_info.name)))\n"
                          "softmax = _found['softmax']\n"),
    "exec_getsource": _LOAD + _P + ("import inspect, sys\n_src = inspect.getsource(sys.modules[_P + '.maths.scoring'])\n"
                            "_ns = {}\nexec(_src, _ns)\nsoftmax = _ns['softmax']\n"),
    "exec_function_source": _P + ("import inspect, importlib\n_m = importlib.import_module(_P + '.maths.scoring')\n"
                                  "exec(inspect.getsource(getattr(_m, 'softmax')))\n"),
    "function_type": _P + ("import types, importlib\n_ref = getattr(importlib.import_module(_P + '.maths.scoring'), "
                           "'softmax')\nsoftmax = types.FunctionType(_ref.__code__, globals(), 'softmax', "
                           "_ref.__defaults__)\n"),
    "wrapper_lambda": _P + ("import importlib\n_m = importlib.import_module(_P + '.maths.scoring')\n"
                            "softmax = lambda x, axis=-1: getattr(_m, 'softmax')(x, axis)\n"),
    "callable_class": _P + ("import importlib\nclass _Softmax:\n    def __call__(self, x, axis=-1):\n"
                            "        return vars(importlib.import_module(_P + '.maths.scoring'))['softmax'](x, axis)\n"
                            "softmax = _Softmax()\n"),
    "dict_lookup_in_loop": _LOAD + ("import sys\ndef softmax(x, axis=-1):\n"
                            "    for _k, _v in list(sys.modules.items()):\n"
                            "        _f = vars(_v).get('soft' + 'max') if _k.startswith('attention' + '_') else None\n"
                            "        if callable(_f):\n            return _f(x, axis)\n"),
    "partial": _P + ("import functools, importlib\n"
                     "softmax = functools.partial(getattr(importlib.import_module(_P + '.maths.scoring'), "
                     "'softmax'), axis=-1)\n"),
}
PLAIN = ("import", "alias")


def watch(names) -> CallWatch:
    return CallWatch(reference_fingerprints(list(names)), [sys.prefix, sys.base_prefix, os.path.dirname(os.__file__)],
                     PACKAGE_DIR)


def run_route(code: str, w: CallWatch):
    """Run a route's code as a cell would (its own globals), call its softmax under the watch, judge."""
    namespace: dict = {"__name__": "__main__", "np": np}
    exec(compile(code, "<ipython-input-1-route>", "exec"), namespace)
    fn = namespace["softmax"]
    w.start(1)
    try:
        value = fn(np.array([[1.0, 2.0, 3.0]]))
    finally:
        w.stop()
    report = w.report({"softmax": (fn, 1)})
    return value, judge_evidence(report, reference_fingerprints(["softmax"]), ["softmax"])


# ------------------------------------------------------------------------------ the table
def _package_functions():
    """(module, name, function) of every function defined in the package's importable modules but views."""
    for info in pkgutil.walk_packages(attention_course.__path__, "attention_course."):
        if info.name.startswith("attention_course.views") or info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - an optional dependency missing
            continue
        for name, value in vars(module).items():
            if isinstance(value, types.FunctionType) and value.__module__ == info.name:
                yield info.name, name, value


def test_every_package_function_named_like_an_exercise_is_a_reference():
    """The table lists each function of the package that has a graded name, and every entry imports."""
    graded = {n for a in load_course(ROOT).values() for n in a.graded_names}
    assert set(REFERENCES) <= graded, set(REFERENCES) - graded
    missing = [f"{m}:{n}" for m, n, _ in _package_functions() if n in graded and f"{m}:{n}" not in REFERENCES[n]]
    assert not missing, missing
    for name, targets in REFERENCES.items():
        fingerprints = reference_fingerprints([name])  # compiled from the files, not imported
        assert len(fingerprints) == len(targets), name  # each found, and no two references share code
        for target in targets:
            module, qualname = target.split(":")
            function = getattr(importlib.import_module(module), qualname)
            assert isinstance(function, types.FunctionType), target
            assert fingerprints[code_fingerprint(function.__code__)] == (name, target.replace(":", ".")), target


@pytest.mark.parametrize("chapter", sorted(load_course(ROOT)))
def test_no_solution_function_has_a_reference_s_code(chapter):
    """The fingerprints are not fooled by code written in the course's own style: no function of a
    solution notebook fingerprints like a reference (the self-check grades the solutions for the rest)."""
    a = load_course(ROOT)[chapter]
    references = reference_fingerprints(a.graded_names)
    assert references, chapter
    for cell in a.cells:
        if cell.get("cell_type") == "code" and is_solution(cell):
            module = compile(cell_source(cell), "<solution>", "exec")
            codes = [c for c in module.co_consts if isinstance(c, types.CodeType)]
            assert codes and not [c.co_name for c in codes if code_fingerprint(c) in references], chapter


def test_fingerprint_follows_the_code_not_the_name_or_the_place():
    from attention_course.maths import scoring

    namespace = {"np": np}
    exec(inspect.getsource(scoring.softmax).replace("def softmax(", "def renamed("), namespace)
    copy = types.FunctionType(scoring.softmax.__code__, {})
    assert code_fingerprint(namespace["renamed"].__code__) == code_fingerprint(scoring.softmax.__code__)
    assert code_fingerprint(copy.__code__) == code_fingerprint(scoring.softmax.__code__)
    assert code_fingerprint(scoring.dot_product_score.__code__) != code_fingerprint(scoring.softmax.__code__)
    with pytest.raises(TypeError, match="code object"):
        code_fingerprint(scoring.softmax)


# ------------------------------------------------------------------------------ the routes, in this process
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_each_route_to_the_reference_is_found(route):
    value, judged = run_route(ROUTES[route], watch(["softmax"]))
    assert np.allclose(value, np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())  # the borrowed code works...
    assert judged and judged["softmax"]["found"], route  # ...and is found
    assert all(SOFTMAX in why for why in judged["softmax"]["found"]), judged
    assert not judged["softmax"]["tampering"], judged


def test_the_source_text_misses_the_hidden_routes():
    """What the object analysis adds: the source-text analysis sees the plain routes only."""
    for route, code in ROUTES.items():
        found = borrowing.borrowed([code], ["softmax"], set())
        assert bool(found) == (route in PLAIN), (route, found)


def test_an_honest_softmax_and_the_package_s_own_calls_are_not_borrowing():
    """The student's own code is not flagged, nor the package calling a reference for it (a chapter helper)."""
    honest = ("def softmax(x, axis=-1):\n    e = np.exp(x - np.max(x, axis=axis, keepdims=True))\n"
              "    return e / e.sum(axis=axis, keepdims=True)\n")
    assert run_route(honest, watch(["softmax"]))[1] == {}
    helper = ("from attention_course.maths.scoring import attention as _general_form\n"
              "def softmax(x, axis=-1):\n"  # the package's attention calls its softmax: a chapter helper's own call
              "    return _general_form(np.zeros(1), np.zeros((3, 1)), np.eye(3), score='dot')[1][None]\n")
    value, judged = run_route(helper, watch(["softmax"]))
    assert judged == {} and np.allclose(value, 1 / 3)


@pytest.mark.parametrize("trick, words", [
    ("    sys.setprofile(None)\n", "sys.setprofile"),
    ("    list(map(sys.setprofile, [None]))\n", "profile function was replaced"),  # unseen: C calls it
    ("    sys.settrace(lambda *a: None)\n", "sys.settrace"),
    ("    import threading\n    threading.Thread(target=lambda: None).start()\n", "_thread.start"),
])
def test_switching_the_tracing_off_is_tampering(trick, words):
    code = ("import sys, importlib\n_m = importlib.import_module('attention_course.maths.scoring')\n"
            f"def softmax(x, axis=-1):\n{trick}    return vars(_m)['soft' + 'max'](x, axis)\n")
    w = watch(["softmax"])
    try:
        _, judged = run_route(code, w)
    finally:
        sys.settrace(None)
    assert any(words in t for t in judged["softmax"]["tampering"]), judged


def test_the_audit_hook_s_news_of_a_profile_change_is_tampering_unless_the_watch_s_own():
    """The worker's audit hook tells the watch of every sys.setprofile/settrace (also one that C code
    makes, e.g. ``map(sys.setprofile, [None])``, which the profile function cannot see)."""
    w = watch(["softmax"])
    w.audit("sys.setprofile")  # between calls: nothing to blame
    w.start(1)
    w._set(w.profiler)  # the watch's own
    w.stop()
    assert w.evidence[1] == (set(), [])
    w.start(2)
    w.audit("sys.settrace")
    w.stop()
    assert w.evidence[2] == (set(), ["its code called sys.settrace"])


def test_what_the_worker_says_counts_only_for_this_chapter_s_references():
    references = reference_fingerprints(["softmax"])
    (fp,) = references
    other = next(iter(reference_fingerprints(["dot_product_score"])))
    evidence = {"softmax": {"static": [[fp, "softmax -> global f"], [other, "x"], "junk", [1, 2]],
                            "dynamic": [[fp, "loop"]], "tampering": ["t", 3]},
                "dot_product_score": {"static": [[fp, "y"]]}, "cosine_score": "junk"}
    judged = judge_evidence(evidence, references, ["softmax", "cosine_score"])
    assert set(judged) == {"softmax"} and judged["softmax"]["tampering"] == ["t"]
    assert judged["softmax"]["found"] == [f"calling softmax ran {SOFTMAX} (called by loop)",
                                          f"softmax -> global f has the code of {SOFTMAX}"]
    assert judge_evidence("junk", references, ["softmax"]) == {}
    assert judge_evidence({"softmax": {"static": [[fp, "s"]]}}, {}, ["softmax"]) == {}


def test_reached_code_runs_none_of_the_student_s_code():
    calls = []

    class Sneaky:
        def __getattr__(self, name):
            calls.append(name)
            raise AttributeError(name)

        @property
        def __dict__(self):
            calls.append("__dict__")
            return {}

    target = Sneaky()
    fn = functools.partial(lambda x: target, 1)
    borrowing.reached_code(fn, "f", lambda code: True)
    assert calls == []


# ------------------------------------------------------------------------------ through the real grader
@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A small class of Ch. 3 submissions graded by ``python -m attention_course.grading``: one honest,
    one per route, one whose softmax switches the grader's tracing off."""
    from grading_fixtures import course_copy, submission, write
    from test_grading import read_rows, run_grader

    tmp = tmp_path_factory.mktemp("borrowing")
    course = course_copy(tmp)
    cases = {"honest_general_form.ipynb": submission()}
    cases.update({f"{route}_general_form.ipynb": submission({"softmax": code}) for route, code in ROUTES.items()})
    cases["tamper_general_form.ipynb"] = submission({"softmax": (
        _LOAD + "import sys\ndef softmax(x, axis=-1):\n    list(map(sys.setprofile, [None]))\n"
        "    m = [v for k, v in list(sys.modules.items()) if k.endswith('.scoring')][0]\n"
        "    return vars(m)['soft' + 'max'](x, axis)\n")})
    for name, nb in cases.items():
        write(tmp / "submissions", name, nb)
    proc = run_grader(tmp / "submissions", tmp / "out", course)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return read_rows(tmp / "out")


@pytest.mark.slow
def test_honest_submission_keeps_full_marks(graded_class):
    row = graded_class["honest_general_form.ipynb"]
    assert (row["status"], float(row["total"])) == ("ok", 15.0), row


@pytest.mark.slow
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_each_route_scores_zero_for_that_exercise_through_the_grader(graded_class, route):
    row = graded_class[f"{route}_general_form.ipynb"]
    assert row["status"] == "borrowed_reference" and float(row["test_softmax"]) == 0, row
    assert float(row["total"]) == 12.0, row  # the other exercises are the student's own
    if route not in PLAIN:
        assert SOFTMAX in row["reason"], row  # found on the objects, not in the text


@pytest.mark.slow
def test_switching_the_tracing_off_costs_the_exercise(graded_class):
    row = graded_class["tamper_general_form.ipynb"]
    assert row["status"] == "tampering" and float(row["test_softmax"]) == 0 and float(row["total"]) == 12, row
    assert "sys.setprofile" in row["reason"], row


# ------------------------------------------------------------------------------ the checker's side
def test_a_missing_report_is_noted_and_a_good_one_judged():
    from attention_course.grading import checker

    a = load_course(ROOT)["ch03_general_form"]
    (fp,) = reference_fingerprints(["softmax"])

    class FakeWorker:
        dead = None

        def __init__(self, reply):
            self.reply = reply

        def request(self, message, timeout):
            assert message == ("borrowing", a.graded_names)
            return self.reply

    result = {"notes": []}
    checker._add_borrowing(FakeWorker(("raise", "error", "CellTimeout", "")), a, result)
    assert result["borrowed"] == {} and "did not report" in result["notes"][0]
    result = {"notes": []}
    checker._add_borrowing(FakeWorker(("ok", {"softmax": {"static": [[fp, "softmax"]]}})), a, result)
    assert result["notes"] == [] and result["borrowed"] == {
        "softmax": {"found": [f"softmax has the code of {SOFTMAX}"], "tampering": []}}


def test_check_borrowing_takes_the_exercise_s_points_for_what_the_objects_show():
    from attention_course.grading.gradebook import Row, check_borrowing
    from grading_fixtures import submission

    a = load_course(ROOT)["ch03_general_form"]
    tests = [{"grade_id": t.grade_id, "max": t.points, "points": t.points, "outcome": "passed", "message": "",
              "instructor": ""} for t in a.tests]
    row = Row(student="s", file="s.ipynb", notebook=submission(), tests=tests)
    row.points = {t["grade_id"]: t["points"] for t in tests}
    check_borrowing(row, a, {"softmax": {"found": ["softmax -> global f has the code of X", "b"], "tampering": []},
                             "cosine_score": {"found": [], "tampering": ["its code called sys.settrace"]}})
    assert row.points["test_softmax"] == 0 and row.points["test_cosine_score"] == 0
    assert row.total == a.max_points - 3 - 2 and set(row.statuses) == {"borrowed_reference", "tampering"}, row.points
    assert any("(softmax -> global f has the code of X (and 1 more))" in str(r) for r in row.reasons), row.reasons
    check_borrowing(row, a, None)  # only the text: the honest notebook loses nothing more
    assert row.total == a.max_points - 5


_TIMEOUT_SCENARIO = '''
import signal, sys
sys.path.insert(0, {tests!r})
from test_borrowing import watch

class Timeout(BaseException):
    pass

w = watch(["softmax"])
removed = 0

def hook(event, args):  # as the worker's audit hook: tell the watch; count the removals it did not make
    global removed
    if event in ("sys.setprofile", "sys.settrace"):
        removed += not w.own
        w.audit(event)

sys.addaudithook(hook)
announce = {announce}

def on_alarm(signum, frame):
    if announce:
        w.time_is_up()  # what SandboxWorker.on_alarm does
    raise Timeout()

def busy():  # Python calls all the time: the alarm lands inside the profile function now and then
    def f(x):
        return x + 1
    while True:
        f(1)

signal.signal(signal.SIGALRM, on_alarm)
for attempt in range(40):
    w.start(attempt)
    signal.setitimer(signal.ITIMER_REAL, 0.002)
    try:
        busy()
    except Timeout:
        pass
    w.stop(timed_out=True)
print(removed, sum(bool(w.evidence[k][1]) for k in w.evidence))
'''


@pytest.mark.parametrize("announce", [True, False])
def test_a_time_limit_inside_the_profile_function_is_not_tampering(announce):
    """A time limit's exception raised inside the profile function makes Python remove the profile
    function, with a ``sys.setprofile`` audit event of its own: the worker's alarm handler tells the
    watch first (``time_is_up``), so the call fails on its time limit, not as tampering. Without that
    notice (the control) the same events are taken for tampering, so the test can tell."""
    code = _TIMEOUT_SCENARIO.format(tests=str(ROOT / "tests"), announce=announce)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    removed, blamed = map(int, proc.stdout.split())
    assert removed > 0, "the alarm never landed inside the profile function: the scenario tests nothing"
    assert (blamed == 0) if announce else (blamed >= 1), (removed, blamed)
