"""The course's two small models as ONNX files, for the browser (onnxruntime-web).

Chapter 6's character GPT, Chapter 2's RNNsearch and Chapter 7's Transformer run in the reader's
browser in the published book. The chapter notebooks export them here when the book is built; the
explorers (:mod:`attention_course.views.gpt_widget`, :mod:`attention_course.views.alignment_viewer`,
:mod:`attention_course.views.transformer_viewer`) name the files
in their saved state and load them, with onnxruntime-web, the first time a reader uses them.

The graphs are cut for the browser's loop:

* **GPT**, one graph ``window``: token ids ``(1, n)``, ``1 <= n <= block_size`` (int64) →
  ``logits`` ``(1, vocab)`` of the *last* position and ``attention`` ``(n_layer, num_heads, n)``,
  the last position's attention weights in every head. The browser feeds the last
  ``block_size`` tokens at each step, which is what :func:`attention_course.models.gpt.generate` computes
  (its KV cache only saves work, and is rebuilt from the window once the context is full).
* **RNNsearch**, two graphs. ``encoder``: source ids ``src`` ``(1, T)`` and ``lengths`` ``(1,)``
  → annotations ``H`` ``(1, T, 2 d_h)``, the alignment keys ``U h_j`` ``keys`` ``(1, T, d_a)``
  and the first decoder state ``s`` ``(1, d_s)``. ``decoder``, one step (Bahdanau et al. 2015,
  Eqs. 4-6): ``y_prev`` ``(1,)``, ``s_prev`` ``(1, d_s)``, ``H``, ``keys`` → ``logits``
  ``(1, V)``, the new state ``s`` and the attention weights ``alpha`` ``(1, T)``.
* **Chapter 7's Transformer** (:class:`attention_course.models.date_transformer.DateTransformer`), two
  graphs, batch ``B`` (the browser uses 1). ``encoder``: source ids ``src`` ``(B, T)`` and
  ``lengths`` ``(B,)`` → the ``memory`` ``(B, T, d_model)``. ``decoder``: the target ``prefix``
  ``(B, n)`` (``BOS`` and the characters written so far), ``memory`` and ``lengths`` (the source
  padding mask is made from them in the graph) → ``logits`` ``(B, V)`` of the *last* position and
  ``cross`` ``(B, dec_layers, h, T)``, that position's cross-attention weights in every decoder layer
  and head. The browser feeds the whole prefix at every step (recomputing it costs little at these
  sizes: targets of at most 80 symbols), which gives what ``DateTransformer.greedy`` computes with its
  KV cache (the causal mask makes each position's output independent of later ones). The date
  features (segment ids and positions within each date, :func:`attention_course.models.date_transformer.segment_ids`)
  are computed inside both graphs from the separator ids, so the browser sends only character ids.

Each file carries what is needed to rebuild the PyTorch model from it (its configuration and
vocabulary, in the ONNX metadata under ``attention_course``); :func:`load_gpt`,
:func:`load_rnnsearch` and :func:`load_date_transformer` do so, so a test can compare the browser with PyTorch on the very
weights the browser ran. Export uses PyTorch's TorchScript exporter (``dynamo=False``): it
keeps the parameters' names and the sequence length dynamic for these graphs, which the
``torch.export`` route did not (it fixed the length of the example input).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["OPSET", "RUNTIME_FILES", "static_dir", "runtime_bytes", "build_esm_with_runtime",
           "window_step", "export_gpt", "export_rnnsearch", "export_date_transformer", "onnx_weights",
           "load_gpt", "load_rnnsearch", "load_date_transformer", "transformer_step", "graph_segment_ids",
           "metadata"]

#: ONNX opset of the exported graphs (LayerNormalization needs >= 17; onnxruntime-web 1.30 runs it).
OPSET = 17
_META_KEY = "attention_course"
#: The onnxruntime-web files a page loads (scripts/vendor_static.sh serves them as _static/onnxruntime-web/).
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
_ROOT = Path(__file__).resolve().parents[2]


def static_dir() -> Path | None:
    """Where the book build serves model files from, or ``None`` outside a clone of the repository.

    ``<repository>/_build/static_models``: listed in ``_config.yml``'s ``html_static_path``, so
    its ``models/`` folder is served as ``<book>/_static/models/``. It lives in ``_build`` because
    it belongs to the executed notebooks, which ``_build/.jupyter_cache`` keeps: deleting
    ``_build`` removes both together. ``None`` in Colab or any install that is not the
    repository (there the explorers compute in the kernel and need no files).
    """
    if (_ROOT / "_config.yml").is_file() and (_ROOT / "book").is_dir():
        return _ROOT / "_build" / "static_models"
    return None


def runtime_bytes() -> int | None:
    """Bytes of onnxruntime-web a reader downloads on first use, or ``None`` if not installed here."""
    for folder in (_ROOT / "_vendor_static" / "onnxruntime-web", _ROOT / "node_modules" / "onnxruntime-web" / "dist"):
        if all((folder / name).is_file() for name in RUNTIME_FILES):
            return sum((folder / name).stat().st_size for name in RUNTIME_FILES)
    return None


def build_esm_with_runtime(kind: str) -> str:
    """The ES module of an explorer kind whose model runs in the browser: ``static/onnx_runtime.js``
    (the lazy onnxruntime-web loader, object ``onnx``) followed by the usual core + kind module."""
    from attention_course.views.explorer import STATIC, build_esm

    return (STATIC / "onnx_runtime.js").read_text(encoding="utf-8") + "\n" + build_esm(kind)


class _GPTWindow(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):  # (1, n) -> (1, vocab), (n_layer, num_heads, n)
        logits, _, weights = self.model(ids, need_weights=True)  # weights (layers, 1, h, n, n)
        return logits[:, -1], weights[:, 0, :, -1]


@torch.no_grad()
def window_step(model, ids: torch.Tensor):
    """What the browser's GPT graph computes: the last position's logits and attention.

    Args:
        model: a :class:`attention_course.models.gpt.GPT`.
        ids: ``(1, n)`` token ids, ``1 <= n <= block_size``.

    Returns:
        ``(logits (1, vocab), attention (n_layer, num_heads, n))``.
    """
    return _GPTWindow(model).eval()(ids)


class _Encoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src, lengths):
        state = self.model.start(src, lengths)
        return state["H"], state["keys"], state["s"]


class _DecoderStep(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, y_prev, s_prev, H, keys):
        mask = torch.ones_like(H[..., 0], dtype=torch.bool)  # (1, T): one unpadded source
        state = {"s": s_prev, "H": H, "mask": mask, "keys": keys}
        logits, state, alpha = self.model.step(self.model.embed(y_prev), state)
        return logits, state["s"], alpha


def _export(module, args, path: Path, inputs, outputs, dynamic, meta: dict) -> None:
    import onnx

    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        # The models' input checks (e.g. "context exceeds block_size") turn into constants in a
        # trace, as they should; the exporter reports each one. The TorchScript exporter is
        # deprecated in favour of torch.export, which fixes the sequence length here (see above).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message="The feature will be removed.*")
        # nn.GRU's generic advice; the graphs are exported, and run, with a batch of one.
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
                          do_constant_folding=False)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = _META_KEY, json.dumps(meta, ensure_ascii=False)
    onnx.save(proto, str(path))


def _place(tmp: Path, directory: Path, prefix: str) -> dict:
    """Move ``tmp`` to ``directory/<prefix>-<hash>.onnx`` (content-addressed: a page can never
    load a stale file from the reader's browser cache) and describe it."""
    data = tmp.read_bytes()
    name = f"{prefix}-{hashlib.sha256(data).hexdigest()[:12]}.onnx"
    final = directory / name
    if not final.is_file():
        tmp.replace(final)
    else:
        tmp.unlink()
    return {"path": f"models/{name}", "bytes": len(data), "file": str(final)}


def export_gpt(model, tokenizer, directory: str | Path, prefix: str = "gpt") -> dict:
    """Write the GPT's browser graph (see the module docstring) into ``directory/models/``.

    Args:
        model: a trained :class:`attention_course.models.gpt.GPT`.
        tokenizer: its :class:`attention_course.data.fortunes.CharTokenizer`.
        directory: the static folder (usually :func:`static_dir`).
        prefix: start of the file name.

    Returns:
        ``{"path": "models/<prefix>-<hash>.onnx", "bytes": int, "file": str}``; ``path`` is
        relative to the book's ``_static/`` folder.
    """
    out = Path(directory) / "models"
    out.mkdir(parents=True, exist_ok=True)
    config = model.config
    meta = {"model": "gpt", "config": {k: getattr(config, k) for k in
                                         ("vocab_size", "block_size", "n_layer", "num_heads", "d_model")},
            "chars": tokenizer.chars, "unknown": tokenizer.unknown}
    tmp = out / f".{prefix}.tmp.onnx"
    example = torch.zeros(1, min(8, config.block_size), dtype=torch.long)
    _export(_GPTWindow(model), (example,), tmp, ["ids"], ["logits", "attention"],
            {"ids": {1: "n"}, "attention": {2: "n"}}, meta)
    return _place(tmp, out, prefix)


def export_rnnsearch(model, data, directory: str | Path, prefix: str = "rnnsearch") -> dict:
    """Write RNNsearch's encoder and one-step decoder graphs into ``directory/models/``.

    Args:
        model: an :class:`attention_course.models.seq2seq.RNNsearch` (any checkpoint).
        data: the :class:`attention_course.data.dates.DateData` whose vocabularies it uses.
        directory: the static folder (usually :func:`static_dir`).
        prefix: start of the file names.

    Returns:
        ``{"encoder": {...}, "decoder": {...}}``, each as :func:`export_gpt` returns.

    Raises:
        ValueError: for a model without attention.
    """
    if not getattr(model.config, "attention", False):
        raise ValueError("export_rnnsearch: the model has no attention (use an RNNsearch)")
    out = Path(directory) / "models"
    out.mkdir(parents=True, exist_ok=True)
    sv, tv = data.source_vocab, data.target_vocab
    meta = {"model": "rnnsearch", "config": asdict(model.config), "source_alphabet": sv.alphabet,
            "target_alphabet": tv.alphabet}
    model.eval()
    src = torch.tensor([sv.encode("1. März 2024", eos=False)])
    lengths = torch.tensor([src.shape[1]])
    files = {}
    tmp = out / f".{prefix}-encoder.tmp.onnx"
    _export(_Encoder(model), (src, lengths), tmp, ["src", "lengths"], ["H", "keys", "s"],
            {"src": {1: "T"}, "H": {1: "T"}, "keys": {1: "T"}}, {**meta, "graph": "encoder"})
    files["encoder"] = _place(tmp, out, f"{prefix}-encoder")
    with torch.no_grad():
        state = model.start(src, lengths)
    tmp = out / f".{prefix}-decoder.tmp.onnx"
    _export(_DecoderStep(model), (torch.tensor([tv.BOS]), state["s"], state["H"], state["keys"]),
            tmp, ["y_prev", "s_prev", "H", "keys"], ["logits", "s", "alpha"],
            {"H": {1: "T"}, "keys": {1: "T"}, "alpha": {1: "T"}}, {**meta, "graph": "decoder"})
    files["decoder"] = _place(tmp, out, f"{prefix}-decoder")
    return files


def graph_segment_ids(ids: torch.Tensor, separator: int):
    """:func:`attention_course.models.date_transformer.segment_ids` with operators ONNX has (it has no ``cummax``).

    The start of the date at position ``t`` is the largest ``s <= t`` holding a separator (0 if none),
    found as a maximum over the ``(n, n)`` lower triangle instead of a running maximum; ``n`` is at
    most a few hundred symbols here. Same arguments and results as ``segment_ids``.

    Args:
        ids: ``(B, n)`` token ids.
        separator: the separator's id.

    Returns:
        ``(segments, offsets)``, both ``(B, n)`` long.

    Raises:
        ValueError: if ``ids`` is not 2-D.
    """
    if ids.dim() != 2:
        raise ValueError(f"graph_segment_ids: ids must be (B, n); got {tuple(ids.shape)}")
    is_sep = ids == separator  # (B, n)
    t = torch.arange(ids.shape[1])  # (n,)
    before = t[None, :] <= t[:, None]  # (n, n): [t, s] = s <= t
    start = torch.where(is_sep[:, None, :] & before[None], t[None, None, :], torch.zeros_like(t)).amax(2)  # (B, n)
    return is_sep.long().cumsum(dim=1), t[None, :] - start


@contextlib.contextmanager
def _traceable_segments():
    """While tracing, let the Transformer count dates with :func:`graph_segment_ids` (the model's own
    ``_embed`` is traced otherwise unchanged)."""
    from attention_course.models import date_transformer

    original = date_transformer.segment_ids
    date_transformer.segment_ids = graph_segment_ids
    try:
        yield
    finally:
        date_transformer.segment_ids = original


class _TransformerEncoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src, lengths):  # (B, T), (B,) -> (B, T, d)
        memory, _, _ = self.model.encode(src, lengths)
        return memory


