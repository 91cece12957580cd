"""The typical wrong answers of Chapter 2 (Bahdanau attention): see tests/wrong_answers/__init__.py."""
from __future__ import annotations

from wrong_answers import Wrong

NOTEBOOK = "ch02_bahdanau_attention/bahdanau_attention.ipynb"  # in solutions/

BIDIR = """
    def bidirectional_annotations(x, lengths, forward_cell, backward_cell):
        B, T, _ = x.shape
        real = (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).to(x.dtype)
        h, f = x.new_zeros(B, forward_cell.hidden_size), []
        for t in range(T):
            h = forward_cell(x[:, t], h) * real[:, t, None]
            f.append(h)
        h, b = x.new_zeros(B, backward_cell.hidden_size), [None] * T
        for t in reversed(range(T)):
            h = BACKWARD
            b[t] = h
        return torch.cat([torch.stack(f, 1), torch.stack(b, 1)], -1)
"""
SCORE = "torch.tanh((s_prev @ W_s.T)[:, None, :] + H @ W_h.T) @ v"
STEP = """
    def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
        alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
        c = context_vector(alpha, H)
        s = cell(torch.cat([y_prev, c], dim=-1), s_prev)
        return s, c, alpha
"""
_WRONG = {
    "one-way encoder (forward states twice)": ("test_bidirectional_annotations", BIDIR.replace(
        "b[t] = h", "b[t] = f[t]").replace("BACKWARD", "backward_cell(x[:, t], h) * real[:, t, None]"), ("one-way encoder",)),
    "backward GRU starts at the padding": ("test_bidirectional_annotations", BIDIR.replace(
        "BACKWARD", "backward_cell(x[:, t], h)\n            h = h * 1"), ("padding",)),
    "zero start state of the wrong size": ("test_bidirectional_annotations", BIDIR.replace(
        "x.new_zeros(B, forward_cell.hidden_size)", "x.new_zeros(B, x.shape[-1])").replace(
        "BACKWARD", "backward_cell(x[:, t], h) * real[:, t, None]"), ("stopped with an error", "x.new_zeros(b, d_h)")),
    "W_s not transposed (raw matmul error before)": ("test_additive_score", """
        def additive_score(s_prev, H, W_s, W_h, v):
            return torch.tanh((s_prev @ W_s)[:, None, :] + H @ W_h.T) @ v
    """, ("stopped with an error", "transposed weights", "s_prev @ w_s.t")),
    "no tanh": ("test_additive_score", """
        def additive_score(s_prev, H, W_s, W_h, v):
            return ((s_prev @ W_s.T)[:, None, :] + H @ W_h.T) @ v
    """, ("tanh is missing",)),
    "state of sentence 0 for the whole batch": ("test_additive_score", """
        def additive_score(s_prev, H, W_s, W_h, v):
            return torch.tanh((s_prev[:1] @ W_s.T)[:, None, :] + H @ W_h.T) @ v
    """, ("sentence 0's state",)),
    "hidden units summed instead of times v": ("test_additive_score", """
        def additive_score(s_prev, H, W_s, W_h, v):
            return torch.tanh((s_prev @ W_s.T)[:, None, :] + H @ W_h.T).sum(-1)
    """, ("instead of multiplying them by v",)),
    "batch axis squeezed": ("test_additive_score", f"""
        def additive_score(s_prev, H, W_s, W_h, v):
            return ({SCORE}).squeeze()
    """, ("batch of one",)),
    "softmax over the batch axis": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=0).nan_to_num(0.0)
    """, ("batch axis",)),
    "mask inverted": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    """, ("inverted", "~mask")),
    "mask inverted, NaN replaced by 0": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1).nan_to_num(0.0)
    """, ("inverted", "~mask")),
    "padding filled with 0 instead of -inf": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores.masked_fill(~mask, 0.0), dim=-1)
    """, ("-inf before the softmax",)),
    "zeroed after the softmax": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores, dim=-1) * mask
    """, ("after the softmax",)),
    "exp / sum overflows": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            e = torch.exp(scores) * mask
            return e / e.sum(-1, keepdim=True)
    """, ("torch.softmax",)),
    "context: plain mean": ("test_context_vector", """
        def context_vector(weights, H):
            return H.mean(1)
    """, ("plain mean",)),
    "context: summed over the feature axis": ("test_context_vector", """
        def context_vector(weights, H):
            return (weights[:, :, None] * H).sum(2)
    """, ("summed over the feature axis",)),
    "context: weights not broadcast (raw error before)": ("test_context_vector", """
        def context_vector(weights, H):
            return (weights * H).sum(1)
    """, ("stopped with an error", "torch.bmm")),
    "decoder step blamed for a wrong masked_softmax": ("test_decoder_step", STEP + """
    def masked_softmax(scores, mask):
        return torch.softmax(scores, dim=-1)
    """, ("masked_softmax", "fix masked_softmax first")),
    "decoder step blamed for a wrong additive_score": ("test_decoder_step", STEP + """
    def additive_score(s_prev, H, W_s, W_h, v):
        return ((s_prev @ W_s.T)[:, None, :] + H @ W_h.T) @ v
    """, ("fix additive_score first",)),
    "decoder step scores with the new state": ("test_decoder_step", """
        def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
            alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
            s = cell(torch.cat([y_prev, context_vector(alpha, H)], -1), s_prev)
            alpha = masked_softmax(additive_score(s, H, W_s, W_h, v), mask)
            return s, context_vector(alpha, H), alpha
    """, ("previous state",)),
    "decoder step: context left out of the GRU": ("test_decoder_step", """
        def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
            alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
            c = context_vector(alpha, H)
            return cell(torch.cat([y_prev, torch.zeros_like(c)], -1), s_prev), c, alpha
    """, ("ignores the context",)),
    "decoder step: inputs concatenated in the wrong order": ("test_decoder_step", """
        def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
            alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
            c = context_vector(alpha, H)
            return cell(torch.cat([c, y_prev], -1), s_prev), c, alpha
    """, ("wrong order",)),
    "decoder step returns a list": ("test_decoder_step", STEP.replace("return s, c, alpha", "return [s, c, alpha]"),
                                    ("tuple",)),
}

