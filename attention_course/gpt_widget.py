"""A playground for the small GPT of Chapter 6: type a prompt, generate, see the last token's attention.

ipywidgets 7.7 (Colab) and 8.x; figures inside the widget are inline PNGs with alt text
(:func:`attention_course.plotting.figure_html`).
"""
from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import torch

from .env import torch_threads
from .gpt import GPT, CharTokenizer, generate
from .plotting import COLORS, figure_html

__all__ = ["GPTPlayground"]


def _show(c: str) -> str:
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(c, c)


class GPTPlayground:
    """Generate with a trained :class:`~attention_course.gpt.GPT` and show where the last token looks.

    Args:
        model: a trained character-level GPT.
        tokenizer: its :class:`~attention_course.gpt.CharTokenizer`.
        seed: seeds the sampler, so the same settings give the same text.
    """

    def __init__(self, model: GPT, tokenizer: CharTokenizer, seed: int = 0):
        self.model, self.tokenizer, self.seed = model, tokenizer, seed

    def run(self, prompt: str, temperature: float = 0.8, length: int = 120):
        """Generate ``length`` characters after ``prompt``.

        Returns:
            ``(text, context, weights)``: the generated continuation, the last ``block_size``
            characters the model saw for its final prediction, and that prediction's attention
            weights ``(n_layer, n_head, len(context))``.

        Raises:
            ValueError: for an empty prompt, a negative temperature or a length < 1.
        """
        if not prompt:
            raise ValueError("GPTPlayground: type a prompt of at least one character")
        if temperature < 0 or length < 1:
            raise ValueError(f"need temperature >= 0 and length >= 1; got {temperature}, {length}")
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
        ax.imshow(w, aspect="auto", cmap="viridis", vmin=0, vmax=max(0.3, float(w.max())))
        ax.set_xticks(range(len(context)), [_show(c) for c in context], fontsize=7)
        ax.set_yticks(range(w.shape[0]), [f"head {h}" for h in range(w.shape[0])])
        ax.grid(False)
        n_layer = weights.shape[0]
        ax.set_title(f"layer {layer % n_layer}: where the last character looks when predicting the next one")
        ax.set_xlabel("context (the last characters the model sees; ␣ space, ⏎ new line)")
        return fig, text, w, context

    def describe(self, w: np.ndarray, context: str) -> str:
        """Alt text of :meth:`figure`."""
        top = [int(np.argmax(row)) for row in w]
        heads = "; ".join(f"head {h} looks most at {_show(context[j])!r} "
                          f"{len(context) - 1 - j} characters back ({row[j]:.2f})"
                          for h, (j, row) in enumerate(zip(top, w)))
        return f"Heatmap of attention weights over the last {len(context)} characters: {heads}."

    def widget(self, prompt: str = "The ", temperature: float = 0.8, length: int = 120):
        """Prompt box, temperature and length sliders, a button; output: text and attention."""
        import ipywidgets as widgets
        from IPython.display import HTML, display

        layout = widgets.Layout(width="460px")
        style = {"description_width": "110px"}
        box = widgets.Text(value=prompt, description="prompt", layout=layout, style=style)
        temp = widgets.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.1,
                                   description="temperature", layout=layout, style=style)
        size = widgets.IntSlider(value=length, min=10, max=400, step=10,
                                 description="length (chars)", layout=layout, style=style)
        button = widgets.Button(description="Generate", button_style="primary")
        output = widgets.Output()

        def draw(_=None):
            with output:
                output.clear_output(wait=True)
                if not box.value:
                    display(HTML("<p>Type a prompt first.</p>"))
                    return
                fig, text, w, context = self.figure(box.value, temp.value, size.value)
                display(HTML(
                    f'<pre style="white-space:pre-wrap;border-left:3px solid {COLORS["main"]};'
                    f'padding-left:8px"><b>{html.escape(box.value)}</b>{html.escape(text)}</pre>'))
                display(HTML(figure_html(fig, self.describe(w, context))))
                plt.close(fig)

        button.on_click(draw)
        draw()
        return widgets.VBox([box, temp, size, button, output])
