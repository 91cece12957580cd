"""Cross-attention maps of Chapter 7's Transformer beside RNNsearch's alignment (Chapter 2).

For one source, the Transformer's decoder gives one cross-attention map per layer and head,
``(dec_layers, h, L, T)``: row ``i`` is how much output character ``i`` (the query) attends to each
source character (the keys). RNNsearch gives one alignment ``(L, T)`` (Bahdanau et al. 2015,
Figure 3). :class:`CrossAttentionViewer` draws them side by side, measures how often a head looks
where RNNsearch looks, and makes Chapter 7's explorer.

The explorer works with no kernel: the preset inputs' maps are saved in the page, and dates the
reader types are translated in the browser by both models, exported to ONNX when the book is built
(:func:`attention_course.views.onnx_export.export_date_transformer` and
:func:`~attention_course.views.onnx_export.export_rnnsearch`) and run with onnxruntime-web, greedy decoding
in JavaScript (``static/explorers/cross_attention.js``) computing what :meth:`CrossAttentionViewer.maps`
computes in Python. Both sides check a typed input the same way (:func:`source_problem`).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from attention_course.views import onnx_export
from attention_course.views.alignment_viewer import AlignmentViewer, plot_alignment
from attention_course.env import torch_threads
from attention_course.views.explorer import Explorer, encode_unit, say

__all__ = ["CrossAttentionViewer", "CrossAttentionExplorer", "argmax_agreement", "source_problem"]


def source_problem(text: str, alphabet: str, longest: int, language: str | None = None) -> str | None:
    """Why the explorer cannot translate ``text``, in the reader's words, or ``None`` if it can.

    The same checks, in the same order and words, run in the browser (``cross_attention.js``, function
    ``problem``); a browser test compares the two. ``text`` is stripped of surrounding white space first.

    Args:
        text: what the reader typed.
        alphabet: the source vocabulary's characters (``data.source_vocab.alphabet``).
        longest: the most source characters the Transformer reads (its ``config.max_len``).
        language: the message's language (default: :func:`attention_course.env.course_language`).

    Returns:
        ``None``, or a message for an empty input, characters outside ``alphabet`` (no training input
        has them: the models would read the unknown symbol, which they never saw), or an input longer
        than ``longest`` characters.
    """
    source = text.strip()
    if not source:
        return say("cross_attention", "problem_empty", language)
    unknown = list(dict.fromkeys(c for c in source if c not in alphabet))
    if unknown:
        listed = say("cross_attention", "problem_sep", language).join(f'"{c}"' for c in unknown)
        return say("cross_attention", "problem_unknown", language, n=len(unknown), chars=listed)
    if len(source) > longest:
        return say("cross_attention", "problem_long", language, n=len(source), longest=longest)
    return None


def argmax_agreement(a, b) -> float:
    """Fraction of rows whose largest entry sits in the same column in ``a`` and ``b`` (both ``(L, T)``).

    Raises:
        ValueError: if the shapes differ.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"argmax_agreement: expected two (L, T) arrays; got {a.shape} and {b.shape}")
    return float(np.mean(a.argmax(-1) == b.argmax(-1)))


