"""Attention weights of the pretrained all-MiniLM-L6-v2 encoder, word by word (Chapters 4-6).

MiniLM is a 6-layer, 12-head BERT-style encoder (Wang et al. 2020) fine-tuned for
sentence embeddings (Reimers & Gurevych 2019). Its WordPiece tokenizer may cut a word
into pieces ("unbelievably" -> "unbel", "##ie", ...); :func:`word_attentions` merges them
back (punctuation stays apart: "didn't" is the three words "didn", "'", "t"): the
attention *from* a word is the mean of its pieces' rows, the attention *to* a word the
sum of its pieces' columns, so every row still sums to 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attention_course.models.embeddings import load_minilm

__all__ = ["WordAttention", "model_attentions", "word_attentions", "head_flips", "strongest_heads"]


@dataclass
class WordAttention:
    """Attention of one sentence: ``weights[layer, head, from_word, to_word]``."""

    sentence: str
    words: list[str]
    tokens: list[str]
    weights: np.ndarray  # (layers, heads, n_words, n_words)

    def index(self, word: str) -> int:
        """Position of the first occurrence of ``word`` (case-insensitive).

        Raises:
            ValueError: naming the sentence's words if ``word`` is not among them.
        """
        lowered = [w.lower() for w in self.words]
        if word.lower() not in lowered:
            raise ValueError(f"{word!r} is not a word of {self.sentence!r}; words: {self.words}")
        return lowered.index(word.lower())


def model_attentions(tokenizer, model, text: str):
    """Run a transformers model (loaded with eager attention) on one text with ``output_attentions=True``.

    Returns:
        ``(weights, tokens, batch)``: a float64 array ``(layers, heads, n_tokens, n_tokens)``
        (rows attend, columns are attended to), the token strings, and the tokenizer's
        ``BatchEncoding`` (for ``word_ids``).
    """
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    weights = torch.stack(out.attentions)[:, 0].double().numpy()
    return weights, tokenizer.convert_ids_to_tokens(batch["input_ids"][0]), batch


def word_attentions(sentence: str) -> WordAttention:
    """Run MiniLM with ``output_attentions=True`` and merge word pieces into words.

    ``[CLS]`` and ``[SEP]`` stay as words of their own: heads often park attention there.

    Returns:
        A :class:`WordAttention` with ``weights`` of shape ``(6, 12, n_words, n_words)``.

    Raises:
        ValueError: if ``sentence`` is empty.
    """
    if not sentence or not sentence.strip():
        raise ValueError("word_attentions: the sentence is empty")
    att, tokens, batch = model_attentions(*load_minilm("eager"), sentence)  # (layers, heads, n_tok, n_tok)
    word_ids = batch.word_ids(0)
    groups: list[list[int]] = []
    words: list[str] = []
    previous = object()
    for t, w in enumerate(word_ids):
        if w is None or w != previous:
            groups.append([t])
            words.append(tokens[t])
        else:
            groups[-1].append(t)
            words[-1] += tokens[t][2:] if tokens[t].startswith("##") else tokens[t]
        previous = w
    n = len(groups)
    merged = np.zeros(att.shape[:2] + (n, n))
    for i, rows in enumerate(groups):
        from_i = att[:, :, rows, :].mean(axis=2)  # (layers, heads, n_tok)
        for j, cols in enumerate(groups):
            merged[:, :, i, j] = from_i[:, :, cols].sum(axis=-1)
    return WordAttention(sentence, words, tokens, merged)


def head_flips(first: WordAttention, second: WordAttention, source: str, target_first: str,
               target_second: str) -> list[dict]:
    """Heads whose attention from ``source`` prefers ``target_first`` in the first sentence
    and ``target_second`` in the second one (e.g. "it" -> "animal" / "street").

    Returns:
        One dict per such head, ``layer``, ``head`` and the four weights, sorted by the
        size of the flip (the smaller of the two margins), largest first.
    """
    s1, s2 = first.index(source), second.index(source)
    a1, b1 = first.index(target_first), first.index(target_second)
    a2, b2 = second.index(target_first), second.index(target_second)
    found = []
    layers, heads = first.weights.shape[:2]
    for layer in range(layers):
        for head in range(heads):
            w1, w2 = first.weights[layer, head, s1], second.weights[layer, head, s2]
            if w1[a1] > w1[b1] and w2[b2] > w2[a2]:
                found.append(dict(layer=layer, head=head,
                                  first_to_first=float(w1[a1]), first_to_second=float(w1[b1]),
                                  second_to_first=float(w2[a2]), second_to_second=float(w2[b2]),
                                  margin=float(min(w1[a1] - w1[b1], w2[b2] - w2[a2]))))
    return sorted(found, key=lambda r: -r["margin"])


def strongest_heads(attention: WordAttention, source: str, target: str, top: int = 3) -> list[dict]:
    """The ``top`` heads that send the most attention from ``source`` to ``target``."""
    s, t = attention.index(source), attention.index(target)
    w = attention.weights[:, :, s, t]  # (layers, heads)
    order = np.argsort(w, axis=None)[::-1][:top]
    return [dict(layer=int(i // w.shape[1]), head=int(i % w.shape[1]), weight=float(w.flat[i]))
            for i in order]
