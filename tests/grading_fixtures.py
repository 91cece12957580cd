"""Fixture submissions for tests/test_grading.py and benchmarks/grading_throughput.py.

Every notebook is built in a temporary folder from the Ch. 3 student release (notebooks/) and the
solution code of the nbgrader source (solutions/); nothing large is committed.
"""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "ch03_general_form"
RELEASE = ROOT / "notebooks" / CHAPTER / "general_form.ipynb"
SOURCE = ROOT / "solutions" / CHAPTER / "general_form.ipynb"


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def solution_code() -> dict[str, str]:
    """grade_id -> the source's solution code, for every solution cell of Ch. 3."""
    nb = json.loads(SOURCE.read_text(encoding="utf-8"))
    return {c["metadata"]["nbgrader"]["grade_id"]: _src(c) for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution") and c["cell_type"] == "code"}


def code_cell(source: str, cell_id: str = "extra") -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {}, "outputs": [],
            "source": source}


def submission(answers: dict[str, str] | None = None, extra: list[tuple[int, str]] = (),
               solved: bool = True) -> dict:
    """The release notebook with its solution cells answered.

    answers: grade_id -> code replacing that cell (default: the real solution when ``solved``).
    extra: (position, code) cells inserted (position counts cells of the release; -1 = end).
    """
    nb = json.loads(RELEASE.read_text(encoding="utf-8"))
    code = solution_code() if solved else {}
    code.update(answers or {})
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in code:
            cell["source"] = code[grade_id]
    for n, (position, source) in enumerate(sorted(extra, key=lambda t: t[0] if t[0] >= 0 else 10**6, reverse=True)):
        cell = code_cell(source, f"extra{n}")
        if position < 0:
            nb["cells"].append(cell)
        else:
            nb["cells"].insert(position, cell)
    return nb


def strip_metadata(nb: dict) -> dict:
    """nbgrader metadata removed and every cell id changed (what some editors do)."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb["cells"]):
        cell["metadata"].pop("nbgrader", None)
        cell["id"] = f"renamed-{i}"
    return nb


def write(folder: Path, name: str, nb_or_text) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb_or_text, (bytes, bytearray)):
        path.write_bytes(nb_or_text)
    elif isinstance(nb_or_text, str):
        path.write_text(nb_or_text, encoding="utf-8")
    else:
        path.write_text(json.dumps(nb_or_text, indent=1), encoding="utf-8")
    return path


def course_copy(tmp: Path) -> Path:
    """A throw-away copy of the course (config, solutions, notebooks) that submissions may attack."""
    course = tmp / "course"
    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "notebooks"):
        shutil.copytree(ROOT / folder, course / folder,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return course


# Wrong implementations a student might write (the benchmark mixes them in).
MISTAKES = {
    "softmax": (
        "def softmax(x, axis=-1):\n"
        "    x = np.asarray(x, dtype=float)\n"
        "    e = np.exp(x)\n"
        "    return e / e.sum(axis=axis, keepdims=True)\n"),
    "softmax_global_max": (
        "def softmax(x, axis=-1):\n"
        "    x = np.asarray(x, dtype=float)\n"
        "    e = np.exp(x - x.max())\n"
        "    return e / e.sum(axis=axis, keepdims=True)\n"),
    "scaled_dot_product_score": (
        "def scaled_dot_product_score(q, K):\n"
        "    K = np.asarray(K, float)\n"
        "    return np.asarray(q, float) @ K.T / K.shape[-1]\n"),
    "additive_score": (
        "def additive_score(q, K, W_q, W_k, w_v):\n"
        "    return (np.asarray(K) @ np.asarray(W_k).T + np.asarray(W_q) @ np.asarray(q)) @ np.asarray(w_v)\n"),
    "cosine_score": (
        "def cosine_score(q, K):\n"
        "    q, K = np.asarray(q, float), np.asarray(K, float)\n"
        "    return q @ K.T / (np.linalg.norm(q) * np.linalg.norm(K))\n"),
    "bilinear_score": (
        "def bilinear_score(q, K, W):\n"
        "    return np.asarray(q, float) @ np.asarray(W, float).T @ np.asarray(K, float).T\n"),
    "attention_pooling": (
        "def attention_pooling(weights, V):\n"
        "    return np.asarray(V, float).T @ np.asarray(weights, float).T if np.ndim(weights) == 1 "
        "else np.asarray(weights) @ np.asarray(V)[::-1]\n"),
}


def write_small_class(subs: Path) -> None:
    """Three Chapter 3 submissions the grader's outputs are checked on: ``ann`` solved, ``bob`` without
    the 1/sqrt(d_k), ``cid`` with that and a softmax over the whole array's maximum."""
    write(subs, "ann_general_form.ipynb", submission())
    write(subs, "bob_general_form.ipynb", submission({"scaled_dot_product_score": MISTAKES["scaled_dot_product_score"]}))
    write(subs, "cid_general_form.ipynb", submission({"scaled_dot_product_score": MISTAKES["scaled_dot_product_score"],
                                                      "softmax": MISTAKES["softmax_global_max"]}))

