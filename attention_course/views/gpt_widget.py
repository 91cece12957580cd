"""A playground for the small GPT of Chapter 6: type a prompt, generate, see the last token's attention.

:meth:`GPTPlayground.widget` is an explorer (anywidget): live in Jupyter and Colab (Python
generates) and in the static book (the browser generates, with the model exported to ONNX).
:meth:`GPTPlayground.figure` draws the same attention as a static matplotlib figure.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from attention_course.views import onnx_export
from attention_course.env import torch_threads
from attention_course.views.explorer import Explorer, encode_unit, say
from attention_course.data.fortunes import CharTokenizer
from attention_course.models.gpt import GPT, generate, sample_next_token
from attention_course.views.onnx_export import window_step
from attention_course.views.plotting import draw_heatmap

__all__ = ["GPTPlayground", "GPTExplorer"]


def _show(c: str) -> str:
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(c, c)


def _check_request(prompt: str, temperature: float, length: int) -> None:
    """Raise ValueError for an empty prompt, a negative temperature or a length < 1."""
    if not prompt:
        raise ValueError(say("gpt", "empty_prompt"))
    if temperature < 0 or length < 1:
        raise ValueError(f"need temperature >= 0 and length >= 1; got {temperature}, {length}")


class GPTPlayground:
    """Generate with a trained :class:`~attention_course.models.gpt.GPT` and show where the last token looks.

    Args:
        model: a trained character-level GPT.
        tokenizer: its :class:`~attention_course.data.fortunes.CharTokenizer`.
        seed: seeds the sampler, so the same settings give the same text.
    """

    def __init__(self, model: GPT, tokenizer: CharTokenizer, seed: int = 0):
        self.model, self.tokenizer, self.seed = model, tokenizer, seed

    def run(self, prompt: str, temperature: float = 0.8, length: int = 120):
        """Generate ``length`` characters after ``prompt``.

        Returns:
            ``(text, context, weights)``: the generated continuation, the last ``block_size``
            characters the model saw for its final prediction, and that prediction's attention
            weights ``(n_layer, num_heads, len(context))``.

        Raises:
            ValueError: for an empty prompt, a negative temperature or a length < 1.
        """
        _check_request(prompt, temperature, length)
        ids = self.tokenizer.encode(prompt)[None]  # (1, n)
        out = generate(self.model, ids, int(length), temperature,
                       torch.Generator().manual_seed(self.seed), use_cache=True)
        context = out[:, -self.model.config.block_size:]  # (1, <= block)
        with torch.no_grad(), torch_threads():
            _, _, weights = self.model(context, need_weights=True)  # (layers, 1, h, n, n)
        return (self.tokenizer.decode(out[0, ids.shape[1]:]), self.tokenizer.decode(context[0]),
                weights[:, 0, :, -1].numpy())

    def figure(self, prompt: str = "The ", temperature: float = 0.8, length: int = 120, layer: int = -1):
        """Heatmap: the attention of the last position over its context, one row per head."""
        text, context, weights = self.run(prompt, temperature, length)
        w = weights[layer]  # (h, n)
        fig, ax = plt.subplots(figsize=(11, 2.4), layout="constrained")
        draw_heatmap(ax, w, [f"head {h}" for h in range(w.shape[0])], [_show(c) for c in context],
                     vmax=max(0.3, float(w.max())), fontsize=7,
                     title=f"layer {layer % weights.shape[0]}: where the last character looks when predicting the next one",
                     xlabel="context (the last characters the model sees; ␣ space, ⏎ new line)")
        return fig, text, w, context

    def describe(self, w: np.ndarray, context: str) -> str:
        """Alt text of :meth:`figure`, in the course's language."""
        top = [int(np.argmax(row)) for row in w]
        heads = say("gpt", "head_sep").join(
            say("gpt", "alt_head", k=h, char=repr(_show(context[j])), back=len(context) - 1 - j, weight=f"{row[j]:.2f}")
            for h, (j, row) in enumerate(zip(top, w)))
        return say("gpt", "alt_heatmap", n=len(context), heads=heads)

    def stream(self, prompt: str, temperature: float = 0.8, length: int = 120, seed: int | None = None,
               top_k: int = 0, top_p: float = 1.0):
        """Write ``length`` characters one at a time, as the browser does: at each step the model
        reads the last ``block_size`` characters (:func:`attention_course.views.onnx_export.window_step`)
        and draws the next one (:func:`attention_course.models.gpt.sample_next_token`, with ``top_k`` and
        ``top_p``).

        Yields:
            ``(char, context, attention)``: the new character, the context the model read to choose
            it, and that choice's attention weights ``(n_layer, num_heads, len(context))``.

        Raises:
            ValueError: for an empty prompt, a negative temperature, a length < 1, or top-k / top-p
                out of range (:func:`attention_course.models.gpt.sample_next_token`).
        """
        _check_request(prompt, temperature, length)
        generator = torch.Generator().manual_seed(self.seed if seed is None else seed)
        ids = self.tokenizer.encode(prompt)  # (n,)
        block = self.model.config.block_size
        self.model.eval()
        for _ in range(int(length)):
            window = ids[-block:][None]  # (1, <= block)
            with torch_threads():
                logits, attention = window_step(self.model, window)  # (1, V), (layers, h, n)
            token = sample_next_token(logits, temperature, generator, top_k, top_p)  # (1,)
            ids = torch.cat([ids, token])
            yield self.tokenizer.decode(token), self.tokenizer.decode(window[0]), attention.numpy()

    def widget(self, prompt: str = "The ", temperature: float = 0.8, length: int = 120,
               static: str | Path | None = "auto"):
        """The playground as an :class:`~attention_course.views.explorer.Explorer`, live with or without a kernel.

        In the static book the browser runs the model: this method exports it to ONNX into
        ``static`` (default :func:`attention_course.views.onnx_export.static_dir`, the folder the book
        serves; nothing is exported outside the repository, e.g. in Colab) and names the file in
        the widget's data. With a kernel, Generate runs :meth:`stream` here in PyTorch and sends
        each character to the page as it is written: Colab and Jupyter serve no onnxruntime-web,
        and Python already holds the model.

        The widget first shows a continuation of ``prompt`` written here (the same one as
        :meth:`stream` with these settings).
        """
        static = onnx_export.static_dir() if static == "auto" else static
        model_file = (onnx_export.export_gpt(self.model, self.tokenizer, static)
                      if static is not None else None)
        text, context, attention = "", prompt, None
        for char, context, attention in self.stream(prompt, temperature, length):
            text += char
        config = self.model.config
        data = {
            "model": None if model_file is None else {k: model_file[k] for k in ("path", "bytes")},
            "runtime_bytes": onnx_export.runtime_bytes(),
            "chars": self.tokenizer.chars, "unknown": self.tokenizer.unknown,
            "block_size": config.block_size, "n_layer": config.n_layer, "num_heads": config.num_heads,
            "sample": {"prompt": prompt, "text": text, "context": context,
                       "attention": encode_unit(attention)},
        }
        layer = config.n_layer - 1
        alt = say("gpt", "alt", prompt=prompt, text=repr(text)) + self.describe(attention[layer], context)
        explorer = GPTExplorer(data=data, controls={"prompt": prompt, "temperature": temperature,
                                                    "top_k": 0, "top_p": 1.0, "length": length,
                                                    "layer": layer}, alt=alt)
        explorer.on_request("generate", lambda message: self._answer(explorer, message))
        return explorer

    def _answer(self, explorer, message: dict) -> None:
        """Write as :meth:`stream` does and answer after each character with the text so far."""
        text = ""
        for char, context, attention in self.stream(str(message.get("prompt", "")),
                                                    float(message.get("temperature", 0.8)),
                                                    int(message.get("length", 120)),
                                                    int(message.get("seed", self.seed)),
                                                    int(message.get("top_k", 0)),
                                                    float(message.get("top_p", 1.0))):
            text += char
            explorer.answer(message, {"text": text, "context": context, "done": False,
                                      "attention": np.round(attention, 4).tolist()})
        explorer.answer(message, {"text": text, "done": True})


class GPTExplorer(Explorer, kind="gpt"):
    """The front-end of :meth:`GPTPlayground.widget` (``static/explorers/gpt.js``, with onnxruntime-web)."""


GPTExplorer._esm = onnx_export.build_esm_with_runtime("gpt")