class _TransformerDecoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, prefix, memory, lengths):  # (B, n), (B, T, d), (B,) -> (B, V), (B, layers, h, T)
        from attention_course.maths.self_attention import padding_mask

        mask = padding_mask(lengths, memory.shape[1])  # (B, 1, 1, T)
        logits, _, cross = self.model.decode(prefix, memory, mask)  # (B, n, V), per layer (B, h, n, T)
        return logits[:, -1], torch.stack([w[:, :, -1] for w in cross], 1)


@torch.no_grad()
def transformer_step(model, prefix: torch.Tensor, memory: torch.Tensor, lengths: torch.Tensor):
    """What the browser's Transformer decoder graph computes, in PyTorch.

    A stateless step: ``DateTransformer.decode`` without a cache on the whole prefix, the same
    :class:`attention_course.maths.transformer.DecoderBlock` code that ``DateTransformer.greedy`` runs
    with its :class:`attention_course.maths.multi_head.KVCache` one position at a time (equal up to
    float rounding: the causal mask).

    Args:
        model: a :class:`attention_course.models.date_transformer.DateTransformer`.
        prefix: ``(B, n)`` target ids starting with ``BOS``.
        memory: ``(B, T, d_model)``, from ``model.encode``.
        lengths: ``(B,)`` source lengths (``1..T``).

    Returns:
        ``(logits (B, V), cross (B, dec_layers, h, T))`` of the last position of ``prefix``.
    """
    return _TransformerDecoder(model).eval()(prefix, memory, lengths)


