"""attention_course.training.loop: the one cached training loop, and the cache keys it must keep.

Trained models are cached under names computed from what they depend on. Retraining them all takes
hours, so the names of every existing configuration must never change: these tests pin them, both
as literal keys (with the torch version fixed, so they hold on any machine) and against a frozen
copy of the two key formulas the trainers had before they shared :func:`loop.cache_key`
(commit e9335d0: ``seq2seq_training.training_cache_key`` and ``gpt_training._cache_key``).
"""
import dataclasses
import hashlib
import json

import pytest
import torch

from attention_course.data import dates
from attention_course.env import torch_threads
from attention_course.models import date_transformer as dt
from attention_course.models import seq2seq
from attention_course.models.gpt import GPT, GPTConfig
from attention_course.training import (
    date_training,
    extrapolation,
    gpt_training,
    loop,
    seq2seq_training,
)

# ---------------------------------------------------------------------------
# The formulas of e9335d0, frozen


def frozen_training_cache_key(config, data, version: int) -> str:
    text = json.dumps({"model": dataclasses.asdict(config), "data": data.config, "fingerprint": data.fingerprint(),
                       "torch": torch.__version__.split("+")[0], "threads": torch.get_num_threads(),
                       "version": version}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def frozen_gpt_cache_key(model, train_data, val_data, settings: dict) -> str:
    digest = hashlib.sha256()
    for tensor in [*model.state_dict().values(), train_data, val_data]:
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    text = json.dumps({"config": dataclasses.asdict(model.config), "tensors": digest.hexdigest(), **settings,
                       "torch": torch.__version__.split("+")[0], "threads": torch.get_num_threads(), "version": 1},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def course_data():
    return dates.make_date_data(**seq2seq.COURSE_DATA)


@pytest.fixture(scope="module")
def small_data():
    return dates.make_date_data(n_train=40, n_test=8, seed=3, max_dates=2)


@pytest.fixture()
def torch_2_13(monkeypatch):
    """Keys as torch 2.13.0 names them, whatever torch runs the test."""
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")


def fixed_gpt(cls=GPT, config=None):
    """A GPT whose weights do not depend on torch's random generator."""
    model = cls(config or GPTConfig(vocab_size=11, block_size=8, n_layer=1, num_heads=2, d_model=8))
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=p.dtype).reshape(p.shape).mul(0.001 * (i + 1)).sin())
    return model


TEXT = torch.arange(500) * 7 % 11
SETTINGS = dict(steps=6, batch_size=4, lr=1e-3, min_lr=1e-4, warmup=2, eval_every=3, eval_windows=2, seed=0)
ROPE = extrapolation.PositionConfig(vocab_size=11, positions="rope", block_size=8, n_layer=1, num_heads=2, d_model=8,
                                    max_positions=32)
ABLATIONS = {"nowarm": dict(use_warmup=False), "nols": dict(label_smoothing=0.0),
             "nofeat": dict(segments=False, segment_positions=False)}

# ---------------------------------------------------------------------------
# Today's names, pinned (computed with the code of e9335d0, torch 2.13.0)

#: threads -> the chapters' cached models (Chapters 1-2, 7 and its three ablations) and two small ones
DATE_KEYS = {
    1: {"rnnsearch": "rnnsearch-b5fedeaa70ff8ac226e1", "encdec": "encdec-575404fde7f283214a1e",
        "small-rnn": "rnnsearch-3608a4f586ee5fd684a2", "transformer": "transformer-3ee1df43c1b3767a3698",
        "nowarm": "transformer-46f3acec94db72da730f", "nols": "transformer-a1e946d2b2fdccdf877d",
        "nofeat": "transformer-b7cfd46af478c36b804b", "small-transformer": "transformer-5d132d9474387e8e39e7"},
    2: {"rnnsearch": "rnnsearch-e1cc17d4ae1599c9a71a", "encdec": "encdec-035101ee7c0b46fb8609",
        "small-rnn": "rnnsearch-1e37be22a9a9177df49c", "transformer": "transformer-070d4197dee2839682bd",
        "nowarm": "transformer-869e1e53f66df5fe7220", "nols": "transformer-9c53f01f80c089ab1e92",
        "nofeat": "transformer-8bd1429656c24ccdc0f0", "small-transformer": "transformer-13cc263773e6c43fcbc5"},
}
GPT_KEYS = {1: {"gpt": "gpt-f9c1894c9609e8a39514", "rope": "gpt-ad00c46c4b36e3902cbf"},
            2: {"gpt": "gpt-7a9114d2ccec2136b1ce", "rope": "gpt-76e2dbf5bfa98d4f4955"}}


