"""Real translation data, offline: human-written dates into ISO 8601 (Chapters 1 and 2).

Each source is a list of one to four calendar dates written the way people write them
in English, French, German, Spanish and Chinese, in the four date formats of the
Unicode CLDR (full, long, medium, short) as the :mod:`babel` library renders them;
each target is the same list in ISO 8601 ``YYYY-MM-DD``. The dates themselves are
drawn by :mod:`faker`. For example::

    source: "Friday, March 1, 2024; 17.06.91; 1999年12月31日"
    target: "2024-03-01;1991-06-17;1999-12-31"

Why lists: one date carries about 8 digits of information, too little to strain a
fixed-length context vector. With one to four dates the information grows with the
input, so the longest inputs carry four times as much as the shortest: the situation
in which Bahdanau et al. (2015, Figure 2) saw the encoder-decoder without attention
fall behind.

Two rules make every source translate to exactly one target:

* dates lie between 1950-01-01 and 2049-12-31, so a two-digit year (``24`` in the
  short formats ``3/1/24`` and ``01.03.24``) means 20yy when it is below 50 and 19yy
  otherwise (the "pivot year" rule many date parsers use);
* Spanish ``short`` (``1/3/24``, day first) is left out, because it collides with
  English ``short`` (``3/1/24``, month first): the same string would have two answers.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "LOCALES", "STYLES", "FORMATS", "FIRST_DATE", "LAST_DATE", "SOURCE_SEPARATOR",
    "TARGET_SEPARATOR", "format_human", "to_iso", "random_dates", "make_pairs",
    "Vocabulary", "DateData", "pairs_fingerprint", "make_date_data", "make_validation", "VALIDATION_SEED_OFFSET", "count_dates",
    "source_alphabet",
]

LOCALES = ("en", "fr", "de", "es", "zh")
STYLES = ("full", "long", "medium", "short")
#: (locale, style) pairs used; Spanish short is ambiguous with English short (see above).
FORMATS = tuple((loc, style) for loc in LOCALES for style in STYLES if (loc, style) != ("es", "short"))
FIRST_DATE = _dt.date(1950, 1, 1)
LAST_DATE = _dt.date(2049, 12, 31)
SOURCE_SEPARATOR = "; "
TARGET_SEPARATOR = ";"


def format_human(date: _dt.date, locale: str, style: str) -> str:
    """``date`` written in one CLDR format, e.g. ``(2024-03-01, "zh", "long")`` → ``2024年3月1日``.

    Same result as ``babel.dates.format_date(date, style, locale=locale)``, with the
    pattern looked up once per (locale, style) instead of on every call.

    Raises:
        ValueError: for a locale or style outside :data:`LOCALES` / :data:`STYLES`, or a
            date outside ``FIRST_DATE .. LAST_DATE`` (two-digit years would be ambiguous).
    """
    if locale not in LOCALES or style not in STYLES:
        raise ValueError(f"format_human: locale must be one of {LOCALES} and style one of "
                         f"{STYLES}; got {locale!r}, {style!r}")
    if not FIRST_DATE <= date <= LAST_DATE:
        raise ValueError(f"format_human: {date} lies outside {FIRST_DATE} .. {LAST_DATE}")
    pattern, babel_locale = _pattern(locale, style)
    return pattern.apply(date, babel_locale)


@functools.lru_cache(maxsize=None)
def _pattern(locale: str, style: str):
    from babel import Locale
    from babel.dates import get_date_format

    babel_locale = Locale.parse(locale)
    return get_date_format(style, locale=babel_locale), babel_locale


def to_iso(date: _dt.date) -> str:
    """ISO 8601 calendar date ``YYYY-MM-DD``."""
    return date.isoformat()


def random_dates(n: int, seed: int) -> list[_dt.date]:
    """``n`` dates, uniform over ``FIRST_DATE .. LAST_DATE``, from a seeded Faker generator.

    Each date is ``FIRST_DATE`` plus a day offset from Faker's ``random_int`` (the
    uniform draw inside Faker's ``date_between``, without its datetime round trip,
    which is 30 times slower).
    """
    from faker import Faker

    fake = Faker()
    fake.seed_instance(seed)
    span = (LAST_DATE - FIRST_DATE).days
    return [FIRST_DATE + _dt.timedelta(days=fake.random_int(0, span)) for _ in range(n)]


def make_pairs(n: int, seed: int = 0, min_dates: int = 1, max_dates: int = 4) -> list[tuple[str, str]]:
    """``n`` (source, target) pairs; each source lists ``min_dates..max_dates`` dates.

    The number of dates is uniform; each date gets its own random locale and style
    from :data:`FORMATS`, so one source mixes languages. Deterministic given ``seed``.

    Raises:
        ValueError: if ``n < 1`` or the date counts are not ``1 <= min_dates <= max_dates``.
    """
    if n < 1 or not 1 <= min_dates <= max_dates:
        raise ValueError(f"make_pairs: need n >= 1 and 1 <= min_dates <= max_dates; "
                         f"got n={n}, min_dates={min_dates}, max_dates={max_dates}")
    rng = np.random.default_rng(seed)
    counts = rng.integers(min_dates, max_dates + 1, size=n)
    dates = random_dates(int(counts.sum()), seed)
    formats = rng.integers(0, len(FORMATS), size=int(counts.sum()))
    pairs, k = [], 0
    for count in counts:
        chunk = range(k, k + int(count))
        source = SOURCE_SEPARATOR.join(format_human(dates[j], *FORMATS[formats[j]]) for j in chunk)
        target = TARGET_SEPARATOR.join(to_iso(dates[j]) for j in chunk)
        pairs.append((source, target))
        k += int(count)
    return pairs


def count_dates(target: str) -> int:
    """Number of dates in a target string (``"2024-03-01;1999-12-31"`` → 2)."""
    return target.count(TARGET_SEPARATOR) + 1


def source_alphabet() -> str:
    """Every character any source can contain, in a fixed order.

    Found by writing every month and weekday in every format, so that the source
    vocabulary does not depend on which dates the training set happens to hold.
    """
    chars = set("0123456789" + SOURCE_SEPARATOR)
    for month in range(1, 13):
        for day in range(1, 8):  # 2024-01-01 is a Monday: days 1-7 cover all weekdays
            for loc, style in FORMATS:
                chars.update(format_human(_dt.date(2024, month, day), loc, style))
    return "".join(sorted(chars))


class Vocabulary:
    """Characters ↔ integer ids, with padding, begin, end and unknown symbols.

    Ids: ``0`` padding, ``1`` begin-of-sequence, ``2`` end-of-sequence, ``3`` unknown,
    then one id per character of ``alphabet``.
    """

    PAD, BOS, EOS, UNK = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")

    def __init__(self, alphabet: str):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("Vocabulary: the alphabet repeats a character")
        self.alphabet = alphabet
        self.tokens = list(self.SPECIALS) + list(alphabet)
        self.index = {ch: i + len(self.SPECIALS) for i, ch in enumerate(alphabet)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, bos: bool = False, eos: bool = True) -> list[int]:
        """Ids of the characters of ``text`` (unknown characters → ``UNK``)."""
        ids = [self.index.get(ch, self.UNK) for ch in text]
        return ([self.BOS] if bos else []) + ids + ([self.EOS] if eos else [])

    def decode(self, ids) -> str:
        """Characters of ``ids`` up to the first ``EOS``; padding and ``BOS`` are skipped."""
        out = []
        for i in (int(i) for i in ids):
            if i == self.EOS:
                break
            if i >= len(self.SPECIALS):
                out.append(self.tokens[i])
            elif i == self.UNK:
                out.append("\N{REPLACEMENT CHARACTER}")
        return "".join(out)

    def symbol(self, i: int) -> str:
        """Printable label of one id (for plot axes)."""
        return {self.EOS: "⟨eos⟩", self.BOS: "⟨bos⟩", self.PAD: "⟨pad⟩"}.get(int(i), self.tokens[int(i)])


def pairs_fingerprint(pairs) -> str:
    """A short hash (16 hex digits of SHA-256) of ``(source, target)`` pairs, in their order: the key under
    which a data set or a split is recognised (:meth:`DateData.fingerprint`, the validation split of
    ``benchmarks/ch7_choices.py``)."""
    h = hashlib.sha256()
    for source, target in pairs:
        h.update(source.encode() + b"\0" + target.encode() + b"\n")
    return h.hexdigest()[:16]


@dataclass
class DateData:
    """A train/test split of date translation pairs and the two character vocabularies.

    Attributes:
        train, test: lists of ``(source, target)`` strings; no test source occurs in train.
        source_vocab, target_vocab: character vocabularies.
        config: the arguments that made the data (for caching trained models).
    """

    train: list
    test: list
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    config: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A short hash of the data's content (changes if babel or faker change output)."""
        return pairs_fingerprint(self.train + self.test)


