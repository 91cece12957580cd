"""Self-attention, masks and positional encoding against PyTorch and the definitions."""
import math

import pytest
import torch
import torch.nn.functional as F

from attention_course.self_attention import (
    causal_mask, is_permutation_equivariant, scaled_dot_product_attention, self_attention,
    sinusoidal_positional_encoding, window_mask,
)

G = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.randn(*shape, generator=G, dtype=torch.float64)


def test_matches_torch_sdpa_with_and_without_masks():
    Q, K, V = rand(2, 5, 4), rand(2, 5, 4), rand(2, 5, 3)
    for mask in (None, causal_mask(5), window_mask(5, 1)):
        ours, weights = scaled_dot_product_attention(Q, K, V, mask)
        ref = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
        torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5, dtype=torch.float64))
        if mask is not None:
            assert torch.all(weights[:, ~mask] == 0), "masked positions must get weight exactly 0"


def test_one_output_step_by_step():
    """The lecture's b^1: weights of query 1 over all keys, then the weighted sum of values."""
    X, W_q, W_k, W_v = rand(1, 4, 6), rand(6, 3), rand(6, 3), rand(6, 2)
    out, weights = self_attention(X, W_q, W_k, W_v)
    q1 = X[0, 0] @ W_q
    scores = torch.stack([q1 @ (X[0, j] @ W_k) for j in range(4)]) / math.sqrt(3)
    alpha = torch.softmax(scores, dim=0)
    b1 = sum(alpha[j] * (X[0, j] @ W_v) for j in range(4))
    torch.testing.assert_close(weights[0, 0], alpha)
    torch.testing.assert_close(out[0, 0], b1)


def test_masks():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert window_mask(4, 1).tolist() == [[True, True, False, False], [True, True, True, False],
                                         [False, True, True, True], [False, False, True, True]]
    assert window_mask(4, 1, causal=True).sum().item() == 7
    with pytest.raises(ValueError):
        causal_mask(0)


def test_positional_encoding_sin_even_cos_odd_and_linear_shift():
    pe = sinusoidal_positional_encoding(50, 8).double()
    p, i = 7, 1
    assert math.isclose(pe[p, 2 * i].item(), math.sin(p / 10000 ** (2 * i / 8)), abs_tol=1e-6)
    assert math.isclose(pe[p, 2 * i + 1].item(), math.cos(p / 10000 ** (2 * i / 8)), abs_tol=1e-6)
    # PE(p + k) = PE(p) M_k for one fixed matrix M_k (least squares on p = 0..39, checked on all p).
    k = 5
    M = torch.linalg.lstsq(pe[:40], pe[k:40 + k]).solution
    torch.testing.assert_close(pe[:45] @ M, pe[k:50], atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        sinusoidal_positional_encoding(10, 7)


def test_permutation_equivariance():
    X, W_q, W_k, W_v = rand(2, 6, 4), rand(4, 4), rand(4, 4), rand(4, 4)
    attend = lambda Z: self_attention(Z, W_q, W_k, W_v)  # noqa: E731
    assert is_permutation_equivariant(attend, X, generator=torch.Generator().manual_seed(1))
    pe = sinusoidal_positional_encoding(6, 4).double()
    with_positions = lambda Z: self_attention(Z + pe, W_q, W_k, W_v)  # noqa: E731
    assert not is_permutation_equivariant(with_positions, X, generator=torch.Generator().manual_seed(1))
    causal = lambda Z: self_attention(Z, W_q, W_k, W_v, causal_mask(6))  # noqa: E731
    assert not is_permutation_equivariant(causal, X, generator=torch.Generator().manual_seed(1))


def test_clear_errors():
    X = rand(1, 3, 4)
    with pytest.raises(ValueError, match=r"W_k must be \(d_model=4"):
        self_attention(X, rand(4, 2), rand(5, 2), rand(4, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        self_attention(X, rand(4, 2), rand(4, 2), rand(4, 2), mask=causal_mask(5))
    with pytest.raises(ValueError, match="bool"):
        self_attention(X, rand(4, 2), rand(4, 2), rand(4, 2), mask=torch.ones(3, 3))


def test_a_query_with_nothing_to_attend_to_gets_zero_weights_not_nan():
    """masked_softmax's documented behaviour, shared by every attention of the package."""
    from attention_course.self_attention import masked_softmax

    torch.manual_seed(0)
    Q, K, V = torch.randn(1, 3, 4), torch.randn(1, 3, 4), torch.randn(1, 3, 2)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    out, w = scaled_dot_product_attention(Q, K, V, mask)
    assert torch.isfinite(out).all() and torch.equal(w[0, 1], torch.zeros(3)) and torch.equal(out[0, 1], torch.zeros(2))
    assert torch.allclose(w[0, 2], torch.softmax(Q[0, 2] @ K[0].T / 2, -1))
    assert torch.equal(masked_softmax(torch.zeros(2, 3)), torch.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="bool"):
        masked_softmax(torch.zeros(2, 3), torch.ones(2, 3))