def export_date_transformer(model, data, directory: str | Path, prefix: str = "transformer") -> dict:
    """Write Chapter 7's Transformer as an encoder and a decoder graph (module docstring) into ``directory/models/``.

    The graphs trace the model's own ``encode`` and ``decode``; only the date counting of
    :func:`attention_course.models.date_transformer.segment_ids` is swapped for :func:`graph_segment_ids`
    (the same numbers: checked on the example inputs before anything is traced).

    Args:
        model: a :class:`attention_course.models.date_transformer.DateTransformer` (with or without the
            date features).
        data: the :class:`attention_course.data.dates.DateData` whose vocabularies it uses.
        directory: the static folder (usually :func:`static_dir`).
        prefix: start of the file names.

    Returns:
        ``{"encoder": {...}, "decoder": {...}}``, each as :func:`export_gpt` returns.

    Raises:
        ValueError: if the model's vocabulary sizes or separators do not fit ``data``'s.
        RuntimeError: if :func:`graph_segment_ids` no longer counts what ``segment_ids`` counts.
    """
    from attention_course.models.date_transformer import segment_ids, separator_ids

    sv, tv = data.source_vocab, data.target_vocab
    if (model.src_embed.num_embeddings, model.out.out_features) != (len(sv), len(tv)):
        raise ValueError(f"export_date_transformer: the model's vocabularies ({model.src_embed.num_embeddings}, "
                         f"{model.out.out_features}) are not data's ({len(sv)}, {len(tv)})")
    features = model.config.segments or model.config.segment_positions
    if features and tuple(model.separators) != separator_ids(data):
        raise ValueError(f"export_date_transformer: the model's separators {model.separators} are not "
                         f"data's {separator_ids(data)}")
    out = Path(directory) / "models"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model": "date_transformer", "config": asdict(model.config),
            "separators": list(model.separators) if model.separators is not None else None,
            "source_alphabet": sv.alphabet, "target_alphabet": tv.alphabet}
    model.eval()
    src = torch.tensor([sv.encode("1. März 2024; 3/1/24", eos=False)])  # (1, T), with a separator
    lengths = torch.tensor([src.shape[1]])
    tgt = torch.tensor([[tv.BOS] + tv.encode("2024-03-01;2024-03-01", eos=False)])  # (1, n)
    for ids, side in ((src, 0), (tgt, 1)):
        if features and not all(torch.equal(a, b) for a, b in zip(graph_segment_ids(ids, model.separators[side]),
                                                                    segment_ids(ids, model.separators[side]))):
            raise RuntimeError("export_date_transformer: graph_segment_ids differs from date_transformer.segment_ids")
    with torch.no_grad():
        memory, _, _ = model.encode(src, lengths)
    files = {}
    with _traceable_segments():
        tmp = out / f".{prefix}-encoder.tmp.onnx"
        _export(_TransformerEncoder(model), (src, lengths), tmp, ["src", "lengths"], ["memory"],
                {"src": {0: "B", 1: "T"}, "lengths": {0: "B"}, "memory": {0: "B", 1: "T"}},
                {**meta, "graph": "encoder"})
        files["encoder"] = _place(tmp, out, f"{prefix}-encoder")
        tmp = out / f".{prefix}-decoder.tmp.onnx"
        _export(_TransformerDecoder(model), (tgt, memory, lengths), tmp, ["prefix", "memory", "lengths"],
                ["logits", "cross"], {"prefix": {0: "B", 1: "n"}, "memory": {0: "B", 1: "T"}, "lengths": {0: "B"},
                                      "logits": {0: "B"}, "cross": {0: "B", 3: "T"}},
                {**meta, "graph": "decoder"})
        files["decoder"] = _place(tmp, out, f"{prefix}-decoder")
    return files


