"""The checks of exercises 3 fail on the typical mistakes (mutants) and pass the solutions.

Each check cell (public and hidden tests) of the nbgrader source is run against the solution and
against wrong implementations: the solution must pass, each mutant must raise an AssertionError,
the way a student would see it. Every check cell has at least one mutant, including the three that
issue 17 found passing every public check (scores that work for one query only, pooling as a loop
returning a list).
"""
import textwrap

import pytest

from course_tools import ROOT, ExerciseNotebook, course_imports

NOTEBOOK = ROOT / "solutions" / "ch03_general_form" / "general_form.ipynb"
EXERCISE = ExerciseNotebook(NOTEBOOK)

MUTANTS = {
    "softmax": {
        "no max subtracted (overflows)": """
            def softmax(x, axis=-1):
                e = np.exp(np.asarray(x, dtype=float))
                return e / e.sum(axis=axis, keepdims=True)
        """,
        "one maximum for the whole array": """
            def softmax(x, axis=-1):
                x = np.asarray(x, dtype=float)
                e = np.exp(x - x.max())
                return e / e.sum(axis=axis, keepdims=True)
        """,
        "axis argument ignored": """
            def softmax(x, axis=-1):
                x = np.asarray(x, dtype=float)
                e = np.exp(x - x.max(axis=-1, keepdims=True))
                return e / e.sum(axis=-1, keepdims=True)
        """,
        "normalised over the whole array": """
            def softmax(x, axis=-1):
                x = np.asarray(x, dtype=float)
                e = np.exp(x - x.max())
                return e / e.sum()
        """,
        "input changed in place": """
            def softmax(x, axis=-1):
                x -= np.max(x, axis=axis, keepdims=True)
                np.exp(x, out=x)
                x /= np.sum(x, axis=axis, keepdims=True)
                return x
        """,
    },
    "dot_product_score": {
        "K not transposed": """
            def dot_product_score(q, K):
                return np.asarray(K, dtype=float) @ np.asarray(q, dtype=float)
        """,
        "returns a list": """
            def dot_product_score(q, K):
                return [float(np.dot(q, k)) for k in K]
        """,
    },
    "scaled_dot_product_score": {
        "divided by d_k": """
            def scaled_dot_product_score(q, K):
                K = np.asarray(K, float)
                return np.asarray(q, float) @ K.T / K.shape[-1]
        """,
        "divided by sqrt(n)": """
            def scaled_dot_product_score(q, K):
                K = np.asarray(K, float)
                return np.asarray(q, float) @ K.T / np.sqrt(K.shape[0])
        """,
        "sqrt(d_k) hard-coded for the example (caught by the hidden tests)": """
            def scaled_dot_product_score(q, K):
                return np.asarray(q, float) @ np.asarray(K, float).T / 3
        """,
    },
    "additive_score": {
        "works for one query only (issue 17)": """
            def additive_score(q, K, W_q, W_k, w_v):
                return np.tanh(np.asarray(W_q) @ np.asarray(q) + np.asarray(K) @ np.asarray(W_k).T) @ np.asarray(w_v)
        """,
        "no tanh": """
            def additive_score(q, K, W_q, W_k, w_v):
                q, K = np.asarray(q, float), np.asarray(K, float)
                return ((q @ W_q.T)[..., None, :] + K @ W_k.T) @ w_v
        """,
    },
    "cosine_score": {
        "divided by the norm of the whole K": """
            def cosine_score(q, K):
                q, K = np.asarray(q, float), np.asarray(K, float)
                return q @ K.T / (np.linalg.norm(q) * np.linalg.norm(K))
        """,
        "one norm for the whole batch of queries": """
            def cosine_score(q, K):
                q, K = np.asarray(q, float), np.asarray(K, float)
                return q @ (K / np.linalg.norm(K, axis=-1, keepdims=True)).T / np.linalg.norm(q)
        """,
    },
    "bilinear_score": {
        "works for one query only (issue 17)": """
            def bilinear_score(q, K, W):
                return np.asarray(K, float) @ (np.asarray(W, float).T @ np.asarray(q, float))
        """,
        "W transposed": """
            def bilinear_score(q, K, W):
                return np.asarray(q, float) @ np.asarray(W, float).T @ np.asarray(K, float).T
        """,
    },
    "attention_pooling": {
        "a loop returning a list (issue 17)": """
            def attention_pooling(weights, V):
                return [sum(w * v for w, v in zip(row, V)) for row in np.atleast_2d(weights)] \
                    if np.ndim(weights) == 2 else list(sum(w * v for w, v in zip(weights, V)))
        """,
        "four values hard-coded for the example (caught by the hidden tests)": """
            def attention_pooling(weights, V):
                w, V = np.asarray(weights, float), np.asarray(V, float)
                return sum(w[..., i, None] * V[i] for i in range(4))
        """,
        "plain mean": """
            def attention_pooling(weights, V):
                return np.asarray(V, float).mean(axis=0) + 0 * np.asarray(weights, float)[..., :1]
        """,
    },
}
CASES = [(fn, name) for fn, mutants in MUTANTS.items() for name in mutants]


def namespace():
    return EXERCISE.namespace()


@pytest.mark.parametrize("function", sorted(MUTANTS))
def test_solution_passes_its_check(function):
    exec(EXERCISE.sources[f"test_{function}"], namespace())


@pytest.mark.parametrize("function,mutant", CASES, ids=[f"{f}:{m}" for f, m in CASES])
def test_check_catches_the_mistake(function, mutant):
    ns = namespace()
    exec(textwrap.dedent(MUTANTS[function][mutant]), ns)
    with pytest.raises(AssertionError):
        exec(EXERCISE.sources[f"test_{function}"], ns)


@pytest.mark.parametrize("function,mutant", [c for c in CASES if "hidden tests" not in c[1]],
                         ids=[f"{f}:{m}" for f, m in CASES if "hidden tests" not in m])
def test_public_part_catches_the_mistake(function, mutant):
    """What the hidden tests catch, the public part catches too (only varied data is left to them)."""
    ns = namespace()
    exec(textwrap.dedent(MUTANTS[function][mutant]), ns)
    with pytest.raises(AssertionError):
        exec(EXERCISE.public(f"test_{function}"), ns)


def test_every_check_has_mutants():
    assert {f"test_{fn}" for fn in MUTANTS} == set(EXERCISE.graded)


def test_student_notebook_does_not_import_the_answers():
    assert course_imports(NOTEBOOK) <= {"attention_course.grading.checks"}
