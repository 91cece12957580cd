"""The typical wrong answers of Chapter 6 (a Transformer block, the KV cache, sampling): see tests/wrong_answers/__init__.py."""
from __future__ import annotations

from wrong_answers import Wrong

NOTEBOOK = "ch06_attention_and_llms/attention_and_llms.ipynb"  # in solutions/

BLOCK = """
    def transformer_block(x, params, mask=None):
        p = params
        batch, n, d = x.shape
        h = p["num_heads"]
        heads = lambda t: t.reshape(batch, n, h, d // h).transpose(1, 2)
        def attention(z):
            s = heads(z @ p["W_q"]) @ heads(z @ p["W_k"]).transpose(-2, -1) / SCALE
            if mask is not None:
                s = MASKED
            return (torch.softmax(s, -1) @ heads(z @ p["W_v"])).transpose(1, 2).reshape(batch, n, d) @ p["W_o"]
        ln = lambda z, i: F.layer_norm(z, (d,), p[f"ln{i}_weight"], p[f"ln{i}_bias"], eps=1e-5)
        ffn = lambda z: F.gelu(z @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]
        BODY
"""
PRE_NORM = "x = x + attention(ln(x, 1))\n        return x + ffn(ln(x, 2))"


def transformer(body=PRE_NORM, scale="math.sqrt(d // h)", masked="s.masked_fill(~mask, float('-inf'))"):
    return BLOCK.replace("BODY", body).replace("SCALE", scale).replace("MASKED", masked)


CACHE = """
    def causal_self_attention_with_cache(x_t, cache, W_q, W_k, W_v, W_o, num_heads):
        batch, n_new, d = x_t.shape
        d_k = d // num_heads
        heads = lambda t: t.reshape(batch, t.shape[1], num_heads, d_k).transpose(1, 2)
        q, k, v = heads(x_t @ W_q), heads(x_t @ W_k), heads(x_t @ W_v)
        if "k" in cache:
            k = torch.cat([cache["k"], k], dim=2)
            v = torch.cat([cache["v"], v], dim=2)
        UPDATE
        total = k.shape[2]
        allowed = ALLOWED
        s = (q @ k.transpose(-2, -1) / math.sqrt(d_k)).masked_fill(~allowed, float("-inf"))
        return (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(batch, -1, d) @ W_o
"""


def cache_step(update='cache["k"], cache["v"] = k, v',
               allowed="torch.ones(total, total, dtype=torch.bool).tril()[total - n_new:]"):
    return CACHE.replace("UPDATE", update).replace("ALLOWED", allowed)


SAMPLE = """
    def sample_next_token(logits, temperature, generator=None):
        BODY
"""


def sampler(body):
    return SAMPLE.replace("BODY", body)


GOOD_DRAW = "torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)"


