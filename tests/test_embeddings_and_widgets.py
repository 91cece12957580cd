"""The offline MiniLM encoder and the Chapter 3 explorer, on real sentences."""
import numpy as np
import pytest

from attention_course.models.embeddings import embed_sentences, minilm_path
from attention_course.views.explorer import Explorer, build_esm, encode_unit
from attention_course.maths.numerics import assert_agree, rounding_tolerance
from attention_course.views.widgets import AttentionExplorer, ScoresExplorer

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
    # normalised in float32 (then returned as float64): a norm is a sum of 384 squares
    assert np.abs(np.linalg.norm(K, axis=1) - 1).max() <= rounding_tolerance(np.float32, 384)
    # Each query is closest to the key on its topic: the retrieval the chapter relies on.
    assert (Q @ K.T).argmax(axis=1).tolist() == [0, 1]


@pytest.mark.numerics
def test_batching_does_not_change_embeddings(embedded):
    _, K = embedded
    # each sentence alone vs padded in one batch. MiniLM computes in float32 (the float64 it returns
    # holds float32 values), so the two are judged at float32's resolution; the longest sum behind an
    # embedding: a feed-forward layer's second half, over its 1536 hidden units
    alone = embed_sentences(KEYS, batch_size=1)
    assert_agree(alone.astype(np.float32), K.astype(np.float32), reduction=1536, what="one by one vs batched")


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


@pytest.mark.numerics
def test_explorer_widget_carries_what_the_browser_recomputes_from(explorer):
    import json

    import matplotlib.pyplot as plt

    widget = explorer.widget(query=1, score="cosine", temperature=0.1, d_k=16)
    assert isinstance(widget, ScoresExplorer) and widget.kind == "attention_scores"
    assert widget.controls == {"query": 1, "score": "cosine", "temperature": 0.1, "d_k": 16}
    data = json.loads(json.dumps(widget.data))  # JSON-able, as the page stores it
    assert data["query_texts"] == QUERIES and data["d_k_options"] == list(explorer.d_k_options)
    # The applied parameters the page carries reproduce Python's additive and bilinear scores.
    for d_k in explorer.d_k_options:
        p = data["params"][str(d_k)]
        L = np.sqrt(d_k)
        additive = np.tanh(L * np.array(p["additive"]["A"])[0] + L * np.array(p["additive"]["B"])) @ p["additive"]["w_v"]
        # float64 sums over the 384 embedding features (scores grow with d_k: relative, not absolute)
        assert_agree(additive, explorer.scores(0, "additive", d_k), reduction=384, what=f"additive, d_k = {d_k}")
        K_unit = explorer.K / np.linalg.norm(explorer.K, axis=1, keepdims=True)
        bilinear = d_k * np.array(p["bilinear"]["QW"])[1] @ K_unit.T
        assert_agree(bilinear, explorer.scores(1, "bilinear", d_k), reduction=384, what=f"bilinear, d_k = {d_k}")
    with pytest.raises(ValueError, match="d_k 5"):
        explorer.widget(d_k=5)
    fig = explorer.figure(1, "cosine", 0.1, 16)  # the static figure the chapter keeps
    assert len(fig.axes) == 2
    plt.close(fig)


def test_explorer_rejects_mismatched_labels(embedded):
    Q, K = embedded
    with pytest.raises(ValueError, match="key texts"):
        AttentionExplorer(QUERIES, Q, KEYS[:2], K, np.eye(3), ["a", "b", "c"])
    explorer = AttentionExplorer(QUERIES, Q, KEYS, K, np.eye(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="temperature"):
        explorer.weights(0, "dot", 0.0, 4)


# The explorer framework (attention_course/views/explorer.py) -------------------------------------

def test_each_kind_gets_the_shared_core_and_its_own_front_end():
    esm = build_esm("attention_scores")
    assert esm.startswith("/*\n * explorer_core.js") and "export default" in esm
    assert "function attentionWeights" in esm and "const core = " in esm
    with pytest.raises(ValueError, match="no front-end for explorer kind 'nope'"):
        build_esm("nope")
    with pytest.raises(TypeError, match="base class"):
        Explorer()


def test_explorer_requests_reach_their_handler():
    class Echo(Explorer, kind="attention_scores"):
        pass

    echo = Echo(data={"n": 1}, controls={"query": 0})
    assert echo.kind == "attention_scores" and echo._esm == build_esm("attention_scores")
    assert "ac-explorer" in echo._css
    echo.on_request("bump", lambda message: setattr(echo, "data", {"n": echo.data["n"] + message["by"]}))
    echo._dispatch(echo, {"type": "bump", "by": 2}, [])
    echo._dispatch(echo, {"type": "unknown"}, [])  # ignored
    assert echo.data == {"n": 3}


def test_the_kernel_answers_through_data_only():
    """Explorer.answer and Explorer.accept_typed: every answer, error or typed input, is new data."""
    class Typed(Explorer, kind="head_viewer"):
        pass

    def check(text):
        if "!" in text:
            raise ValueError("no exclamations")

    typed = Typed(data={"items": ["a"], "kept": True})
    typed.send = lambda message: pytest.fail(f"sent a custom message: {message}")
    typed.accept_typed("item", ["a"], lambda items: {"items": items}, check=check, keep=2)
    for k, text in enumerate(["b", " c ", "b", "a", "d"], start=1):
        typed._dispatch(typed, {"type": "item", "request": k, "text": text}, [])
        assert typed.data["answer"] == {"type": "item", "request": k} and typed.data["kept"]
    assert typed.data["items"] == ["a", "c", "d"]  # the presets, then the last two typed, none twice
    with pytest.raises(ValueError):
        typed._dispatch(typed, {"type": "item", "request": 9, "text": "x!"}, [])
    assert typed.data["answer"] == {"type": "item", "request": 9, "error": "no exclamations"}
    assert typed.data["items"] == ["a", "c", "d"]


def test_encode_unit_round_trips_to_a_255th():
    import base64

    w = np.random.default_rng(0).random((2, 3, 4))
    packed = encode_unit(w)
    assert packed["shape"] == [2, 3, 4]
    back = np.frombuffer(base64.b64decode(packed["b64"]), dtype=np.uint8).reshape(2, 3, 4) / 255
    assert np.abs(back - w).max() <= 1 / 510 + 1e-12
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encode_unit([0.5, 1.5])


def test_head_explorer_embeds_every_head_and_adds_typed_sentences_with_a_kernel():
    import base64

    from attention_course.views.head_viewer import HeadViewer
    from attention_course.models.pretrained import word_attentions

    sentence = "The ball is blue."
    viewer = HeadViewer([sentence], source="it")
    explorer = viewer.widget(sentence, layer=1, head=2)
    (item,) = explorer.data["sentences"]
    exact = word_attentions(sentence).weights  # (6, 12, n, n)
    assert item["weights"]["shape"] == list(exact.shape) and item["words"][0] == "[CLS]"
    packed = np.frombuffer(base64.b64decode(item["weights"]["b64"]), dtype=np.uint8).reshape(exact.shape) / 255
    assert np.abs(packed - exact).max() <= 1 / 510 + 1e-9
    explorer._dispatch(explorer, {"type": "sentence", "text": "Cats sleep a lot."}, [])
    assert [s["text"] for s in explorer.data["sentences"]] == [sentence, "Cats sleep a lot."]
    with pytest.raises(ValueError, match="empty"):
        explorer._dispatch(explorer, {"type": "sentence", "text": "  "}, [])
    with pytest.raises(ValueError, match="not one of the viewer's sentences"):
        viewer.widget("Another sentence.")