def date_configs():
    configs = {"rnnsearch": seq2seq.course_config(True), "encdec": seq2seq.course_config(False),
               "transformer": dt.course_transformer_config()}
    configs |= {name: dt.course_transformer_config(stop_after=600, checkpoints=(), **change)
                for name, change in ABLATIONS.items()}
    return configs


def date_file(config, data):
    if isinstance(config, seq2seq.ModelConfig):
        return seq2seq_training._cache_file(config, data)
    return date_training._cache_file(config, data)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_cached_models_keep_their_names(threads, course_data, small_data, torch_2_13):
    with torch_threads(threads):
        names = {name: date_file(config, course_data) for name, config in date_configs().items()}
        names["small-rnn"] = date_file(seq2seq.ModelConfig(embed=8, steps=5, checkpoints=(0, 2)), small_data)
        names["small-transformer"] = date_file(dt.TransformerConfig(d_model=16, steps=4, warmup=2), small_data)
        names["gpt"] = gpt_training._cache_file(fixed_gpt(), TEXT, TEXT[:100], SETTINGS)
        names["rope"] = gpt_training._cache_file(fixed_gpt(extrapolation.PositionGPT, ROPE), TEXT, TEXT[:100],
                                                 {**SETTINGS, "lr": 3e-3, "seed": 2})
    assert {name: path.stem for name, path in names.items()} == DATE_KEYS[threads] | GPT_KEYS[threads]
    assert {path.parent.name for path in names.values()} == {"seq2seq", "date_transformer", "gpt"}


@pytest.mark.skipif(torch.__version__.split("+")[0] != "2.13.0", reason="the chapters' GPTs start from torch's "
                    "random draws, pinned under torch 2.13.0")
def test_the_chapters_gpts_keep_their_names():
    from attention_course.data import fortunes

    train_text, val_text = fortunes.split_quotes(fortunes.load_fortunes())
    tok = fortunes.CharTokenizer(train_text)
    train_ids, val_ids = tok.encode(train_text), tok.encode(val_text)
    recipe = dict(steps=1200, batch_size=16, lr=3e-3, min_lr=1e-4, warmup=100, eval_windows=200, seed=0)
    with torch_threads(1):
        torch.manual_seed(0)  # Chapter 6
        model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=4, num_heads=4, d_model=128))
        names = {"ch6": gpt_training._cache_file(model, train_ids, val_ids, {**recipe, "eval_every": 150}).stem}
        for positions in extrapolation.POSITION_KINDS:  # Chapter 8, seed 0
            torch.manual_seed(0)
            model = extrapolation.PositionGPT(extrapolation.PositionConfig(
                vocab_size=tok.vocab_size, positions=positions, **extrapolation.COURSE_SIZES))
            names[positions] = gpt_training._cache_file(model, train_ids, val_ids, {**recipe, "eval_every": 300}).stem
    assert names == {"ch6": "gpt-de075631f27d67e81ba0", "learned": "gpt-2cc7ec62fbb8fdc1cece",
                     "sinusoidal": "gpt-d9a8c76afdacbae6bda6", "rope": "gpt-ae2d31b9012ef58de151"}


