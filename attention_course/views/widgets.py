"""Explorers of Chapters 1 and 3 (drawn and recomputed in the browser; see :mod:`.explorer`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from attention_course.views.explorer import Explorer, say
from attention_course.views.plotting import COLORS, entropy, plot_weights
from attention_course.maths.scoring import SCORE_FUNCTIONS, softmax

__all__ = ["AttentionExplorer", "ScoresExplorer", "OutputsExplorer", "outputs_data", "outputs_explorer"]

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
        """One sentence saying what :meth:`figure` shows (the figure's alt text), in the course's language."""
        weights = self.weights(query, score, temperature, d_k)
        best = int(np.argmax(weights))
        context = weights @ self.V
        return say("attention_scores", "alt", query=self.query_texts[query], n=len(weights), score=score,
                   temperature=f"{temperature:.2g}", d_k=d_k, weight=f"{weights[best]:.2f}", key=self.key_texts[best],
                   context=", ".join(f"{label} {value:.2f}" for label, value in zip(self.value_labels, context)))

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

    def explorer_data(self) -> dict:
        """Everything the browser needs to recompute :meth:`weights` (JSON-able).

        The queries, keys and values go as they are; the random additive and bilinear
        parameters go applied to the unit embeddings (``A = Q̂ W_qᵀ``, ``B = K̂ W_kᵀ``,
        ``QW = Q̂ W`` for each ``d_k``), which is all the scores need and keeps the page small.
        """
        Q_unit = self.Q / np.linalg.norm(self.Q, axis=1, keepdims=True)  # (m, d)
        K_unit = self.K / np.linalg.norm(self.K, axis=1, keepdims=True)  # (n, d)
        params = {}
        for d_k in self.d_k_options:
            p = self._parameters(d_k)
            params[str(d_k)] = {
                "additive": {"A": (Q_unit @ p["additive"]["W_q"].T).tolist(),  # (m, h)
                             "B": (K_unit @ p["additive"]["W_k"].T).tolist(),  # (n, h)
                             "w_v": p["additive"]["w_v"].tolist()},  # (h,)
                "bilinear": {"QW": (Q_unit @ p["bilinear"]["W"]).tolist()},  # (m, d)
            }
        return {
            "query_texts": self.query_texts, "key_texts": self.key_texts,
            "value_labels": self.value_labels, "Q": self.Q.tolist(), "K": self.K.tolist(),
            "V": self.V.tolist(), "score_labels": SCORE_LABELS,
            "d_k_options": list(self.d_k_options), "params": params,
            "hidden": self.hidden, "seed": self.seed,
        }

    def widget(self, query: int = 0, score: str = "scaled_dot", temperature: float = 1.0,
               d_k: int = 64) -> "ScoresExplorer":
        """The interactive explorer, drawn and recomputed in the browser (also in the static book).

        Raises:
            ValueError: for an unknown score, a ``d_k`` not offered, a non-positive temperature
            or a query index out of range.
        """
        if score not in SCORE_LABELS:
            raise ValueError(f"unknown score {score!r}; choose from {list(SCORE_LABELS)}")
        if int(d_k) not in self.d_k_options:
            raise ValueError(f"d_k {d_k} is not among the options {self.d_k_options}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive; got {temperature}")
        if not 0 <= query < len(self.query_texts):
            raise ValueError(f"query {query} out of range for {len(self.query_texts)} queries")
        return ScoresExplorer(
            data=self.explorer_data(),
            controls={"query": int(query), "score": score, "temperature": float(temperature), "d_k": int(d_k)},
            alt=self.describe(query, score, temperature, d_k),
        )


class ScoresExplorer(Explorer, kind="attention_scores"):
    """Chapter 3's explorer (front-end: ``static/explorers/attention_scores.js``)."""


def outputs_data(sources, targets, predictions, groups, per_group: int = 30,
                 model: str = "encoder-decoder without attention") -> dict:
    """Held-out examples by group (e.g. number of dates), with the model's errors marked.

    For each group the first ``per_group`` examples are kept (the held-out set is already in a
    random order), with the positions where the output differs from the truth and how many of
    the items (``"; "``-separated dates) are right; the group's exact-match accuracy
    is computed over *all* its examples.

    Args:
        sources, targets, predictions: equal-length lists of strings.
        groups: one integer per example (e.g. ``dates.count_dates(target)``).

    Returns:
        A JSON-able dict for :class:`OutputsExplorer`.

    Raises:
        ValueError: if the four lists differ in length or are empty.
    """
    lengths = {len(sources), len(targets), len(predictions), len(groups)}
    if len(lengths) != 1 or not sources:
        raise ValueError(f"outputs_data: sources {len(sources)}, targets {len(targets)}, "
                         f"predictions {len(predictions)} and groups {len(groups)} must be equal and non-empty")
    out = []
    for g in sorted(set(int(k) for k in groups)):
        rows = [(s, t, p) for s, t, p, k in zip(sources, targets, predictions, groups) if int(k) == g]
        examples = []
        for s, t, p in rows[:per_group]:
            wrong = [i for i in range(max(len(t), len(p))) if i >= len(t) or i >= len(p) or t[i] != p[i]]
            items_t, items_p = t.split("; "), p.split("; ")
            right = sum(a == b for a, b in zip(items_t, items_p))
            examples.append({"source": s, "target": t, "prediction": p, "wrong": wrong,
                             "items": len(items_t), "items_right": right})
        exact = 100.0 * sum(t == p for _, t, p in rows) / len(rows)
        out.append({"group": g, "n": len(rows), "exact": exact, "examples": examples})
    return {"model": model, "groups": out}


class OutputsExplorer(Explorer, kind="seq2seq_outputs"):
    """Chapter 1's explorer: held-out inputs, the model's output beside the truth, errors marked.

    Front-end: ``static/explorers/seq2seq_outputs.js``. Build it with :func:`outputs_explorer`.
    """


def outputs_explorer(sources, targets, predictions, groups, group: int | None = None,
                     per_group: int = 30, model: str = "encoder-decoder without attention") -> OutputsExplorer:
    """Explorer over held-out translations: choose the number of dates, step through examples.

    See :func:`outputs_data` for the arguments; ``group`` is the group shown first (default:
    the largest).

    Raises:
        ValueError: as :func:`outputs_data`, or if ``group`` is not one of the groups.
    """
    data = outputs_data(sources, targets, predictions, groups, per_group=per_group, model=model)
    names = [g["group"] for g in data["groups"]]
    group = names[-1] if group is None else int(group)
    if group not in names:
        raise ValueError(f"group {group} is not among {names}")
    first = data["groups"][names.index(group)]["examples"][0]
    alt = say("seq2seq_outputs", "alt", group=group, source=first["source"], target=first["target"],
              prediction=first["prediction"], wrong=len(first["wrong"]))
    return OutputsExplorer(data=data, controls={"group": group, "example": 0, "mistakes_only": False}, alt=alt)
