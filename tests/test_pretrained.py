"""Real attention of the pretrained MiniLM: word merging and the 'it' head search."""
import numpy as np
import pytest

from attention_course.views.head_viewer import HeadViewer
from attention_course.maths.numerics import rounding_tolerance
from attention_course.models.pretrained import head_flips, strongest_heads, word_attentions

TIRED = "The animal didn't cross the street because it was too tired."
WIDE = "The animal didn't cross the street because it was too wide."


@pytest.fixture(scope="module")
def pair():
    return word_attentions(TIRED), word_attentions(WIDE)


def assert_rows_sum_to_one(attention):
    """MiniLM's softmax rows (float32, over the sentence's tokens) merged into words still sum to 1."""
    error = np.abs(attention.weights.sum(-1) - 1).max()
    assert error <= rounding_tolerance(np.float32, len(attention.tokens)), error


def test_word_attention_rows_sum_to_one(pair):
    tired, _ = pair
    assert tired.weights.shape[:2] == (6, 12)
    assert tired.words[0] == "[CLS]" and tired.words[-1] == "[SEP]"
    assert_rows_sum_to_one(tired)
    merged = word_attentions("Tokenization splits unbelievably long words.")
    assert "unbelievably" in merged.words and "tokenization" in merged.words
    assert_rows_sum_to_one(merged)
    with pytest.raises(ValueError, match="is not a word"):
        tired.index("zebra")


def test_it_heads_found_programmatically(pair):
    tired, wide = pair
    flips = head_flips(tired, wide, "it", "animal", "street")
    found = {(r["layer"], r["head"]) for r in flips}
    assert (4, 0) in found, found  # the clearest flip measured: 0.10 vs 0.08, then 0.05 vs 0.19
    assert all(r["first_to_first"] > r["first_to_second"] and r["second_to_second"] > r["second_to_first"]
               for r in flips)
    assert (5, 11) in {(r["layer"], r["head"]) for r in strongest_heads(wide, "it", "animal", top=1)}


def test_head_viewer_widget():
    viewer = HeadViewer([TIRED, WIDE], source="it")
    explorer = viewer.widget()
    assert explorer.kind == "head_viewer" and len(explorer.data["sentences"]) == 2
    assert "layer 5, head 11" in viewer.describe(TIRED, 5, 11)


def test_head_viewer_starts_in_layer_view_and_rejects_unknown_views():
    viewer = HeadViewer([TIRED], source="it")
    explorer = viewer.widget(layer=4, head=0, view="layer")
    assert explorer.controls == {"sentence": 0, "layer": 4, "head": 0, "view": "layer"}
    assert "heads of layer 4" in viewer.describe(TIRED, 4, 0, view="layer")
    with pytest.raises(ValueError, match="view"):
        viewer.widget(view="grid")
