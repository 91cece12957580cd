"""The typical wrong answers of Chapter 5 (multi-head attention): see tests/wrong_answers/__init__.py."""
from __future__ import annotations

from wrong_answers import Wrong

NOTEBOOK = "ch05_multi_head_attention/multi_head_attention.ipynb"  # in solutions/

MHA = """
    def multi_head_attention(X, W_q, W_k, W_v, W_o, num_heads, mask=None):
        Q, K, V = (split_heads(X @ W, num_heads) for W in (W_q, W_k, W_v))
        scores = Q @ K.transpose(-2, -1) / SCALE
        if mask is not None:
            scores = MASKED
        weights = torch.softmax(scores, dim=-1)
        return OUTPUT, weights
"""


def mha(scale="math.sqrt(Q.shape[-1])", masked="scores.masked_fill(~mask, float('-inf'))",
        output="merge_heads(weights @ V) @ W_o"):
    return MHA.replace("SCALE", scale).replace("MASKED", masked).replace("OUTPUT", output)


_WRONG = {
    "split: plain reshape mixes positions": ("test_split_heads", """
        def split_heads(X, num_heads):
            batch, seq_len, d_model = X.shape
            return X.reshape(batch, num_heads, seq_len, d_model // num_heads)
    """, ("every position",)),
    "split: heads interleaved": ("test_split_heads", """
        def split_heads(X, num_heads):
            batch, seq_len, d_model = X.shape
            return X.reshape(batch, seq_len, d_model // num_heads, num_heads).permute(0, 3, 1, 2)
    """, ("interleaved",)),
    "split: no transpose (wrong shape)": ("test_split_heads", """
        def split_heads(X, num_heads):
            batch, seq_len, d_model = X.shape
            return X.reshape(batch, seq_len, num_heads, d_model // num_heads)
    """, ("(2, 4, 3, 2)",)),
    "split: d_k computed from num_heads wrongly (raw error before)": ("test_split_heads", """
        def split_heads(X, num_heads):
            batch, seq_len, d_model = X.shape
            return X.reshape(batch, seq_len, num_heads, num_heads).transpose(1, 2)
    """, ("stopped with an error", "d_k = 8 // 4")),
    "merge: reshape without transposing back": ("test_merge_heads", """
        def merge_heads(H):
            batch, num_heads, seq_len, d_k = H.shape
            return H.reshape(batch, seq_len, num_heads * d_k)
    """, ("without transposing back",)),
    "merge: view on a non-contiguous tensor (raw error before)": ("test_merge_heads", """
        def merge_heads(H):
            batch, num_heads, seq_len, d_k = H.shape
            return H.transpose(1, 2).view(batch, seq_len, num_heads * d_k)
    """, ("stopped with an error", "reshape")),
    "W_o forgotten": ("test_multi_head_attention", mha(output="merge_heads(weights @ V)"), ("w_o",)),
    "divided by sqrt(d_model)": ("test_multi_head_attention", mha(scale="math.sqrt(X.shape[-1])"), ("sqrt(d_model)",)),
    "no scaling": ("test_multi_head_attention", mha(scale="1.0"), ("sqrt(d_k)",)),
    "a correct multi_head_attention with a wrong split_heads": ("test_multi_head_attention", mha() + """
    def split_heads(X, num_heads):
        batch, seq_len, d_model = X.shape
        return X.reshape(batch, num_heads, seq_len, d_model // num_heads)
    """, ("fix split_heads first",)),
    "a correct multi_head_attention with a wrong merge_heads": ("test_multi_head_attention", mha() + """
    def merge_heads(H):
        batch, num_heads, seq_len, d_k = H.shape
        return H.reshape(batch, seq_len, num_heads * d_k)
    """, ("fix merge_heads first",)),
    "returns only the output": ("test_multi_head_attention", mha().replace("return merge_heads(weights @ V) @ W_o, weights",
                                                                           "return merge_heads(weights @ V) @ W_o"),
                                ("pair (output, weights)",)),
    "mask inverted": ("test_multi_head_attention_mask", mha(masked="scores.masked_fill(mask, float('-inf'))"),
                      ("inverted", "~mask")),
    "mask filled with 0": ("test_multi_head_attention_mask", mha(masked="scores.masked_fill(~mask, 0.0)"), ("-inf",)),
    "mask applied after the softmax": ("test_multi_head_attention_mask", mha(
        masked="scores", output="merge_heads(weights * mask @ V) @ W_o").replace(
        "return merge_heads(weights * mask @ V) @ W_o, weights",
        "weights = weights * mask if mask is not None else weights\n        return merge_heads(weights @ V) @ W_o, weights"),
        ("after the softmax",)),
    "padding mask not broadcast (raw error before)": ("test_multi_head_attention_mask", mha(
        masked="scores.masked_fill(~mask.reshape(scores.shape[-2:]), float('-inf')) if mask.dim() == 2 "
               "else scores.masked_fill(~mask.squeeze(), float('-inf'))"), ("stopped with an error", "broadcast")),
}

# Caught by the whole check cell (tests/test_ch04_ch05_exercises.py); the message is not pinned.
_WRONG.update({
    "heads split along the wrong axis and merged without a transpose, inside multi_head_attention": (
        "test_multi_head_attention", """
        def multi_head_attention(X, W_q, W_k, W_v, W_o, num_heads, mask=None):
            batch, seq_len, d_model = X.shape
            d_k = d_model // num_heads
            split = lambda T: T.reshape(batch, num_heads, seq_len, d_k)
            Q, K, V = split(X @ W_q), split(X @ W_k), split(X @ W_v)
            scores = Q @ K.transpose(-2, -1) / math.sqrt(d_k)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            return (weights @ V).reshape(batch, seq_len, d_model) @ W_o, weights
    """, None),
    "d_k fixed at 4 (right only for the example's d_model = 8)": ("test_multi_head_attention", mha(
        scale="math.sqrt(Q.shape[-1] if X.shape[-1] == 8 else X.shape[-1])"), None),
})


WRONG: dict[str, Wrong] = {name: Wrong(*entry) for name, entry in _WRONG.items()}
