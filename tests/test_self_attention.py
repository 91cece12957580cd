"""Self-attention, masks and positional encoding against PyTorch and the definitions."""
import math

import pytest
import torch
import torch.nn.functional as F

from attention_course.maths.numerics import assert_agree, rounding_tolerance
from attention_course.maths.self_attention import (
    causal_mask, is_permutation_equivariant, scaled_dot_product_attention, self_attention,
    sinusoidal_positional_encoding, window_mask,
)

G = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.randn(*shape, generator=G, dtype=torch.float64)


@pytest.mark.numerics
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_matches_torch_sdpa_with_and_without_masks(dtype):
    Q, K, V = rand(2, 5, 4).to(dtype), rand(2, 5, 4).to(dtype), rand(2, 5, 3).to(dtype)
    for mask in (None, causal_mask(5), window_mask(5, 1)):
        ours, weights = scaled_dot_product_attention(Q, K, V, mask)
        ref = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
        assert_agree(ours, ref, reduction=5, what="ours vs F.scaled_dot_product_attention")  # 5 keys, d_k = 4
        assert (weights.sum(-1) - 1).abs().max() <= rounding_tolerance(dtype, 5)  # 5 weights in [0, 1]
        if mask is not None:
            assert torch.all(weights[:, ~mask] == 0), "masked positions must get weight exactly 0"


@pytest.mark.numerics
def test_one_output_step_by_step():
    """The lecture's b^1: weights of query 1 over all keys, then the weighted sum of values."""
    X, W_q, W_k, W_v = rand(1, 4, 6), rand(6, 3), rand(6, 3), rand(6, 2)
    out, weights = self_attention(X, W_q, W_k, W_v)
    q1 = X[0, 0] @ W_q
    scores = torch.stack([q1 @ (X[0, j] @ W_k) for j in range(4)]) / math.sqrt(3)
    alpha = torch.softmax(scores, dim=0)
    b1 = sum(alpha[j] * (X[0, j] @ W_v) for j in range(4))
    # the loop against the matrix products; the longest sum: the projections over d_model = 6
    assert_agree(weights[0, 0], alpha, reduction=6, what="weights of query 1, step by step")
    assert_agree(out[0, 0], b1, reduction=6, what="b^1, step by step")


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
    float32 = rounding_tolerance(torch.float32)  # pe is float32, and |sin|, |cos| <= 1
    assert math.isclose(pe[p, 2 * i].item(), math.sin(p / 10000 ** (2 * i / 8)), abs_tol=float32)
    assert math.isclose(pe[p, 2 * i + 1].item(), math.cos(p / 10000 ** (2 * i / 8)), abs_tol=float32)
    # PE(p + k) = PE(p) M_k for one fixed matrix M_k (least squares on p = 0..39, checked on all p).
    k = 5
    M = torch.linalg.lstsq(pe[:40], pe[k:40 + k]).solution
    # pe holds float32 values of size <= 1: their rounding, through a fit over 40 positions, bounds the residual
    torch.testing.assert_close(pe[:45] @ M, pe[k:50], atol=rounding_tolerance(torch.float32, 40), rtol=0)
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


@pytest.mark.numerics
def test_a_query_with_nothing_to_attend_to_gets_zero_weights_not_nan():
    """masked_softmax's documented behaviour, shared by every attention of the package."""
    from attention_course.maths.self_attention import masked_softmax

    torch.manual_seed(0)
    Q, K, V = torch.randn(1, 3, 4), torch.randn(1, 3, 4), torch.randn(1, 3, 2)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    out, w = scaled_dot_product_attention(Q, K, V, mask)
    assert torch.isfinite(out).all() and torch.equal(w[0, 1], torch.zeros(3)) and torch.equal(out[0, 1], torch.zeros(2))
    assert_agree(w[0, 2], torch.softmax(Q[0, 2] @ K[0].T / 2, -1), reduction=4, what="an unmasked row")
    # exact by construction: exp(0 - 0) = 1 and 1 + 1 + 1 = 3 exactly, then one correctly rounded 1 / 3
    assert torch.equal(masked_softmax(torch.zeros(2, 3)), torch.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="bool"):
        masked_softmax(torch.zeros(2, 3), torch.ones(2, 3))
