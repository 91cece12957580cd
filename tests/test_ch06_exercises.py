"""The Chapter 6 exercise checks can fail: run them against typical wrong answers.

Each check cell of solutions/ch06_attention_and_llms/attention_and_llms.ipynb (public and hidden
tests) is executed after a deliberately wrong implementation; it must raise AssertionError.
With the reference solution every check must pass.
"""
import textwrap

import pytest

from course_tools import ROOT, ExerciseNotebook, course_imports

NOTEBOOK = ROOT / "solutions" / "ch06_attention_and_llms" / "attention_and_llms.ipynb"
CELLS = ExerciseNotebook(NOTEBOOK).sources  # grade_id -> source
PRELUDE = "import math\nimport torch\nimport torch.nn.functional as F\n"


def run_check(check_id: str, implementation: str) -> None:
    namespace: dict = {}
    exec(PRELUDE, namespace)
    exec(textwrap.dedent(implementation), namespace)
    exec(CELLS[check_id], namespace)


BLOCK_BODY = '''
def transformer_block(x, params, mask=None):
    p = params
    batch, n, d = x.shape
    h = p["num_heads"]; d_k = d // h
    heads = lambda t: t.reshape(batch, n, h, d_k).transpose(1, 2)
    def attention(z):
        Q, K, V = heads(z @ p["W_q"]), heads(z @ p["W_k"]), heads(z @ p["W_v"])
        s = Q @ K.transpose(-2, -1) / SCALE
        if mask is not None and USE_MASK:
            s = s.masked_fill(~mask, float("-inf"))
        return (torch.softmax(s, -1) @ V).transpose(1, 2).reshape(batch, n, d) @ p["W_o"]
    ln = lambda z, i: F.layer_norm(z, (d,), p[f"ln{i}_weight"], p[f"ln{i}_bias"], eps=1e-5)
    ffn = lambda z: F.gelu(z @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]
    VARIANT
'''
CORRECT_BLOCK = "x = x + attention(ln(x, 1))\n    return x + ffn(ln(x, 2))"
BLOCK_MUTANTS = {
    "residual added after the norm": "z = ln(x, 1)\n    x = z + attention(z)\n    z = ln(x, 2)\n    return z + ffn(z)",
    "post-norm instead of pre-norm": "x = ln(x + attention(x), 1)\n    return ln(x + ffn(x), 2)",
    "no residual around the MLP": "x = x + attention(ln(x, 1))\n    return ffn(ln(x, 2))",
}


def block(variant, scale="math.sqrt(d_k)", use_mask=True):
    return BLOCK_BODY.replace("VARIANT", variant).replace("SCALE", scale).replace("USE_MASK", str(use_mask))


CACHE_BODY = '''
def causal_self_attention_with_cache(x_t, cache, W_q, W_k, W_v, W_o, num_heads):
    batch, n_new, d = x_t.shape
    d_k = d // num_heads
    heads = lambda t: t.reshape(batch, t.shape[1], num_heads, d_k).transpose(1, 2)
    q, k, v = heads(x_t @ W_q), heads(x_t @ W_k), heads(x_t @ W_v)
    if "k" in cache:
        k = torch.cat([cache["k"], k], dim=2); v = torch.cat([cache["v"], v], dim=2)
    UPDATE
    total = k.shape[2]
    allowed = MASK
    s = (q @ k.transpose(-2, -1) / math.sqrt(d_k)).masked_fill(~allowed, float("-inf"))
    return (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(batch, n_new, d) @ W_o
'''
GOOD_UPDATE = 'cache["k"], cache["v"] = k, v'
GOOD_MASK = "torch.ones(total, total, dtype=torch.bool).tril()[total - n_new:]"
CACHE_MUTANTS = {
    "mask missing (prompt sees the future)": (GOOD_UPDATE, "torch.ones(n_new, total, dtype=torch.bool)"),
    "cache not updated": ("pass", GOOD_MASK),
    "cache only stores the first call": ('cache.setdefault("k", k); cache.setdefault("v", v)', GOOD_MASK),
    "mask not offset by the cached length": (GOOD_UPDATE, "torch.ones(total, total, dtype=torch.bool).tril()[:n_new]"),
    "cache rebound instead of updated (issue 17)": ('cache = {"k": k, "v": v}', GOOD_MASK),
}