def metadata(path: str | Path) -> dict:
    """The ``attention_course`` metadata an exported file carries (configuration, vocabulary)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == _META_KEY:
            return json.loads(entry.value)
    raise ValueError(f"{path} was not exported by attention_course.views.onnx_export (no metadata)")


def onnx_weights(path: str | Path) -> dict[str, np.ndarray]:
    """The parameters stored in an exported file, by their PyTorch names (``model.`` stripped).

    The exporter stores a parameter once even when several share its values (LayerNorm weights
    that are still all ones, say) and aliases the others with ``Identity`` nodes; those are
    resolved here.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return {k.removeprefix("model."): v for k, v in values.items() if k.startswith("model.")}


def _load_state(model: nn.Module, weights: dict) -> None:
    state = model.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        raise ValueError(f"the ONNX file lacks the parameters {missing}")
    model.load_state_dict({k: torch.from_numpy(np.array(weights[k])) for k in state})


def load_gpt(path: str | Path):
    """Rebuild the PyTorch GPT from an exported file (its own weights, configuration, vocabulary).

    Returns:
        ``(model, chars)``: an eval-mode :class:`attention_course.models.gpt.GPT` and the tokenizer's
        characters (id ``i`` is ``chars[i]``).
    """
    from attention_course.models.gpt import GPT, GPTConfig

    meta = metadata(path)
    model = GPT(GPTConfig(**meta["config"]))
    weights = onnx_weights(path)
    weights.setdefault("head.weight", weights["tok_emb.weight"])  # tied
    _load_state(model, weights)
    return model.eval(), meta["chars"]