# Caught by the whole check cell (tests/test_ch01_ch02_exercises.py); the message is not pinned.
_WRONG.update({
    "one-way encoder (backward cell, left to right)": ("test_bidirectional_annotations", """
        def bidirectional_annotations(x, lengths, forward_cell, backward_cell):
            B, T, _ = x.shape
            real = (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).to(x.dtype)
            hf, hb = x.new_zeros(B, forward_cell.hidden_size), x.new_zeros(B, backward_cell.hidden_size)
            f, b = [], []
            for t in range(T):
                hf = forward_cell(x[:, t], hf) * real[:, t, None]
                hb = backward_cell(x[:, t], hb) * real[:, t, None]
                f.append(hf)
                b.append(hb)
            return torch.cat([torch.stack(f, 1), torch.stack(b, 1)], -1)
    """, None),
    "backward GRU starts at the padding, its outputs masked": ("test_bidirectional_annotations", BIDIR.replace(
        "BACKWARD", "backward_cell(x[:, t], h)  # no mask: reads the padding first").replace(
        "b[t] = h", "b[t] = h * real[:, t, None]"), None),
    "backward states in reading order (not aligned with x_j)": ("test_bidirectional_annotations", BIDIR.replace(
        "[None] * T", "[]").replace("BACKWARD", "backward_cell(x[:, t], h) * real[:, t, None]").replace(
        "b[t] = h", "b.append(h)"), None),
    "padding not masked": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores, dim=-1)
    """, None),
    "context: weights of sentence 0 for the whole batch": ("test_context_vector", """
        def context_vector(weights, H):
            return torch.einsum("t,btd->bd", weights[0], H)
    """, None),
    "decoder step: padding not masked": ("test_decoder_step", """
        def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
            alpha = torch.softmax(additive_score(s_prev, H, W_s, W_h, v), -1)
            c = context_vector(alpha, H)
            return cell(torch.cat([y_prev, c], -1), s_prev), c, alpha
    """, None),
})


WRONG: dict[str, Wrong] = {name: Wrong(*entry) for name, entry in _WRONG.items()}