@pytest.mark.parametrize("threads", [1, 2])
def test_keys_follow_the_frozen_formulas(threads, small_data):
    """On this machine's torch, for configurations beyond the pinned ones."""
    configs = [seq2seq.ModelConfig(attention=False, lr=1e-2, seed=4), seq2seq.ModelConfig(checkpoints=()),
               dt.TransformerConfig(decay="linear", lr_factor=0.5, stop_after=3, checkpoints=(1, 2)),
               dt.course_transformer_config(seed=2, label_smoothing=0.05)]
    with torch_threads(threads):
        for config in configs:
            version = 3 if isinstance(config, seq2seq.ModelConfig) else 1
            assert date_file(config, small_data).stem.endswith(frozen_training_cache_key(config, small_data, version))
        torch.manual_seed(5)
        for model in (GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, num_heads=2, d_model=16)),
                      extrapolation.PositionGPT(dataclasses.replace(ROPE, positions="sinusoidal"))):
            for settings in (SETTINGS, {**SETTINGS, "min_lr": 0.0, "eval_windows": 7}):
                assert (gpt_training._cache_file(model, TEXT, TEXT[:50], settings).stem
                        == "gpt-" + frozen_gpt_cache_key(model, TEXT, TEXT[:50], settings))


def test_cache_key_refuses_the_fields_it_adds():
    with pytest.raises(ValueError, match="threads"):
        loop.cache_key({"model": {}, "threads": 4}, version=1)


# ---------------------------------------------------------------------------
# The cache file and the loop


def test_write_cache_replaces_the_file_whole(tmp_path):
    path = tmp_path / "deep" / "model.pt"
    assert loop.read_cache(path) is None
    loop.write_cache(path, {"state": {"w": torch.ones(2)}, "losses": [1.0]})
    loop.write_cache(path, {"state": {"w": torch.zeros(2)}, "losses": [0.5]})
    stored = loop.read_cache(path)
    assert torch.equal(stored["state"]["w"], torch.zeros(2)) and stored["losses"] == [0.5]
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left


def tiny_recipe(model, learning_rate=None, schedule=None):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5])

    def loss(model, batch):
        objective = ((model(x[batch]).squeeze(-1) - y[batch]) ** 2).mean()
        return objective, objective.detach() * 2

    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = schedule(optimiser) if schedule else None
    return loop.Recipe(lambda step: torch.randint(32, (8,), generator=generator), loss, optimiser,
                       learning_rate=learning_rate, schedule=schedule)


def test_run_steps_records_each_step_and_the_checkpoints_asked_for():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    result = loop.run_steps(model, "config", tiny_recipe(model, learning_rate=lambda step: 0.1 / step),
                            range(1, 7), checkpoints=(0, 2, 6, 9), progress=False)
    assert len(result.losses) == len(result.nll) == 6 and result.nll == pytest.approx([2 * v for v in result.losses])
    assert result.lrs == pytest.approx([0.1 / s for s in range(1, 7)])
    assert list(result.checkpoints) == [0, 2, 6] and not model.training and not result.cached
    assert all(torch.equal(result.at_checkpoint(0).state_dict()[k], v) for k, v in start.items())
    assert all(torch.equal(result.at_checkpoint(6).state_dict()[k], v) for k, v in model.state_dict().items())
    with pytest.raises(KeyError, match="no checkpoint at step 3"):
        result.at_checkpoint(3)


def test_run_steps_is_repeatable_and_cached_result_stores_what_it_is_told(tmp_path):
    def train():
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        recipe = tiny_recipe(model, schedule=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda k: 1 - k / 5))
        return loop.run_steps(model, {"n": 5}, recipe, range(5), checkpoints=(5,), progress=False)

    first, again = train(), train()
    assert first.losses == again.losses and first.lrs == []
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in first.model.state_dict().items())

    @dataclasses.dataclass
    class Config:
        n: int = 5

    path = tmp_path / "m.pt"
    made = loop.cached_result(path, True, torch.nn.Linear(3, 1), Config(), train)
    stored = loop.read_cache(path)
    assert set(stored) == {"state", "losses", "checkpoints", "seconds", "config"} and stored["config"] == {"n": 5}
    loaded = loop.cached_result(path, True, torch.nn.Linear(3, 1), Config(), lambda: pytest.fail("trained again"))
    assert loaded.cached and not made.cached and loaded.losses == made.losses and list(loaded.checkpoints) == [5]
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in made.model.state_dict().items())
