"""The text the small GPT of Chapter 6 learns from: Debian's ``fortunes``, split and tokenised by character.

Debian's ``fortunes`` package (``/usr/share/games/fortunes``, BSD fortune(6) quotations: English
prose, poems, jokes, ~2.4 MB) installs offline both here and in Colab with ``apt-get install fortunes``.
"""
from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["FORTUNE_DIR", "FORTUNE_FILES", "load_fortunes", "split_quotes", "CharTokenizer"]

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Every text file of Debian's `fortunes` package except `ascii-art` (pictures, not language).
FORTUNE_FILES = (
    "art", "computers", "cookie", "debian", "definitions", "disclaimer", "drugs", "education",
    "ethnic", "food", "fortunes", "goedel", "humorists", "kids", "knghtbrd", "law", "linux",
    "linuxcookie", "literature", "love", "magic", "medicine", "men-women", "miscellaneous", "news",
    "paradoxum", "people", "perl", "pets", "platitudes", "politics", "pratchett", "riddles",
    "science", "songs-poems", "sports", "startrek", "tao", "translate-me", "wisdom", "work", "zippy",
)


def load_fortunes(directory: str | Path | None = None) -> list[str]:
    """The quotations of Debian's ``fortunes`` package, one string per quotation.

    Files hold quotations separated by lines containing only ``%``.

    Args:
        directory: where the files are (default ``/usr/share/games/fortunes``).

    Returns:
        A list of quotations (stripped, non-empty), in file order.

    Raises:
        FileNotFoundError: if none of the files is there (install them with
            ``apt-get install fortunes``; the chapter's Colab cell does this).
    """
    directory = Path(directory or FORTUNE_DIR)
    quotes = []
    for name in FORTUNE_FILES:
        path = directory / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        quotes += [q.strip("\n") for q in text.split("\n%\n") if q.strip()]
    if not quotes:
        raise FileNotFoundError(f"no fortune files in {directory}: run `apt-get install fortunes`")
    return quotes


def split_quotes(quotes: list[str], every: int = 10) -> tuple[str, str]:
    """Deterministic train/validation split: every ``every``-th quotation goes to validation.

    Quotations are joined with a blank line between them. Taking every tenth quotation (rather
    than the last tenth of the text) gives both parts the same mix of topics.

    Returns:
        ``(train_text, val_text)``.
    """
    val = [q for i, q in enumerate(quotes) if i % every == every - 1]
    train = [q for i, q in enumerate(quotes) if i % every != every - 1]
    return "\n\n".join(train) + "\n\n", "\n\n".join(val) + "\n\n"


class CharTokenizer:
    """Characters as tokens: the vocabulary is the sorted set of characters of a text.

    Characters missing from the vocabulary are encoded as ``unknown`` (default: a space).
    """

    def __init__(self, text: str, unknown: str = " "):
        self.chars = sorted(set(text) | {unknown})
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.unknown = self.index[unknown]

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """``str`` -> int64 tensor ``(len(text),)``."""
        return torch.tensor([self.index.get(c, self.unknown) for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """Token ids (any iterable of ints) -> ``str``."""
        return "".join(self.chars[int(i)] for i in ids)