_WRONG = {
    "residual added to the normalised input": ("test_transformer_block", transformer(
        "z = ln(x, 1)\n        x = z + attention(z)\n        z = ln(x, 2)\n        return z + ffn(z)"), ("normalised input",)),
    "post-norm instead of pre-norm": ("test_transformer_block", transformer(
        "x = ln(x + attention(x), 1)\n        return ln(x + ffn(x), 2)"), ("post-norm",)),
    "no residual around the MLP": ("test_transformer_block", transformer(
        "x = x + attention(ln(x, 1))\n        return ffn(ln(x, 2))"), ("mlp has no residual",)),
    "no sqrt(d_k)": ("test_transformer_block", transformer(scale="1.0"), ("sqrt(d_k)",)),
    "sqrt(d_model) instead of sqrt(d_k)": ("test_transformer_block", transformer(scale="math.sqrt(d)"), ("sqrt(d_model)",)),
    "mask ignored (the LAST-token check on a pre-norm block, issue 17)": ("test_transformer_block", transformer(
        masked="s"), ("changing the last token",)),
    "mask inverted": ("test_transformer_block", transformer(masked="s.masked_fill(mask, float('-inf'))"),
                      ("nan", "~mask")),
    "MLP weights transposed, as in nn.Linear (raw error before)": ("test_transformer_block", transformer(
        "x = x + attention(ln(x, 1))\n        return x + F.gelu(ln(x, 2) @ p['W_1'].T + p['b_1']) @ p['W_2'].T + p['b_2']"),
        ("stopped with an error", "z @ w", "w_1 (16, 32)")),
    "cache rebound instead of updated (issue 17)": ("test_causal_self_attention_with_cache", cache_step(
        update='cache = {"k": k, "v": v}'), ("still empty", "rebinds")),
    "cache under other names": ("test_causal_self_attention_with_cache", cache_step(
        update='cache["keys"], cache["values"] = k, v'), ('cache["k"]',)),
    "causal mask missing on the prompt": ("test_causal_self_attention_with_cache", cache_step(
        allowed="torch.ones(n_new, total, dtype=torch.bool)"), ("causal mask",)),
    "mask not offset by the cached length": ("test_causal_self_attention_with_cache", cache_step(
        allowed="torch.ones(total, total, dtype=torch.bool).tril()[:n_new]"), ("offset the causal mask",)),
    "cache only stores the first call": ("test_causal_self_attention_with_cache", cache_step(
        update='cache.setdefault("k", k); cache.setdefault("v", v)'), ("append",)),
    "step returns every position so far (issue 17: size mismatch inside the test)": (
        "test_causal_self_attention_with_cache", cache_step(allowed="torch.ones(total, total, dtype=torch.bool).tril()").replace(
            "s = (q @", "q = heads(torch.cat([x_t.new_zeros(batch, total - n_new, d), x_t], 1) @ W_q)\n        s = (q @"),
        ("new positions only",)),
    "samples not squeezed (issue 17: bincount error)": ("test_sample_next_token", sampler(
        f"if temperature == 0:\n            return logits.argmax(-1)\n        return {GOOD_DRAW}"), ("(2,)", "(2, 1)")),
    "temperature 0 divides by zero (issue 17: inf/nan error)": ("test_sample_next_token", sampler(
        f"return {GOOD_DRAW}[:, 0]"), ("greedy", "before dividing")),
    "float token ids (issue 17: dtype reported as generator)": ("test_sample_next_token", sampler(
        f"if temperature == 0:\n            return logits.argmax(-1)\n        return {GOOD_DRAW}[:, 0].float()"), ("int64",)),
    "generator ignored": ("test_sample_next_token", sampler(
        "if temperature == 0:\n            return logits.argmax(-1)\n"
        "        return torch.multinomial(torch.softmax(logits / temperature, -1), 1)[:, 0]"), ("generator=generator",)),
    "temperature applied after the softmax": ("test_sample_next_token", sampler(
        "if temperature == 0:\n            return logits.argmax(-1)\n"
        "        return torch.multinomial(torch.softmax(logits, -1) / temperature, 1, generator=generator)[:, 0]"),
        ("divide the logits",)),
    "softmax by hand overflows on large logits": ("test_sample_next_token", sampler(
        "if temperature == 0:\n            return logits.argmax(-1)\n"
        "        e = torch.exp(logits / temperature)\n"
        "        return torch.multinomial(e / e.sum(-1, keepdim=True), 1, generator=generator)[:, 0]"),
        ("stopped with an error", "torch.softmax")),
    "cache step that only works for a batch of one": ("test_causal_self_attention_with_cache", cache_step().replace(
        "q, k, v = heads(x_t @ W_q)", "x_t = x_t[:1]\n        q, k, v = heads(x_t @ W_q)"),
        ("stopped with an error", "batch = 2")),
    "argmax over the batch axis": ("test_sample_next_token", sampler(
        f"if temperature == 0:\n            return logits.argmax(0)\n        return {GOOD_DRAW}[:, 0]"), ("(2,)",)),
}

# Caught by the whole check cell (tests/test_ch06_exercises.py); the message is not pinned.
_WRONG.update({
    "cache not updated": ("test_causal_self_attention_with_cache", cache_step(update="pass"), None),
    "temperature multiplies the logits": ("test_sample_next_token", sampler(
        "if temperature == 0:\n            return logits.argmax(-1)\n"
        "        return torch.multinomial(torch.softmax(logits * temperature, -1), 1, generator=generator)[:, 0]"), None),
    "always greedy": ("test_sample_next_token", sampler("return logits.argmax(dim=-1)"), None),
})


WRONG: dict[str, Wrong] = {name: Wrong(*entry) for name, entry in _WRONG.items()}
