"""Chapter 7's choices on a validation split: dates.make_validation, benchmarks/ch7_choices.py's JSON and
attention_course.training.spread.choice_effects. Nothing here trains a model."""
import importlib.util
import statistics
from pathlib import Path

import numpy as np
import pytest

from attention_course.data import dates
from attention_course.models import seq2seq
from attention_course.models import date_transformer as dt
from attention_course.maths.numerics import assert_agree
from attention_course.training.spread import CHOICES_FILE, ch7_choices, choice_effects, config_fingerprint

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "ch7_choices.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ch7_choices_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small():
    return dates.make_date_data(n_train=3000, n_test=500, seed=3)


@pytest.fixture(scope="module")
def course():
    data = dates.make_date_data(**seq2seq.COURSE_DATA)
    return data, dates.make_validation(data)


# ---------------------------------------------------------------------------
# The validation split


def test_validation_is_disjoint_deterministic_and_leaves_the_data_alone(small):
    before = small.fingerprint()
    validation = dates.make_validation(small, n=400)
    assert small.fingerprint() == before, "make_validation must not change the data (nor the cache keys)"
    assert validation == dates.make_validation(small, n=400), "same data and n, same pairs"
    assert len(validation) == 400
    sources = [s for s, _ in validation]
    assert len(set(sources)) == len(sources), "a validation source repeats"
    assert not set(sources) & {s for s, _ in small.train}, "a validation source is in the training set"
    assert not set(sources) & {s for s, _ in small.test}, "a validation source is in the test set"
    assert {dates.count_dates(t) for _, t in validation} == {1, 2, 3, 4}, "drawn like the test pairs"
    assert validation != dates.make_validation(small, n=400, seed=5), "the seed chooses the draw"


def test_validation_of_the_course_data_is_disjoint_and_recorded(course):
    data, validation = course
    assert data.fingerprint() == dates.make_date_data(**seq2seq.COURSE_DATA).fingerprint()
    seen = {s for s, _ in data.train + data.test}
    assert len(validation) == 1000 and not {s for s, _ in validation} & seen


def test_validation_rejects_bad_arguments(small, monkeypatch):
    with pytest.raises(ValueError, match="n >= 1"):
        dates.make_validation(small, n=0)
    with pytest.raises(ValueError, match="max_rounds"):
        dates.make_validation(small, n=3, max_rounds=0)
    # a draw that never yields anything new: a clear error, not an endless loop
    monkeypatch.setattr(dates, "make_pairs", lambda n, seed, max_dates: [small.train[0]] * n)
    with pytest.raises(RuntimeError, match="only 0 of 3"):
        dates.make_validation(small, n=3, max_rounds=2)


# ---------------------------------------------------------------------------
# Configuration fingerprints


def test_config_fingerprint_ignores_the_seed_only():
    base = dt.course_transformer_config()
    assert config_fingerprint(base) == config_fingerprint(dt.course_transformer_config(seed=7))
    assert config_fingerprint(base) != config_fingerprint(dt.course_transformer_config(d_ff=256))
    assert config_fingerprint(base) != config_fingerprint(dt.TransformerConfig())
    with pytest.raises(TypeError, match="dataclass instance"):
        config_fingerprint(dt.TransformerConfig)


# ---------------------------------------------------------------------------
# The committed results


def test_the_json_matches_todays_configurations_and_split(bench, course):
    """Fails after a change of COURSE_CHANGES, the defaults, the variants or the data: re-run the benchmark."""
    assert CHOICES_FILE.is_file(), "run benchmarks/ch7_choices.py"
    choices = ch7_choices()
    assert set(choices["variants"]) == set(bench.VARIANTS), "variants missing from (or extra in) the JSON"
    for name, (change, _) in bench.VARIANTS.items():
        recorded = choices["variants"][name]
        assert recorded["change"] == change, name
        assert recorded["fingerprint"] == config_fingerprint(dt.course_transformer_config(**change)), (
            f"{name}: the configuration changed since benchmarks/ch7_choices.py ran; run it again")
    data, validation = course
    assert choices["data"]["fingerprint"] == data.fingerprint()
    assert choices["validation"]["fingerprint"] == bench.pairs_fingerprint(validation)
    assert choices["validation"]["n"] == len(validation)


