"""The general form of attention (attention_course.maths.scoring) against independent formulas."""
import numpy as np
import pytest

from attention_course.maths import scoring
from attention_course.maths.numerics import assert_agree

RNG = np.random.default_rng(0)
M, N, D, DV, H = 3, 5, 4, 2, 6  # all different, so a transposed operand cannot pass by accident


def loop_scores(q, K, pair):
    """Scores computed one (query, key) pair at a time: the definition, no matrix tricks."""
    q = np.atleast_2d(q)
    return np.array([[pair(qi, kj) for kj in K] for qi in q])


@pytest.fixture
def qk():
    return RNG.normal(size=(M, D)), RNG.normal(size=(N, D))


@pytest.mark.numerics
def test_softmax_matches_definition_and_sums_to_one():
    x = RNG.normal(size=(M, N))
    expected = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    assert_agree(scoring.softmax(x), expected, reduction=N, what="softmax vs its definition")
    np.testing.assert_allclose(scoring.softmax(x, axis=0).sum(axis=0), np.ones(N))
    np.testing.assert_allclose(scoring.softmax(x).sum(axis=-1), np.ones(M))


def test_softmax_is_stable_and_shift_invariant():
    big = np.array([1000.0, 1001.0, 1002.0])
    out = scoring.softmax(big)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, scoring.softmax(big - 1000.0))
    assert scoring.softmax(np.array([0.0, -np.inf]))[1] == 0.0


def test_softmax_rejects_empty_and_all_masked():
    with pytest.raises(ValueError, match="empty"):
        scoring.softmax(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="-inf"):
        scoring.softmax(np.array([-np.inf, -np.inf]))


@pytest.mark.numerics
def test_dot_and_scaled_dot(qk):
    q, K = qk
    assert_agree(scoring.dot_product_score(q, K), loop_scores(q, K, np.dot), reduction=D, what="dot")
    assert_agree(scoring.scaled_dot_product_score(q, K), loop_scores(q, K, lambda a, b: a @ b / np.sqrt(D)),
                 reduction=D, what="scaled dot")
    assert scoring.dot_product_score(q[0], K).shape == (N,)


@pytest.mark.numerics
def test_cosine(qk):
    q, K = qk
    cos = lambda a, b: a @ b / (np.linalg.norm(a) * np.linalg.norm(b))  # noqa: E731
    assert_agree(scoring.cosine_score(q, K), loop_scores(q, K, cos), reduction=D, what="cosine")
    assert np.all(np.abs(scoring.cosine_score(q, K)) <= 1 + 1e-12)
    assert scoring.cosine_score(np.zeros(D), K).tolist() == [0.0] * N


@pytest.mark.numerics
def test_additive_allows_different_query_size():
    q = RNG.normal(size=(M, 7))  # d_q = 7, d_k = D
    K = RNG.normal(size=(N, D))
    W_q, W_k, w_v = RNG.normal(size=(H, 7)), RNG.normal(size=(H, D)), RNG.normal(size=H)
    expected = loop_scores(q, K, lambda a, b: w_v @ np.tanh(W_q @ a + W_k @ b))
    assert_agree(scoring.additive_score(q, K, W_q, W_k, w_v), expected, reduction=7, what="additive")  # d_q = 7
    assert scoring.additive_score(q[0], K, W_q, W_k, w_v).shape == (N,)


@pytest.mark.numerics
def test_bilinear_uses_W_the_right_way_round():
    q = RNG.normal(size=(M, 7))
    K = RNG.normal(size=(N, D))
    W = RNG.normal(size=(7, D))
    assert_agree(scoring.bilinear_score(q, K, W), loop_scores(q, K, lambda a, b: a @ W @ b), reduction=7,
                 what="bilinear")  # q W sums over d_q = 7
    square = RNG.normal(size=(D, D))
    qs = RNG.normal(size=(M, D))
    assert_agree(scoring.bilinear_score(qs, K, np.eye(D)), scoring.dot_product_score(qs, K), reduction=D,
                 what="bilinear with W = I vs dot")
    assert not np.allclose(scoring.bilinear_score(qs, K, square), scoring.bilinear_score(qs, K, square.T))


@pytest.mark.numerics
def test_attention_pooling_and_full_attention(qk):
    q, K = qk
    V = RNG.normal(size=(N, DV))
    context, weights = scoring.attention(q, K, V, score="scaled_dot")
    assert context.shape == (M, DV) and weights.shape == (M, N)
    np.testing.assert_allclose(weights.sum(axis=-1), np.ones(M))
    expected = np.array([sum(w * v for w, v in zip(row, V)) for row in weights])
    assert_agree(context, expected, reduction=N, what="pooling vs a loop over the keys")
    # Temperature -> 0 gives the hard lookup (the value of the best key).
    hard, _ = scoring.attention(q[0], K, V, score="dot", temperature=1e-6)
    np.testing.assert_allclose(hard, V[np.argmax(K @ q[0])], atol=1e-9)


@pytest.mark.parametrize("call, fragment", [
    (lambda: scoring.dot_product_score(np.ones(3), np.ones((5, 4))), r"\(3,\).*\(5, 4\)"),
    (lambda: scoring.scaled_dot_product_score(np.ones(4), np.ones(4)), r"2-D"),
    (lambda: scoring.bilinear_score(np.ones(3), np.ones((5, 4)), np.ones((4, 3))), r"W \(4, 3\)"),
    (lambda: scoring.additive_score(np.ones(3), np.ones((5, 4)), np.ones((6, 3)), np.ones((6, 4)), np.ones(5)), r"w_v \(5,\)"),
    (lambda: scoring.attention_pooling(np.ones(4) / 4, np.ones((5, 2))), r"weights \(4,\).*V \(5, 2\)"),
    (lambda: scoring.attention(np.ones(4), np.ones((5, 4)), np.ones((5, 2)), score="nope"), "unknown score"),
    (lambda: scoring.attention(np.ones(4), np.ones((5, 4)), np.ones((5, 2)), temperature=0), "temperature"),
])
def test_bad_shapes_raise_clear_errors(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