def test_cache_check_catches_all_positions_returned():
    """A step that returns the outputs of every position so far (issue 17: was a size mismatch in the test)."""
    impl = CACHE_BODY.replace("UPDATE", GOOD_UPDATE).replace("MASK", "torch.ones(total, total, dtype=torch.bool).tril()")
    impl = impl.replace("s = (q @", "q = heads(torch.cat([x_t.new_zeros(batch, total - n_new, d), x_t], 1) @ W_q) if total > n_new else q\n    s = (q @")
    impl = impl.replace("reshape(batch, n_new, d)", "reshape(batch, -1, d)")
    with pytest.raises(AssertionError):
        run_check("test_causal_self_attention_with_cache", impl)


SAMPLE_BODY = '''
def sample_next_token(logits, temperature, generator=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    BODY
'''
SAMPLE_MUTANTS = {
    "temperature applied after the softmax": "probs = torch.softmax(logits, -1) / temperature\n    return torch.multinomial(probs, 1, generator=generator)[:, 0]",
    "temperature multiplies the logits": "probs = torch.softmax(logits * temperature, -1)\n    return torch.multinomial(probs, 1, generator=generator)[:, 0]",
    "generator ignored": "probs = torch.softmax(logits / temperature, -1)\n    return torch.multinomial(probs, 1)[:, 0]",
    "always greedy": "return logits.argmax(dim=-1)",
    "samples not squeezed (issue 17: was a bincount error)": "probs = torch.softmax(logits / temperature, -1)\n    return torch.multinomial(probs, 1, generator=generator)",
    "float token ids": "probs = torch.softmax(logits / temperature, -1)\n    return torch.multinomial(probs, 1, generator=generator)[:, 0].float()",
}
GOOD_SAMPLE = "probs = torch.softmax(logits / temperature, -1)\n    return torch.multinomial(probs, 1, generator=generator)[:, 0]"


def test_the_checks_pass_on_the_reference_solutions():
    run_check("test_transformer_block", CELLS["transformer_block"])
    run_check("test_causal_self_attention_with_cache", CELLS["causal_self_attention_with_cache"])
    run_check("test_sample_next_token", CELLS["sample_next_token"])


def test_the_mutant_scaffolding_is_correct_when_not_mutated():
    run_check("test_transformer_block", block(CORRECT_BLOCK))
    run_check("test_causal_self_attention_with_cache", CACHE_BODY.replace("UPDATE", GOOD_UPDATE).replace("MASK", GOOD_MASK))
    run_check("test_sample_next_token", SAMPLE_BODY.replace("BODY", GOOD_SAMPLE))


@pytest.mark.parametrize("name", sorted(BLOCK_MUTANTS))
def test_block_check_catches(name):
    with pytest.raises(AssertionError):
        run_check("test_transformer_block", block(BLOCK_MUTANTS[name]))


def test_last_token_check_can_fail_on_a_pre_norm_block():
    """Issue 17: the check used to add +5 to every feature of the last token, which LayerNorm removes."""
    with pytest.raises(AssertionError, match="changing the LAST token"):
        run_check("test_transformer_block", block(CORRECT_BLOCK, use_mask=False))


def test_temperature_zero_division_is_named():
    impl = "def sample_next_token(logits, temperature, generator=None):\n" \
           "    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]\n"
    with pytest.raises(AssertionError, match="greedy"):
        run_check("test_sample_next_token", impl)


@pytest.mark.parametrize("what", ["mask ignored", "no sqrt(d_k)"])
def test_block_check_catches_attention_mistakes(what):
    impl = block(CORRECT_BLOCK, use_mask=False) if what == "mask ignored" else block(CORRECT_BLOCK, scale="1.0")
    with pytest.raises(AssertionError):
        run_check("test_transformer_block", impl)


@pytest.mark.parametrize("name", sorted(CACHE_MUTANTS))
def test_cache_check_catches(name):
    update, mask = CACHE_MUTANTS[name]
    with pytest.raises(AssertionError):
        run_check("test_causal_self_attention_with_cache", CACHE_BODY.replace("UPDATE", update).replace("MASK", mask))


@pytest.mark.parametrize("name", sorted(SAMPLE_MUTANTS))
def test_sampling_check_catches(name):
    with pytest.raises(AssertionError):
        run_check("test_sample_next_token", SAMPLE_BODY.replace("BODY", SAMPLE_MUTANTS[name]))


def test_student_notebook_does_not_import_the_answers():
    assert course_imports(NOTEBOOK) <= {"attention_course.grading.checks"}