# Passes every public check (their example has n = 4 values); only the hidden tests, which vary the
# data, catch it.
HIDDEN_ONLY_MISTAKE = {
    "attention_pooling": "def attention_pooling(weights, V):\n    w, V = np.asarray(weights, float), np.asarray(V, float)\n"
                         "    return sum(w[..., i, None] * V[i] for i in range(4))\n",
}


# ------------------------------------------------------------------------------------------------
# A synthetic torch assignment that exercises what the torch chapters need from the grader:
# callables from the checks passed into the student's functions (closures over tensors, test-cell
# classes, bound methods, nested calls back into the student's code), torch/numpy Generators and
# containers changed in place (a KV-cache dict), identity of arguments returned, time limits.
PROBE = "ch90_probe"

PROBE_SOLUTIONS = {
    "probe_functions": '''\
def apply(fn, X, *extra, **options):
    """Call a function the checks pass in."""
    ### BEGIN SOLUTION
    return fn(X, *extra, **options)
    ### END SOLUTION


def twice(fn, x):
    ### BEGIN SOLUTION
    return fn(fn(x))
    ### END SOLUTION


def double(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION


def same(x):
    ### BEGIN SOLUTION
    return x
    ### END SOLUTION


def call_it(fn):
    ### BEGIN SOLUTION
    return fn()
    ### END SOLUTION


def peek(fn):
    """What a submission can reach through a function of the grader: nothing but calling it."""
    ### BEGIN SOLUTION
    reached = []
    for name in ("__globals__", "__code__", "__closure__", "__self__", "__dict__", "_secret"):
        try:
            getattr(fn, name)
            reached.append(name)
        except Exception:
            pass
    return reached
    ### END SOLUTION
''',
    "probe_state": '''\
def sample_next_token(logits, temperature, generator):
    """One token id drawn from softmax(logits / temperature) with the caller's generator."""
    ### BEGIN SOLUTION
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
    ### END SOLUTION


def numpy_draw(rng, n):
    ### BEGIN SOLUTION
    return rng.normal(size=n)
    ### END SOLUTION


def update_cache(cache, k, v):
    """Append the new keys/values along the sequence axis; return the cached length."""
    ### BEGIN SOLUTION
    if "k" in cache:
        cache["k"] = torch.cat([cache["k"], k], dim=1)
        cache["v"] = torch.cat([cache["v"], v], dim=1)
    else:
        cache["k"], cache["v"] = k, v
    cache.setdefault("steps", []).append(k.shape[1])
    return cache["k"].shape[1]
    ### END SOLUTION


def scale_(x, c):
    ### BEGIN SOLUTION
    x.mul_(c)
    ### END SOLUTION


def fill_list(out, n):
    ### BEGIN SOLUTION
    out.extend(range(n))
    ### END SOLUTION
''',
}

