"""The typical wrong answers of Chapter 3 (the general form: scores, softmax, pooling): see tests/wrong_answers/__init__.py."""
from __future__ import annotations

from wrong_answers import Wrong

NOTEBOOK = "ch03_general_form/general_form.ipynb"  # in solutions/

_WRONG = {
    "softmax without subtracting the maximum": ("test_softmax", """
        def softmax(x, axis=-1):
            e = np.exp(np.asarray(x, dtype=float))
            return e / e.sum(axis=axis, keepdims=True)
    """, ("overflowed", "subtract the maximum")),
    "softmax with one maximum for the whole array": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max())
            return e / e.sum(axis=axis, keepdims=True)
    """, ("each row", "not one maximum")),
    "softmax down the columns": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max(axis=0, keepdims=True))
            return e / e.sum(axis=0, keepdims=True)
    """, ("columns sum to 1",)),
    "softmax ignores the axis argument": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
    """, ("axis=0", "use the axis argument")),
    "softmax changes its input": ("test_softmax", """
        def softmax(x, axis=-1):
            x -= np.max(x, axis=axis, keepdims=True)
            np.exp(x, out=x)
            x /= np.sum(x, axis=axis, keepdims=True)
            return x
    """, ("in place",)),
    "softmax without keepdims (raw broadcast error before)": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - np.max(x, axis=axis))
            return e / np.sum(e, axis=axis)
    """, ("stopped with an error", "keepdims=true")),
    "dot product with K not transposed (gufunc error before)": ("test_dot_product_score", """
        def dot_product_score(q, K):
            return np.asarray(q, float) @ np.asarray(K, float)
    """, ("stopped with an error", "k.t")),
    "dot product as a list": ("test_dot_product_score", """
        def dot_product_score(q, K):
            return [float(np.dot(q, k)) for k in K]
    """, ("numpy array", "list")),
    "dot product for one query only": ("test_dot_product_score", """
        def dot_product_score(q, K):
            return np.asarray(K, float) @ np.asarray(q, float)
    """, ("batch of 3 queries",)),
    "scaled by d_k": ("test_scaled_dot_product_score", """
        def scaled_dot_product_score(q, K):
            K = np.asarray(K, float)
            return np.asarray(q, float) @ K.T / K.shape[-1]
    """, ("divided by d_k = 9",)),
    "scaled by sqrt(n)": ("test_scaled_dot_product_score", """
        def scaled_dot_product_score(q, K):
            K = np.asarray(K, float)
            return np.asarray(q, float) @ K.T / np.sqrt(K.shape[0])
    """, ("sqrt(n)",)),
    "scaled by sqrt of the query count for a batch": ("test_scaled_dot_product_score", """
        def scaled_dot_product_score(q, K):
            q = np.asarray(q, float)
            return q @ np.asarray(K, float).T / np.sqrt(q.shape[0] if q.ndim == 2 else 9)
    """, ("number of queries",)),
    "additive score for one query only (issue 17)": ("test_additive_score", """
        def additive_score(q, K, W_q, W_k, w_v):
            return np.tanh(np.asarray(W_q) @ np.asarray(q) + np.asarray(K) @ np.asarray(W_k).T) @ np.asarray(w_v)
    """, ("batch of 2 queries", "projected_q[..., none, :]")),
    "additive score without tanh": ("test_additive_score", """
        def additive_score(q, K, W_q, W_k, w_v):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return ((q @ W_q.T)[..., None, :] + K @ W_k.T) @ w_v
    """, ("tanh is missing",)),
    "additive score with W_q and W_k swapped (raw error before)": ("test_additive_score", """
        def additive_score(q, K, W_q, W_k, w_v):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return np.tanh((q @ W_k.T)[..., None, :] + K @ W_q.T) @ w_v
    """, ("stopped with an error", "w_q", "multiplies the query")),
    "cosine divided by the norm of the whole K": ("test_cosine_score", """
        def cosine_score(q, K):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return q @ K.T / (np.linalg.norm(q) * np.linalg.norm(K))
    """, ("whole matrix k",)),
    "cosine with the norms of K's columns": ("test_cosine_score", """
        def cosine_score(q, K):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return (q / np.linalg.norm(q)) @ (K / np.linalg.norm(K, axis=0)).T
    """, ("columns",)),
    "cosine with one norm for the whole batch of queries": ("test_cosine_score", """
        def cosine_score(q, K):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return q @ (K / np.linalg.norm(K, axis=-1, keepdims=True)).T / np.linalg.norm(q)
    """, ("own length",)),
    "bilinear for one query only (issue 17)": ("test_bilinear_score", """
        def bilinear_score(q, K, W):
            return np.asarray(K, float) @ (np.asarray(W, float).T @ np.asarray(q, float))
    """, ("batch of 2 queries",)),
    "bilinear with W transposed": ("test_bilinear_score", """
        def bilinear_score(q, K, W):
            return np.asarray(q, float) @ np.asarray(W, float).T @ np.asarray(K, float).T
    """, ("stopped with an error", "q @ w @ k.t")),
    "bilinear with W transposed, square W": ("test_bilinear_score", """
        def bilinear_score(q, K, W):
            W = np.asarray(W, float)
            W = W.T if W.shape[0] == W.shape[1] else W
            return np.asarray(q, float) @ W @ np.asarray(K, float).T
    """, ("you used w.t",)),
    "pooling as a loop returning a list (issue 17)": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            return [sum(w * v for w, v in zip(weights, V))]
    """, ("numpy array", "list")),
    "pooling: plain mean": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            return np.asarray(V, float).mean(axis=0)
    """, ("plain mean",)),
    "pooling for one query only": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            return np.asarray(V, float).T @ np.asarray(weights, float)
    """, ("stopped with an error", "weights @ v")),
}

# words=(): the public part rejects the answer, its message is not pinned; None: only the hidden tests catch it.
_WRONG.update({
    "softmax normalised over the whole array": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max())
            return e / e.sum()
    """, ()),
    "sqrt(d_k) hard-coded for the example (caught by the hidden tests)": ("test_scaled_dot_product_score", """
        def scaled_dot_product_score(q, K):
            return np.asarray(q, float) @ np.asarray(K, float).T / 3
    """, None),
    "pooling as a loop returning a list of rows (issue 17)": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            return [sum(w * v for w, v in zip(row, V)) for row in np.atleast_2d(weights)] \
                if np.ndim(weights) == 2 else list(sum(w * v for w, v in zip(weights, V)))
    """, ()),
    "pooling: four values hard-coded for the example (caught by the hidden tests)": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            w, V = np.asarray(weights, float), np.asarray(V, float)
            return sum(w[..., i, None] * V[i] for i in range(4))
    """, None),
    "pooling: plain mean, broadcast to the weights' batch": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            return np.asarray(V, float).mean(axis=0) + 0 * np.asarray(weights, float)[..., :1]
    """, ()),
})


WRONG: dict[str, Wrong] = {name: Wrong(*entry) for name, entry in _WRONG.items()}
