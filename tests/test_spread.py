"""attention_course.training.spread: the results of benchmarks/training_spread.py that the chapters glue."""
import statistics

import torch

from attention_course.models import gpt
from attention_course.training import gpt_training
from attention_course.training.spread import SPREAD_FILE, training_spread

MODELS = ("encdec", "rnnsearch", "transformer", "gpt")


def test_the_spread_has_every_model_seed_and_thread_count():
    assert SPREAD_FILE.is_file(), "run benchmarks/training_spread.py"
    spread = training_spread()
    for model in MODELS:
        runs = spread["runs"][model]
        assert set(runs) >= {f"seed{s}-threads{t}" for s in (0, 1, 2) for t in (1, 2)}, model
        figure = "val_loss" if model == "gpt" else "exact"
        values = [r[figure] for r in runs.values()]
        summary = spread["summary"][model][figure]
        assert (summary["min"], summary["max"], summary["n"]) == (min(values), max(values), len(values))
        assert abs(summary["mean"] - statistics.fmean(values)) < 1e-9
    for claim in spread["claims"].values():
        assert claim["runs"] >= 6 and claim["holds"] == (not claim["failed"])
    assert {"cpu", "capability", "torch"} <= set(spread["machine"]) and spread["updated"]


def test_train_gpt_threads_keep_the_default_cache_key(tmp_path, monkeypatch):
    """``threads=1`` is the default (same cache entry); another thread count is another entry."""
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    text = torch.randint(0, 5, (400,))

    def train(**threads):
        torch.manual_seed(0)
        model = gpt.GPT(gpt.GPTConfig(vocab_size=5, block_size=8, n_layer=1, num_heads=2, d_model=8))
        return gpt_training.train_gpt(model, text, text, steps=2, batch_size=2, eval_every=2, eval_windows=2,
                                      progress=False, **threads)

    assert not train()["cached"]
    assert train(threads=1)["cached"]
    assert not train(threads=2)["cached"]