PROBE_TESTS = {
    "test_callbacks": '''\
X = torch.arange(6, dtype=torch.float64).reshape(2, 3)
offset = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
assert torch.equal(apply(lambda Z: Z + offset, X), X + offset), "a lambda closing over a tensor"
def local_fn(Z, scale=1.0):
    return Z * scale
assert torch.equal(apply(local_fn, X, scale=3.0), 3 * X), "a test-cell function with keyword arguments"
assert torch.equal(twice(lambda Z: Z + offset, X), X + 2 * offset), "the same callback twice"
assert torch.equal(apply(torch.softmax, X, 1), torch.softmax(X, 1)), "a torch function"
calls = []
apply(calls.append, 5)
assert calls == [5], "a bound method runs on the checker's own object"
class Counter:
    def __init__(self):
        self.seen = []
    def __call__(self, z):
        self.seen.append(z)
        return len(self.seen)
counter = Counter()
assert apply(counter, 1) == 1 and apply(counter, 2) == 2 and counter.seen == [1, 2], "an instance of a test-cell class"
assert torch.equal(apply(lambda Z: double(Z) + 1, X), 2 * X + 1), "a callback that calls the student's code again"
def bad(Z):
    raise ValueError("bad input")
try:
    apply(bad, X)
    raised = False
except ValueError:
    raised = True
assert raised, "an exception of the checker's function reaches the student's code and comes back"
fn = lambda: 0
assert same(fn) is fn and same(X) is X, "the checker's own objects come back as themselves"
assert peek(lambda: 0) == [], "a submission must not reach the checker's internals"
''',
    "test_state": '''\
logits = torch.tensor([0.5, 1.0, 2.0, -1.0])
g, ref = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
draws = [sample_next_token(logits, 0.8, g) for _ in range(20)]
expected = [int(torch.multinomial(torch.softmax(logits / 0.8, -1), 1, generator=ref)) for _ in range(20)]
assert draws == expected, "the generator's state must advance in the caller's generator"
assert torch.equal(g.get_state(), ref.get_state())
rng, ref_rng = np.random.default_rng(3), np.random.default_rng(3)
for _ in range(2):
    assert np.allclose(numpy_draw(rng, 4), ref_rng.normal(size=4)), "numpy Generators too"
cache = {}
k1, v1 = torch.ones(1, 2, 4), torch.zeros(1, 2, 4)
assert update_cache(cache, k1, v1) == 2
assert cache["k"] is k1 and cache["v"] is v1 and cache["steps"] == [2], "the dict is filled in place"
steps = cache["steps"]
assert update_cache(cache, torch.full((1, 1, 4), 2.0), torch.full((1, 1, 4), 3.0)) == 3
assert tuple(cache["k"].shape) == (1, 3, 4) and float(cache["v"][0, 2, 0]) == 3.0, "replaced tensors come back"
assert cache["steps"] is steps and steps == [2, 1], "nested containers keep their identity"
x = torch.ones(3)
scale_(x, 5.0)
assert torch.equal(x, torch.full((3,), 5.0)), "a tensor changed in place"
a = np.ones(3)
scale_(torch.from_numpy(a), 2.0)
out = []
fill_list(out, 3)
assert out == [0, 1, 2], "a list filled in place"
frozen = np.ones(2)
frozen.flags.writeable = False
assert numpy_draw(np.random.default_rng(0), 1).shape == (1,) and same(frozen) is frozen
''',
    "test_time_limits": '''\
def spin():
    while True:
        pass
try:
    call_it(spin)
    stopped = False
except Exception:
    stopped = True
assert stopped, "a callback that never returns is stopped"
assert call_it(lambda: 3) == 3, "and the student's process still answers"
''',
}


def probe_notebook(solved: bool = True) -> dict:
    """The probe's nbgrader source notebook (``solved``) or a blank with the release's stubs."""
    cells = [{"cell_type": "markdown", "id": "intro", "metadata": {}, "source": "# Probe\n"},
             {"cell_type": "code", "id": "imports", "execution_count": None, "outputs": [],
              "metadata": {"nbgrader": {"grade": False, "solution": False, "locked": True,
                                        "grade_id": "imports", "schema_version": 3}},
              "source": "import numpy as np\nimport torch\n"}]
    for grade_id, code in PROBE_SOLUTIONS.items():
        if not solved:
            code = "\n\n".join(part.split("### BEGIN SOLUTION")[0].rstrip() + "\n    raise NotImplementedError()\n"
                               for part in code.split("\n\n\n"))
        cells.append({"cell_type": "code", "id": grade_id, "execution_count": None, "outputs": [], "source": code,
                      "metadata": {"nbgrader": {"grade": False, "solution": True, "locked": False,
                                                "grade_id": grade_id, "schema_version": 3}}})
    for grade_id, code in PROBE_TESTS.items():
        cells.append({"cell_type": "code", "id": grade_id, "execution_count": None, "outputs": [], "source": code,
                      "metadata": {"nbgrader": {"grade": True, "solution": False, "locked": True, "points": 1,
                                                "grade_id": grade_id, "schema_version": 3}}})
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}


def probe_course(tmp: Path) -> Path:
    """A course holding only the probe assignment."""
    course = tmp / "probe_course"
    write(course / "solutions" / PROBE, "probe.ipynb", probe_notebook())
    return course