def test_every_variant_has_three_seeds_and_a_consistent_summary(bench):
    choices = ch7_choices()
    for name in bench.VARIANTS:
        runs = choices["runs"][name]
        assert set(runs) == {"seed0", "seed1", "seed2"}, f"{name}: seeds {sorted(runs)}"
        splits = ("validation", "test") if name in bench.TEST_VARIANTS else ("validation",)
        for split in splits:
            values = [r[split]["exact"] for r in runs.values()]
            for r in runs.values():
                f = r[split]
                assert sum(f["n_by_dates"]) == f["n"] and len(f["exact_by_dates"]) == 4
                assert_agree(f["exact"], 100 * f["correct"] / f["n"], reduction=1, what=f"{name} {split}")
            s = choices["summary"][name][split]
            assert (s["min"], s["max"], s["n"], s["seeds"]) == (min(values), max(values), 3, [0, 1, 2])
            assert_agree(s["mean"], statistics.fmean(values), reduction=3, what=f"{name} {split} mean")
        for r in runs.values():
            steps = choices["variants"][name]["budget"]["steps"]
            assert len(r["curve"]["loss"]) == len(r["curve"]["nll"]) == -(-steps // r["curve"]["every"])
            assert r["threads"] == 1 and r["seconds"] > 0


def test_choice_effects_of_the_json_name_every_change():
    effects = choice_effects()
    assert set(effects) == set(ch7_choices()["variants"]) - {"course"}
    for e in effects.values():
        assert e["verdict"] in ("better", "worse", "equal") and e["seeds"] == [0, 1, 2]


# ---------------------------------------------------------------------------
# The choice function on a hand-made table


def _table(**variants):
    """``{name: [correct per seed]}`` out of 1000 → the JSON's ``runs`` layout."""
    return {"runs": {name: {f"seed{s}": {"seed": s, "validation": {"correct": c, "n": 1000}}
                            for s, c in enumerate(counts)} for name, counts in variants.items()}}


def test_choice_effects_on_a_hand_made_table():
    table = _table(course=[990, 992, 994], worse=[700, 710, 720], close=[989, 995, 996],
                   equal=[994, 990, 992], better_apart=[996, 997, 998])
    effects = choice_effects(table)
    assert set(effects) == {"worse", "close", "equal", "better_apart"}
    w = effects["worse"]
    assert (w["verdict"], w["wins"], w["losses"], w["overlap"]) == ("worse", 0, 3, False)
    assert_agree(np.array([w["points"], w["mean"], w["baseline_mean"]]), np.array([-28.2, 71.0, 99.2]), reduction=3)
    c = effects["close"]  # mean 99.333 vs 99.2: better, but within the seed-to-seed spread
    assert (c["verdict"], c["wins"], c["losses"], c["overlap"]) == ("better", 2, 1, True)
    assert_agree(c["points"], 0.4 / 3, reduction=3)
    e = effects["equal"]  # same sum, other seeds ahead
    assert (e["verdict"], e["points"], e["wins"], e["losses"], e["overlap"]) == ("equal", 0.0, 1, 2, True)
    b = effects["better_apart"]
    assert (b["verdict"], b["wins"], b["overlap"]) == ("better", 3, False)
    # only the seeds both have are compared
    partial = choice_effects(_table(course=[990, 992, 994], two=[991, 993]))["two"]
    assert partial["seeds"] == [0, 1] and partial["verdict"] == "better"


def test_choice_effects_rejects_what_it_cannot_compare():
    with pytest.raises(KeyError, match="baseline"):
        choice_effects(_table(other=[1, 2, 3]))
    table = _table(course=[990, 992, 994], other=[1, 2, 3])
    table["runs"]["other"]["seed0"]["validation"]["n"] = 500
    with pytest.raises(ValueError, match="other sizes"):
        choice_effects(table)
    table = _table(course=[990], other=[1, 2])
    del table["runs"]["other"]["seed0"]
    with pytest.raises(ValueError, match="shares no seed"):
        choice_effects(table)
    with pytest.raises(KeyError, match="test"):
        choice_effects(_table(course=[990]), split="test")


def test_benchmark_helpers(bench):
    assert_agree(np.array(bench.curve(list(range(120)), every=50)), np.array([24.5, 74.5, 109.5]), reduction=50)
    budget = bench.budget(dt.course_transformer_config(batch_size=32), 20_000)
    assert (budget["steps"], budget["batch_size"], budget["examples"]) == (2400, 32, 76_800)
    assert_agree(budget["epochs"], 3.84, what="epochs")
