"""Alignment heatmaps of a trained RNNsearch model (Chapter 2; Bahdanau et al. 2015, Figure 3).

The heatmaps put the source characters on the x axis and the output characters on
the y axis; cell ``(i, j)`` is the attention weight ``alpha_ij`` the decoder gave to
source character ``j`` when it wrote output character ``i``.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from attention_course.views import onnx_export
from attention_course.env import torch_threads
from attention_course.views.explorer import Explorer, encode_unit, say
from attention_course.views.plotting import draw_heatmap, en_zh

__all__ = ["plot_alignment", "AlignmentViewer", "AlignmentExplorer"]


def plot_alignment(ax, source: str, rows, weights, title: str | None = None):
    """Draw one alignment matrix.

    Args:
        ax: a matplotlib ``Axes``.
        source: the source string (``T`` characters, the x axis).
        rows: the ``L`` output symbols (a string, or a list of labels such as ``⟨eos⟩``).
        weights: ``(L, T)`` attention weights (drawn by
            :func:`~attention_course.views.plotting.draw_heatmap`, scale 0 to 1).

    Raises:
        ValueError: if the matrix does not match the labels.
    """
    weights = np.asarray(weights, dtype=float)
    rows = list(rows)
    if weights.shape != (len(rows), len(source)):
        raise ValueError(f"plot_alignment: weights {weights.shape} for {len(rows)} output rows "
                         f"and {len(source)} source characters")
    return draw_heatmap(ax, weights, rows, ["␣" if ch == " " else ch for ch in source], title=title,
                        xlabel=en_zh("source character j", "源字符 j"),
                        ylabel=en_zh("output character i", "输出字符 i"), fontsize=8,
                        ticks_on_top=True, title_size=10)


def _figsize(source: str, rows) -> tuple[float, float]:
    return (min(13.0, 2.0 + 0.2 * len(source)), min(11.0, 1.6 + 0.17 * len(rows)))


class AlignmentViewer:
    """Translate a date with a trained RNNsearch and show its alignment, at any checkpoint.

    Args:
        result: a :class:`attention_course.training.loop.TrainResult` of an attention model.
        data: the :class:`attention_course.data.dates.DateData` it was trained on.
        examples: sources offered in the dropdown.

    Raises:
        ValueError: if the model has no attention.
    """

    max_len = 80  # longest translation, in output symbols (as seq2seq_training.translate)

    def __init__(self, result, data, examples):
        if not result.config.attention:
            raise ValueError("AlignmentViewer needs a model with attention (RNNsearch)")
        self.result, self.data, self.examples = result, data, list(examples)
        self.steps = sorted(result.checkpoints)
        self._models: dict[int, object] = {}

    def model(self, step: int):
        if step not in self.checkpoints_set():
            raise ValueError(f"no checkpoint at step {step}; choose from {self.steps}")
        if step not in self._models:
            self._models[step] = self.result.at_checkpoint(step)
        return self._models[step]

    def checkpoints_set(self) -> set:
        return set(self.steps)

    def align(self, source: str, step: int | None = None):
        """``(translation, weights (L, T), row labels)`` of ``source`` at checkpoint ``step``
        (default: the last). The rows are the output symbols up to and including ⟨eos⟩."""
        import torch

        source = source.strip()
        if not source:
            raise ValueError(f"AlignmentViewer: {say('alignment', 'empty_source')}")
        step = self.steps[-1] if step is None else step
        model = self.model(step)
        sv, tv = self.data.source_vocab, self.data.target_vocab
        ids = sv.encode(source, eos=False)
        with torch_threads(1):
            out, attention = model.greedy(torch.tensor([ids]), torch.tensor([len(ids)]), max_len=self.max_len,
                                          bos=tv.BOS, eos=tv.EOS)
        row = out[0].tolist()
        n = row.index(tv.EOS) + 1 if tv.EOS in row else len(row)
        return tv.decode(row), attention[0, :n].numpy(), [tv.symbol(i) for i in row[:n]]

    def describe(self, source: str, step: int | None = None) -> str:
        """Alt text: what the figure shows, with the strongest alignments (in the course's language)."""
        output, weights, _ = self.align(source, step)
        step = self.steps[-1] if step is None else step
        sharp = float(np.mean(weights.max(axis=1)))
        return say("alignment", "alt", step=step, source=source, output=output, rows=len(weights),
                   cols=len(source), sharp=f"{sharp:.2f}")

    def figure(self, source: str, step: int | None = None):
        """The alignment heatmap of ``source`` at checkpoint ``step``."""
        output, weights, rows = self.align(source, step)
        step = self.steps[-1] if step is None else step
        fig, ax = plt.subplots(figsize=_figsize(source, rows), layout="constrained")
        plot_alignment(ax, source, rows, weights,
                       title=en_zh(f"after {step} steps:  {source}  →  {output}",
                                   f"训练 {step} 步后：  {source}  →  {output}"))
        return fig

    def widget(self, source: str | None = None, step: int | None = None,
               static: str | Path | None = "auto"):
        """The viewer as an :class:`~attention_course.views.explorer.Explorer`, live with or without a kernel.

        The examples are translated here at every checkpoint (precomputed, so the checkpoint
        slider reacts at once). For dates the reader types: in the static book the browser runs
        RNNsearch, exported to ONNX by this method into ``static`` (default
        :func:`attention_course.views.onnx_export.static_dir`, the folder the book serves; nothing is
        exported outside the repository, e.g. in Colab), one encoder and one decoder-step file
        per checkpoint, loaded only when needed; with a kernel, Python translates
        (:meth:`align`) and sends the result to the page.

        Args:
            source: the example shown first (default: the first).
            step: the checkpoint shown first (default: the last).
        """
        from attention_course.data.dates import Vocabulary

        step = self.steps[-1] if step is None else step
        if step not in self.checkpoints_set():
            raise ValueError(f"no checkpoint at step {step}; choose from {self.steps}")
        static = onnx_export.static_dir() if static == "auto" else static
        examples = []
        for text in self.examples:
            results = {}
            for k in self.steps:
                output, weights, rows = self.align(text, k)
                results[str(k)] = {"output": output, "rows": rows, "weights": encode_unit(weights)}
            examples.append({"source": text, "results": results})
        models = {}
        if static is not None:
            for k in self.steps:
                files = onnx_export.export_rnnsearch(self.model(k), self.data, static,
                                                     prefix=f"rnnsearch-step{k}")
                models[str(k)] = {g: {"path": f["path"], "bytes": f["bytes"]} for g, f in files.items()}
        data = {
            "steps": self.steps, "examples": examples, "models": models,
            "runtime_bytes": onnx_export.runtime_bytes(),
            "source_alphabet": self.data.source_vocab.alphabet,
            "target_alphabet": self.data.target_vocab.alphabet,
            "max_len": self.max_len,
        }
        if self.data.source_vocab.SPECIALS != Vocabulary.SPECIALS:  # the front-end's ids assume them
            raise ValueError("AlignmentViewer.widget: the vocabularies' special symbols changed")
        first = self.examples.index(source) if source in self.examples else 0
        explorer = AlignmentExplorer(data=data, controls={"example": first, "step": step},
                                     alt=self.describe(self.examples[first], step))
        explorer.on_request("translate", lambda message: self._answer(explorer, message))
        return explorer

    def _answer(self, explorer, message: dict) -> None:
        step = int(message.get("step", self.steps[-1]))
        output, weights, rows = self.align(str(message.get("source", "")), step)
        explorer.answer(message, {"source": str(message["source"]).strip(), "step": step, "output": output,
                                  "rows": rows, "weights": np.round(weights, 4).tolist()})


class AlignmentExplorer(Explorer, kind="alignment"):
    """The front-end of :meth:`AlignmentViewer.widget` (``static/explorers/alignment.js``, with onnxruntime-web)."""


AlignmentExplorer._esm = onnx_export.build_esm_with_runtime("alignment")
