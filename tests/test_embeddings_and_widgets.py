"""The offline MiniLM encoder and the Chapter 3 explorer, on real sentences."""
import numpy as np
import pytest

from attention_course.embeddings import embed_sentences, minilm_path
from attention_course.widgets import AttentionExplorer

KEYS = [
    "Heavy rain and strong winds are expected tomorrow.",
    "Knead the dough and let it rise for an hour.",
    "The striker scored twice in the second half.",
]
QUERIES = ["Should I take an umbrella today?", "How long should the bread bake?"]


@pytest.fixture(scope="module")
def embedded():
    return embed_sentences(QUERIES), embed_sentences(KEYS)


def test_model_ships_with_the_package():
    path = minilm_path()
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()


def test_embeddings_are_unit_vectors_and_meaningful(embedded):
    Q, K = embedded
    assert Q.shape == (2, 384) and K.shape == (3, 384) and Q.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(K, axis=1), 1.0, atol=1e-6)
    # Each query is closest to the key on its topic: the retrieval the chapter relies on.
    assert (Q @ K.T).argmax(axis=1).tolist() == [0, 1]


def test_batching_does_not_change_embeddings(embedded):
    _, K = embedded
    np.testing.assert_allclose(embed_sentences(KEYS, batch_size=1), K, atol=1e-5)


def test_embed_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty list of strings"):
        embed_sentences([])
    with pytest.raises(ValueError):
        embed_sentences(["ok", 3])


@pytest.fixture(scope="module")
def explorer(embedded):
    Q, K = embedded
    return AttentionExplorer(QUERIES, Q, KEYS, K, np.eye(3), ["weather", "cooking", "sport"])


def test_explorer_weights_are_distributions(explorer):
    for score in ("dot", "scaled_dot", "cosine", "additive", "bilinear"):
        w = explorer.weights(0, score, 0.5, 64)
        assert w.shape == (3,) and np.isclose(w.sum(), 1.0) and np.all(w >= 0)


def test_explorer_shows_the_sqrt_dk_effect(explorer):
    dot = [explorer.weights(0, "dot", 1.0, d).max() for d in (4, 64, 1024)]
    scaled = [explorer.weights(0, "scaled_dot", 1.0, d).max() for d in (4, 64, 1024)]
    cosine = [explorer.weights(0, "cosine", 1.0, d) for d in (4, 64, 1024)]
    assert dot[-1] > 0.99 and scaled[-1] < dot[-1] and scaled[0] < scaled[1] < scaled[2]
    np.testing.assert_allclose(cosine[0], cosine[2])  # cosine ignores the vectors' length


def test_explorer_widget_and_figure(explorer):
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    box = explorer.widget()
    assert isinstance(box, widgets.VBox)
    controls = box.children[0].children
    assert [c.description for c in controls] == ["query", "score function", "temperature T", "d_k"]
    fig = explorer.figure(1, "cosine", 0.1, 16)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_explorer_rejects_mismatched_labels(embedded):
    Q, K = embedded
    with pytest.raises(ValueError, match="key texts"):
        AttentionExplorer(QUERIES, Q, KEYS[:2], K, np.eye(3), ["a", "b", "c"])
    explorer = AttentionExplorer(QUERIES, Q, KEYS, K, np.eye(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="temperature"):
        explorer.weights(0, "dot", 0.0, 4)