def make_date_data(n_train: int = 20_000, n_test: int = 2_000, seed: int = 0,
                   max_dates: int = 4) -> DateData:
    """Training and held-out pairs (disjoint sources) with character vocabularies.

    Test pairs are drawn with a different seed; any test source that also occurs in
    the training set is dropped and replaced, so the test set is truly held out.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"make_date_data: need n_train, n_test >= 1; got {n_train}, {n_test}")
    train = make_pairs(n_train, seed=seed, max_dates=max_dates)
    seen = {source for source, _ in train}
    test, extra_seed = [], seed + 1_000_003
    while len(test) < n_test:
        for pair in make_pairs(n_test, seed=extra_seed, max_dates=max_dates):
            if pair[0] not in seen and len(test) < n_test:
                seen.add(pair[0])
                test.append(pair)
        extra_seed += 1
    return DateData(train, test, Vocabulary(source_alphabet()),
                    Vocabulary("0123456789-" + TARGET_SEPARATOR),
                    config=dict(n_train=n_train, n_test=n_test, seed=seed, max_dates=max_dates))


#: Added to the data's seed for the first batch of validation pairs (the test pairs start at
#: ``seed + 1_000_003`` and rarely need more than a few extra seeds, so the draws do not share a seed).
VALIDATION_SEED_OFFSET = 2_000_003


def make_validation(data: DateData, n: int = 1_000, seed: int | None = None,
                    max_rounds: int = 100) -> list[tuple[str, str]]:
    """Validation pairs for ``data``: sources in neither ``data.train`` nor ``data.test``, nor repeated.

    Drawn the way :func:`make_date_data` draws its test pairs: :func:`make_pairs` with ``max_dates``
    of ``data.config`` (one to ``max_dates`` dates, uniform), a seed of its own, any source already
    in the training set, the test set or the validation pairs so far dropped and replaced from the
    next seed. ``data`` is not changed, so :meth:`DateData.fingerprint` and the cache keys of every
    model trained on it stay the same: choices (configurations, schedules, input features) are
    compared on these pairs, and ``data.test`` is only reported.

    Args:
        data: a :class:`DateData` (normally ``make_date_data(**seq2seq.COURSE_DATA)``).
        n: number of pairs (``>= 1``).
        seed: the first seed of the draw; ``None`` means ``data.config["seed"] +
            VALIDATION_SEED_OFFSET`` (the seed ``0`` if ``data.config`` has none).
        max_rounds: seeds to try before giving up (each draws ``n`` pairs).

    Returns:
        A list of ``n`` ``(source, target)`` strings, the same for the same ``data``, ``n`` and ``seed``.

    Raises:
        ValueError: if ``n < 1`` or ``max_rounds < 1``.
        RuntimeError: if ``max_rounds`` draws do not give ``n`` new sources (only for tiny date ranges
            or an ``n`` near the number of possible sources).
    """
    if n < 1 or max_rounds < 1:
        raise ValueError(f"make_validation: need n >= 1 and max_rounds >= 1; got n={n}, max_rounds={max_rounds}")
    config = data.config or {}
    max_dates = config.get("max_dates") or max(count_dates(t) for _, t in data.train + data.test)
    first = (config.get("seed", 0) + VALIDATION_SEED_OFFSET) if seed is None else seed
    seen = {source for source, _ in data.train + data.test}
    pairs = []
    for round_seed in range(first, first + max_rounds):
        for pair in make_pairs(n, seed=round_seed, max_dates=max_dates):
            if pair[0] not in seen and len(pairs) < n:
                seen.add(pair[0])
                pairs.append(pair)
        if len(pairs) == n:
            return pairs
    raise RuntimeError(f"make_validation: only {len(pairs)} of {n} new sources after {max_rounds} draws")
