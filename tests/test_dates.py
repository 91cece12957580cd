"""The date translation data of Chapters 1 and 2: real formats, seeded, unambiguous, held out."""
import datetime as dt
from collections import defaultdict

import pytest
from babel.dates import format_date

from attention_course.data import dates


@pytest.fixture(scope="module")
def data():
    return dates.make_date_data(n_train=3000, n_test=500, seed=3)


def test_formats_are_babels_cldr_formats():
    day = dt.date(2024, 3, 1)
    assert dates.format_human(day, "zh", "long") == "2024年3月1日"
    assert dates.format_human(day, "en", "full") == "Friday, March 1, 2024"
    assert dates.format_human(day, "de", "short") == "01.03.24"
    for loc, style in dates.FORMATS:
        for d in (day, dt.date(1950, 1, 1), dt.date(2049, 12, 31)):
            assert dates.format_human(d, loc, style) == format_date(d, style, locale=loc)
    assert {loc for loc, _ in dates.FORMATS} == {"en", "fr", "de", "es", "zh"}
    assert {s for _, s in dates.FORMATS} == {"full", "long", "medium", "short"}


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="locale"):
        dates.format_human(dt.date(2024, 3, 1), "it", "long")
    with pytest.raises(ValueError, match="outside"):
        dates.format_human(dt.date(1949, 12, 31), "en", "long")
    with pytest.raises(ValueError, match="min_dates"):
        dates.make_pairs(10, min_dates=3, max_dates=2)


def test_pairs_are_seeded_and_translate_correctly():
    pairs = dates.make_pairs(200, seed=7)
    assert pairs == dates.make_pairs(200, seed=7)
    assert pairs != dates.make_pairs(200, seed=8)
    for source, target in pairs:
        parts, isos = source.split(dates.SOURCE_SEPARATOR), target.split(dates.TARGET_SEPARATOR)
        assert len(parts) == len(isos) == dates.count_dates(target)
        for iso in isos:
            d = dt.date.fromisoformat(iso)
            assert dates.FIRST_DATE <= d <= dates.LAST_DATE
    counts = [dates.count_dates(t) for _, t in pairs]
    assert min(counts) == 1 and max(counts) == 4  # the default: one to four dates


def test_every_source_date_has_one_answer():
    """No string (e.g. '3/1/24') may mean two different dates: the task must be learnable."""
    meaning = defaultdict(set)
    for source, target in dates.make_pairs(4000, seed=11):
        for part, iso in zip(source.split(dates.SOURCE_SEPARATOR), target.split(dates.TARGET_SEPARATOR)):
            meaning[part].add(iso)
    assert all(len(isos) == 1 for isos in meaning.values())
    # and the excluded Spanish short format really would collide with English short
    day = dt.date(2024, 3, 1)
    assert format_date(dt.date(2024, 1, 3), "short", locale="es") == format_date(day, "short", locale="en")


def test_test_set_is_held_out_and_sizes(data):
    assert len(data.train) == 3000 and len(data.test) == 500
    assert not {s for s, _ in data.train} & {s for s, _ in data.test}
    assert dates.make_date_data(n_train=3000, n_test=500, seed=3).fingerprint() == data.fingerprint()


def test_inputs_span_short_to_long(data):
    lengths = [len(s) for s, _ in data.train]
    assert min(lengths) <= 10 and max(lengths) >= 90
    assert any("年" in s for s, _ in data.train)


def test_vocabularies_round_trip(data):
    sv, tv = data.source_vocab, data.target_vocab
    for source, target in data.train[:50] + data.test[:50]:
        assert sv.encode(source, eos=False).count(sv.UNK) == 0
        assert sv.decode(sv.encode(source)) == source
        assert tv.decode(tv.encode(target, bos=True)) == target
    assert len(tv) == 4 + 12  # specials, digits, '-', ';'
    with pytest.raises(ValueError):
        dates.Vocabulary("aa")