def load_rnnsearch(encoder: str | Path, decoder: str | Path):
    """Rebuild the PyTorch RNNsearch from its two exported files.

    Returns:
        ``(model, source_alphabet, target_alphabet)``; the vocabularies are
        :class:`attention_course.data.dates.Vocabulary` of these alphabets.
    """
    from attention_course.data.dates import Vocabulary
    from attention_course.models.seq2seq import ModelConfig, build_model

    meta = metadata(encoder)
    config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})
    sv, tv = Vocabulary(meta["source_alphabet"]), Vocabulary(meta["target_alphabet"])
    model = build_model(config, len(sv), len(tv))
    _load_state(model, {**onnx_weights(encoder), **onnx_weights(decoder)})
    return model.eval(), meta["source_alphabet"], meta["target_alphabet"]



def load_date_transformer(encoder: str | Path, decoder: str | Path):
    """Rebuild Chapter 7's PyTorch Transformer from its two exported files (:func:`export_date_transformer`).

    Returns:
        ``(model, source_alphabet, target_alphabet)``: an eval-mode
        :class:`attention_course.models.date_transformer.DateTransformer` with the files' weights; the
        vocabularies are :class:`attention_course.data.dates.Vocabulary` of these alphabets.

    Raises:
        ValueError: if a file was not written by :func:`export_date_transformer`, or lacks a parameter.
    """
    from attention_course.models.date_transformer import DateTransformer, TransformerConfig
    from attention_course.data.dates import Vocabulary

    meta = metadata(encoder)
    if meta.get("model") != "date_transformer" or metadata(decoder).get("model") != "date_transformer":
        raise ValueError(f"{encoder} and {decoder} are not the two files of export_date_transformer")
    config = TransformerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})
    separators = tuple(meta["separators"]) if meta["separators"] is not None else None
    sizes = len(Vocabulary(meta["source_alphabet"])), len(Vocabulary(meta["target_alphabet"]))
    model = DateTransformer(*sizes, config, separators)
    _load_state(model, {**onnx_weights(encoder), **onnx_weights(decoder)})
    return model.eval(), meta["source_alphabet"], meta["target_alphabet"]