class CrossAttentionViewer:
    """A trained :class:`~attention_course.models.date_transformer.DateTransformer` and a trained RNNsearch, on the same inputs.

    Args:
        transformer: the Transformer (eval mode).
        search: a :class:`~attention_course.training.loop.TrainResult` of RNNsearch.
        data: the :class:`~attention_course.data.dates.DateData` both were trained on.
        sources: inputs offered by the explorer.

    Raises:
        ValueError: if ``sources`` is empty or ``search`` has no attention.
    """

    max_len = 80

    def __init__(self, transformer, search, data, sources):
        if not sources:
            raise ValueError("CrossAttentionViewer needs at least one source")
        self.transformer, self.data, self.sources = transformer, data, list(dict.fromkeys(sources))
        self.rnn = AlignmentViewer(search, data, self.sources)
        self._cache: dict[str, dict] = {}

    def maps(self, source: str) -> dict:
        """Both models on ``source``.

        Returns:
            ``{"source", "transformer": {"output", "rows", "weights"}, "rnnsearch": {...}}``; the
            Transformer's weights are ``(dec_layers, h, L, T)``, RNNsearch's ``(L, T)``; ``rows``
            label the output symbols up to and including ⟨eos⟩.

        Raises:
            ValueError: if ``source`` is empty, has characters outside the source alphabet or is longer
                than the Transformer reads (:func:`source_problem` gives the message).
        """
        problem = source_problem(source, self.data.source_vocab.alphabet, self.transformer.config.max_len)
        if problem:
            raise ValueError(problem)
        source = source.strip()
        if source not in self._cache:
            sv, tv = self.data.source_vocab, self.data.target_vocab
            ids = sv.encode(source, eos=False)
            with torch_threads(1):
                out, cross = self.transformer.greedy(torch.tensor([ids]), torch.tensor([len(ids)]),
                                                     max_len=self.max_len, bos=tv.BOS, eos=tv.EOS)
            row = out[0].tolist()
            n = row.index(tv.EOS) + 1 if tv.EOS in row else len(row)
            output, weights, rows = self.rnn.align(source)
            self._cache[source] = {
                "source": source,
                "transformer": {"output": tv.decode(row), "rows": [tv.symbol(i) for i in row[:n]],
                                "weights": cross[0, :, :, :n].numpy()},
                "rnnsearch": {"output": output, "rows": rows, "weights": weights},
            }
        return self._cache[source]

    def agreement(self, sources=None) -> tuple[np.ndarray, int]:
        """How often each head's strongest source character is RNNsearch's (:func:`argmax_agreement`).

        Both models translate ``sources`` in batches (greedy decoding); only inputs that both
        translate identically count, so that their rows correspond.

        Returns:
            ``((dec_layers, h) array of mean agreement, number of inputs used)``.

        Raises:
            ValueError: if no input is translated alike by both models.
        """
        from attention_course.training import date_training
        from attention_course.training import seq2seq_training

        sources = self.sources if sources is None else list(sources)
        t_out, t_maps = date_training.translate(self.transformer, sources, self.data, max_len=self.max_len)
        r_out, r_maps = seq2seq_training.translate(self.rnn.result.model, sources, self.data,
                                                   max_len=self.max_len)
        scores = []
        for t_text, w, r_text, r in zip(t_out, t_maps, r_out, r_maps):
            if t_text != r_text or w.shape[2:] != r.shape:
                continue
            scores.append([[argmax_agreement(w[l, h], r) for h in range(w.shape[1])] for l in range(w.shape[0])])
        if not scores:
            raise ValueError("CrossAttentionViewer.agreement: no input translated alike by both models")
        return np.mean(scores, axis=0), len(scores)

    def figure(self, source: str, layer: int = -1):
        """RNNsearch's alignment, then every head of one decoder layer, for ``source``."""
        m = self.maps(source)
        t, r = m["transformer"], m["rnnsearch"]
        heads = t["weights"].shape[1]
        layer = layer % t["weights"].shape[0]
        fig, axes = plt.subplots(1, heads + 1, figsize=(min(4.0 + 0.09 * len(source), 6.5) * (heads + 1) / 2, 4.6),
                                 layout="constrained", sharey=True)
        plot_alignment(axes[0], m["source"], r["rows"], r["weights"], title=f"RNNsearch: {r['output']}")
        for h in range(heads):
            plot_alignment(axes[h + 1], m["source"], t["rows"], t["weights"][layer, h],
                           title=f"Transformer layer {layer}, head {h}")
            axes[h + 1].set_ylabel("")
        for ax in axes:
            ax.tick_params(axis="x", labelsize=6)
        return fig

    def describe(self, source: str, layer: int = -1) -> str:
        """Alt text of :meth:`figure`, in the course's language."""
        m = self.maps(source)
        t, r = m["transformer"], m["rnnsearch"]
        layers, heads = t["weights"].shape[:2]
        layer = layer % layers
        parts = []
        if t["rows"] == r["rows"]:
            parts = [say("cross_attention", "alt_head", head=h,
                         percent=f"{argmax_agreement(t['weights'][layer, h], r['weights']):.0%}")
                     for h in range(heads)]
        text = say("cross_attention", "alt", maps=heads + 1, source=source, rnnsearch=r["output"], heads=heads,
                   layer=layer, transformer=t["output"])
        if parts:
            text += say("cross_attention", "alt_colon") + say("cross_attention", "alt_sep").join(parts)
        return text + say("cross_attention", "alt_end")

    def explorer_data(self, sources=None) -> dict:
        """What the browser draws: both models' maps for every source (weights one byte each).

        Returns:
            ``{"layers", "heads", "examples": [{"source", "computed", "transformer": {"output", "rows",
            "weights"}, "rnnsearch": {...}}]}``; ``computed`` is ``"preset"`` for the viewer's sources
            and ``"kernel"`` for others (dates typed with a kernel).
        """
        sources = self.sources if sources is None else sources
        items = []
        for source in sources:
            m = self.maps(source)
            t, r = m["transformer"], m["rnnsearch"]
            items.append({"source": m["source"], "computed": "preset" if source in self.sources else "kernel",
                          "transformer": {"output": t["output"], "rows": t["rows"],
                                          "weights": encode_unit(t["weights"])},
                          "rnnsearch": {"output": r["output"], "rows": r["rows"],
                                        "weights": encode_unit(r["weights"])}})
        layers, heads = self.maps(sources[0])["transformer"]["weights"].shape[:2]
        return {"layers": int(layers), "heads": int(heads), "examples": items}

    def widget(self, source: str | None = None, layer: int = -1, head: int = 0,
               static: str | Path | None = "auto") -> "CrossAttentionExplorer":
        """The explorer: input, decoder layer and head; RNNsearch's alignment beside the head's map.

        Every map of every preset input is computed here and saved in the page. Dates the reader
        types: in the static book both models run in the browser, exported to ONNX by this method
        into ``static`` (default :func:`attention_course.views.onnx_export.static_dir`, the folder the book
        serves; ``None`` outside a clone of the repository, e.g. in Colab, where nothing is exported):
        the Transformer's encoder and decoder graphs
        (:func:`~attention_course.views.onnx_export.export_date_transformer`, about 0.7 MB at Chapter 7's
        sizes) and RNNsearch's at its last checkpoint (:func:`~attention_course.views.onnx_export.export_rnnsearch`,
        under the same name as Chapter 2's explorer gives it, so the book stores and serves it once),
        loaded only when the reader first types. With a kernel, both models translate in Python
        (:meth:`maps`) and the input is added to the data. Either way an input is checked by
        :func:`source_problem` first.

        Args:
            source: the preset input shown first (default: the first).
            layer, head: the decoder layer (negative counts from the last) and head shown first.
            static: where to export the models (``"auto"``: :func:`~attention_course.views.onnx_export.static_dir`;
                ``None``: no export, typing then needs a kernel).

        Raises:
            ValueError: if ``source`` is not one of the viewer's or the layer or head is out of range.
        """
        source = source or self.sources[0]
        if source not in self.sources:
            raise ValueError(f"{source!r} is not one of the viewer's sources: {self.sources}")
        data = self.explorer_data()
        layer = layer % data["layers"] if -data["layers"] <= layer < data["layers"] else layer
        if not (0 <= layer < data["layers"] and 0 <= head < data["heads"]):
            raise ValueError(f"layer {layer}, head {head} out of range: the decoder has "
                             f"{data['layers']} layers of {data['heads']} heads")
        static = onnx_export.static_dir() if static == "auto" else static
        models = {}
        if static is not None:
            files = onnx_export.export_date_transformer(self.transformer, self.data, static)
            models["transformer"] = {g: {"path": f["path"], "bytes": f["bytes"]} for g, f in files.items()}
            last = self.rnn.steps[-1]
            files = onnx_export.export_rnnsearch(self.rnn.model(last), self.data, static, prefix=f"rnnsearch-step{last}")
            models["rnnsearch"] = {g: {"path": f["path"], "bytes": f["bytes"]} for g, f in files.items()}
        data.update(models=models, runtime_bytes=onnx_export.runtime_bytes(),
                    source_alphabet=self.data.source_vocab.alphabet, target_alphabet=self.data.target_vocab.alphabet,
                    max_len=self.max_len, max_source=self.transformer.config.max_len)
        explorer = CrossAttentionExplorer(
            data=data, controls={"example": self.sources.index(source), "layer": int(layer), "head": int(head)},
            alt=self.describe(source, layer))
        # A typed input: maps() raises on one source_problem rejects (the page shows the message).
        explorer.accept_typed("source", self.sources, self.explorer_data,
                              check=self.maps)
        return explorer


class CrossAttentionExplorer(Explorer, kind="cross_attention"):
    """Chapter 7's explorer (front-end: ``static/explorers/cross_attention.js``, with onnxruntime-web)."""


CrossAttentionExplorer._esm = onnx_export.build_esm_with_runtime("cross_attention")
