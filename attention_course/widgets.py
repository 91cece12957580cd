"""Interactive explorers (ipywidgets 7.7 in Colab and 8.x elsewhere)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .plotting import COLORS, entropy, figure_html, plot_weights
from .scoring import SCORE_FUNCTIONS, softmax

__all__ = ["AttentionExplorer"]

SCORE_LABELS = {
    "scaled_dot": "scaled dot  q·k/√d_k",
    "dot": "dot  q·k",
    "cosine": "cosine  q·k/(|q||k|)",
    "additive": "additive  w_vᵀtanh(W_q q + W_k k), random W",
    "bilinear": "bilinear  qᵀWk, random W",
}


class AttentionExplorer:
    """Query a small key/value store with any scoring function, temperature and d_k.

    Queries and keys are real sentence embeddings (unit-length rows of dimension
    ``d``), so their directions, and hence their cosine similarities, are real. The
    ``d_k`` control rescales every query and key to length ``sqrt(d_k)``: the typical
    length of a ``d_k``-dimensional vector whose components have variance 1, which is
    what a Transformer's projections ``W^Q, W^K`` produce and what the ``sqrt(d_k)``
    scaling assumes (Vaswani et al. 2017, §3.2.1). The plain dot product then grows like
    ``d_k`` times the cosine and the scaled one like ``sqrt(d_k)`` times it; the cosine
    score ignores lengths. The additive and bilinear scores get fixed *random*
    parameters (scaled so their scores have a standard deviation near 1): they are
    untrained, so their rankings show such a score before learning, not after.

    Args:
        query_texts: ``m`` query sentences (the dropdown's options).
        Q: query embeddings, shape ``(m, d)``.
        key_texts: ``n`` key sentences.
        K: key embeddings, shape ``(n, d)``.
        V: values, shape ``(n, d_v)``.
        value_labels: ``d_v`` names of the value components.
        d_k_options: the d_k values offered.
        hidden: hidden size of the additive score.
        seed: seeds the random score parameters.

    Raises:
        ValueError: if the shapes or label counts disagree.
    """

    def __init__(self, query_texts, Q, key_texts, K, V, value_labels,
                 d_k_options=(4, 16, 64, 256, 1024), hidden: int = 32, seed: int = 0):
        Q, K, V = (np.asarray(a, dtype=float) for a in (Q, K, V))
        if Q.ndim != 2 or K.ndim != 2 or V.ndim != 2 or Q.shape[1] != K.shape[1]:
            raise ValueError(f"AttentionExplorer: expected Q (m, d), K (n, d), V (n, d_v); "
                             f"got Q {Q.shape}, K {K.shape}, V {V.shape}")
        if (len(query_texts), len(key_texts), len(value_labels)) != (Q.shape[0], K.shape[0], V.shape[1]) \
                or V.shape[0] != K.shape[0]:
            raise ValueError(
                f"AttentionExplorer: {len(query_texts)} query texts for Q {Q.shape}, "
                f"{len(key_texts)} key texts for K {K.shape}, {len(value_labels)} value "
                f"labels for V {V.shape}"
            )
        self.query_texts, self.key_texts = list(query_texts), list(key_texts)
        self.value_labels = list(value_labels)
        self.Q, self.K, self.V = Q, K, V
        self.d_k_options = tuple(int(d) for d in d_k_options)
        self.hidden, self.seed = hidden, seed
        self._cache: dict[int, dict] = {}

    def _parameters(self, d_k: int) -> dict:
        """Random (untrained) parameters of the additive and bilinear scores for this d_k."""
        if d_k not in self._cache:
            rng = np.random.default_rng([self.seed, d_k])
            d = self.K.shape[1]
            self._cache[d_k] = {
                "additive": {
                    "W_q": rng.normal(scale=d_k ** -0.5, size=(self.hidden, d)),
                    "W_k": rng.normal(scale=d_k ** -0.5, size=(self.hidden, d)),
                    "w_v": rng.normal(scale=2.0 * self.hidden ** -0.5, size=self.hidden),
                },
                "bilinear": {"W": rng.normal(scale=1.0 / d_k, size=(d, d))},
            }
        return self._cache[d_k]

    def scores(self, query: int, score: str, d_k: int) -> np.ndarray:
        """Raw scores ``(n,)`` of query number ``query`` against every key."""
        if score not in SCORE_FUNCTIONS:
            raise ValueError(f"unknown score {score!r}; choose from {sorted(SCORE_FUNCTIONS)}")
        d_k = int(d_k)
        if d_k < 1:
            raise ValueError(f"d_k must be a positive integer; got {d_k}")
        length = np.sqrt(d_k)
        q = length * self.Q[query] / np.linalg.norm(self.Q[query])  # (d,), |q| = sqrt(d_k)
        K = length * self.K / np.linalg.norm(self.K, axis=1, keepdims=True)  # (n, d)
        if score == "scaled_dot":  # divide by sqrt(d_k), the vectors' nominal dimension
            return (q @ K.T) / length
        return SCORE_FUNCTIONS[score](q, K, **self._parameters(d_k).get(score, {}))

    def weights(self, query: int, score: str, temperature: float, d_k: int) -> np.ndarray:
        """Attention weights ``softmax(scores / temperature)``, shape ``(n,)``."""
        if not temperature > 0:
            raise ValueError(f"temperature must be positive; got {temperature}")
        return softmax(self.scores(query, score, d_k) / temperature)

    def describe(self, query: int = 0, score: str = "scaled_dot", temperature: float = 1.0,
                 d_k: int = 64) -> str:
        """One sentence saying what :meth:`figure` shows (the figure's alt text)."""
        weights = self.weights(query, score, temperature, d_k)
        best = int(np.argmax(weights))
        context = weights @ self.V
        return (
            f"Bar chart of the attention weights of the query '{self.query_texts[query]}' over "
            f"{len(weights)} keys with the {score} score, temperature {temperature:.2g}, "
            f"d_k {d_k}: the largest weight, {weights[best]:.2f}, goes to '{self.key_texts[best]}'. "
            f"Beside it, the context vector: "
            + ", ".join(f"{label} {value:.2f}" for label, value in zip(self.value_labels, context))
        )

    def figure(self, query: int = 0, score: str = "scaled_dot", temperature: float = 1.0,
               d_k: int = 64):
        """Two panels: the weights over the keys, and the context vector they produce."""
        weights = self.weights(query, score, temperature, d_k)
        context = weights @ self.V  # (d_v,)
        fig, (ax_w, ax_c) = plt.subplots(
            1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2.4, 1]}, layout="constrained"
        )
        plot_weights(ax_w, self.key_texts, weights,
                     title=f"{SCORE_LABELS[score]}  ·  T = {temperature:.2g}  ·  d_k = {d_k}",
                     max_label=44)
        ax_c.bar(self.value_labels, context, color=COLORS["main"])
        ax_c.set_ylim(0, 1)
        ax_c.set_title("context = Σᵢ αᵢ vᵢ")
        ax_c.tick_params(axis="x", labelrotation=30)
        ax_c.grid(axis="x", visible=False)
        uniform = np.log(len(weights))
        fig.suptitle(
            f"query: “{self.query_texts[query]}”\nhard lookup → key {int(np.argmax(weights)) + 1};  "
            f"max weight {weights.max():.2f};  entropy {entropy(weights):.2f} nats "
            f"(uniform: {uniform:.2f})",
            fontsize=10,
        )
        return fig

    def widget(self, query: int = 0, score: str = "scaled_dot", temperature: float = 1.0,
               d_k: int = 64):
        """The interactive explorer: dropdowns and sliders above the live figure."""
        import ipywidgets as widgets
        from IPython.display import HTML, display

        layout = widgets.Layout(width="460px")
        style = {"description_width": "110px"}
        controls = {
            "query": widgets.Dropdown(
                options=[(text, i) for i, text in enumerate(self.query_texts)], value=query,
                description="query", layout=layout, style=style),
            "score": widgets.Dropdown(
                options=[(label, name) for name, label in SCORE_LABELS.items()], value=score,
                description="score function", layout=layout, style=style),
            "temperature": widgets.FloatLogSlider(
                value=temperature, base=10, min=-2, max=1, step=0.05,
                description="temperature T", layout=layout, style=style),
            "d_k": widgets.SelectionSlider(
                options=list(self.d_k_options), value=d_k, description="d_k",
                layout=layout, style=style),
        }

        def draw(**kwargs):
            fig = self.figure(**kwargs)
            display(HTML(figure_html(fig, self.describe(**kwargs))))
            plt.close(fig)

        output = widgets.interactive_output(draw, controls)
        return widgets.VBox([widgets.VBox(list(controls.values())), output])
