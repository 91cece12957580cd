"""The class report, ``report.html``: per chapter, how the class did and which mistakes it made, in pictures.

Written by the grader next to ``gradebook.csv``. For every chapter: a histogram of the students'
total scores, a bar chart of each exercise's pass rate, the most frequent named mistakes (how many
students made each, on which exercises, one example message with no student's name or file in it)
and the submissions' statuses counted. Then what was not recognised, and the warnings (students
missing from the roster, several files for one chapter...). One file that renders offline: the
plots are PNGs inside the page (``data:`` URLs, drawn with matplotlib), each with alt text that says
its numbers in words, and a table of the same numbers under it.

A *mistake* is the template of the check's message in the catalogue
(:mod:`attention_course.grading.messages`), not its formatted text: "your weights have shape (2, 3)"
and "... (4, 5)" are one mistake. :func:`mistake_key` finds the template a message was made from,
in English or in a translation. A hidden test's message is counted too (the instructor's
explanation the checker logs; the student sees only "hidden tests found a mistake"). Each student
counts once per chapter, with the submission that counts for the LMS exports
(:func:`attention_course.grading.exports.one_per_student`). The report is in English.
"""
from __future__ import annotations

import functools
import html
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from attention_course.grading.exports import one_per_student
from attention_course.grading.gradebook import SEVERITY, Row
from attention_course.grading.messages import extract, load

TOP_MISTAKES = 10
_MIN_LETTERS = 6  # a template with fewer literal letters ("{where}: {error}") names no mistake
_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[\w.-]+[/\\])+[\w.-]*")
_PREFIX = re.compile(r"^(public|hidden) tests: ")


# ------------------------------------------------------------------------------ mistakes
def _pattern(template: str) -> tuple[re.Pattern, int, str]:
    """A regex matching what ``template`` formats to (placeholders: anything), its literal letters and
    its longest literal piece (a quick test before the regex)."""
    parts, letters, pieces = [], 0, [""]
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        pieces.append(literal)
        letters += len(re.findall(r"[A-Za-z\u4e00-\u9fff]", literal))
        if name is not None:
            parts.append(".*?")
    return re.compile("".join(parts), re.S), letters, max(pieces, key=len)


@functools.lru_cache(maxsize=1)
def _templates() -> list[tuple[re.Pattern, str, str]]:
    """``(pattern, longest literal piece, English msgid)`` of every message and translation, most specific first."""
    found = []
    translations = load("zh_CN")
    for msgid in extract():
        for template in {msgid, translations.get(msgid, msgid)}:
            try:
                pattern, letters, piece = _pattern(template)
            except ValueError:  # a template that is not a valid format string: never formatted, never matched
                continue
            if letters >= _MIN_LETTERS:
                found.append((letters, pattern, piece, msgid))
    found.sort(key=lambda t: -t[0])
    return [(pattern, piece, msgid) for _, pattern, piece, msgid in found]


@functools.lru_cache(maxsize=4096)
def mistake_key(message: str) -> str:
    """The catalogue template (English msgid) ``message`` was formatted from, else the message itself.

    The whole message is matched first, then a template found inside it (a check may add its own
    words around a catalogue message); among several, the one with the most literal text wins.
    """
    text = message.strip()
    templates = _templates()
    candidates = [(pattern, msgid) for pattern, piece, msgid in templates if piece in text]
    for pattern, msgid in candidates:
        if pattern.fullmatch(text):
            return msgid
    for pattern, msgid in candidates:
        if pattern.search(text):
            return msgid
    return re.sub(r"\d+", "N", text)[:300]


def mistake_text(test: dict) -> str | None:
    """The explanation of one failed test entry (the checker's, see ``checker.run_test``); None if it passed.

    For public and hidden tests, the instructor's explanation without its ``public tests:`` /
    ``hidden tests:`` prefix (for a hidden test the student's message is generic); otherwise (a
    borrowed function) the student's message.
    """
    if test.get("outcome") == "passed":
        return None
    instructor = test.get("instructor") or ""
    if _PREFIX.match(instructor):
        return _PREFIX.sub("", instructor, count=1)
    return test.get("message") or instructor or None


@functools.lru_cache(maxsize=8)
def _names_pattern(names: tuple[str, ...]) -> re.Pattern | None:
    """One regex for all ``names`` as whole words ("_" separates words), longest first."""
    kept = sorted((n for n in names if len(n) >= 2), key=len, reverse=True)
    if not kept:
        return None
    return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, kept)) + r")(?![A-Za-z0-9])", re.I)


def anonymise(text: str, names: set[str]) -> str:
    """``text`` without any of ``names`` (student ids, files, roster names and e-mails) and without file paths."""
    text = _PATH.sub("[path]", text)
    pattern = _names_pattern(tuple(sorted(names)))
    return pattern.sub("[student]", text) if pattern else text


# ------------------------------------------------------------------------------ counting
@dataclass
class Mistake:
    """One named mistake in one chapter: its template, the students who made it, where, one example."""

    key: str
    students: set = field(default_factory=set)
    exercises: Counter = field(default_factory=Counter)  # grade_id -> students who made it there
    hidden: set = field(default_factory=set)  # students in whom only hidden tests found it
    example: str = ""


@dataclass
class ChapterSummary:
    """What the report shows about one chapter (every count is of students, one submission each)."""

    chapter: str
    max: float
    totals: list[float]
    exercises: list[tuple[str, int, int]]  # (grade_id, students who passed, students graded)
    mistakes: list[Mistake]
    statuses: Counter


def summarise(rows: list[Row], assignments: dict, names: set[str] = frozenset()) -> list[ChapterSummary]:
    """One :class:`ChapterSummary` per chapter with a counted submission (sorted by chapter).

    Args:
        rows: the gradebook rows.
        assignments: chapter -> :class:`~attention_course.grading.course.Assignment`.
        names: more words to keep out of the example messages (roster names and e-mails); the rows'
            student ids and file names are always kept out.
    """
    chosen, _ = one_per_student(rows, assignments)
    hide = set(names) | {r.student for r in rows} | {p for r in rows for p in (r.file, Path(r.file).name, Path(r.file).stem)}
    summaries = []
    for chapter in sorted({c for _, c in chosen}):
        counted = [r for (_, c), r in sorted(chosen.items()) if c == chapter]
        tested = [r for r in counted if r.tests]
        exercises = [(t.grade_id, sum(any(x["grade_id"] == t.grade_id and x["outcome"] == "passed" for x in r.tests)
                                      for r in tested), len(tested)) for t in assignments[chapter].tests]
        mistakes: dict[str, Mistake] = {}
        for r in tested:
            for test in r.tests:
                text = mistake_text(test)
                if text is None:
                    continue
                key = mistake_key(text)
                m = mistakes.setdefault(key, Mistake(key))
                m.exercises[test["grade_id"]] += 1  # a student fails an exercise once
                if test.get("outcome") == "failed_hidden":
                    m.hidden.add(r.student)
                m.students.add(r.student)
                m.example = m.example or anonymise(text, hide)[:400]
        ranked = sorted(mistakes.values(), key=lambda m: (-len(m.students), m.key))
        summaries.append(ChapterSummary(chapter, assignments[chapter].max_points, [r.total for r in counted], exercises,
                                        ranked, Counter(r.status for r in counted)))
    return summaries


# ------------------------------------------------------------------------------ drawing
def _bins(totals: list[float], maximum: float) -> list[tuple[float, float, int]]:
    """``(low, high, count)`` score bins: one per point up to 20 points, else 20 equal bins; the last bin
    includes full marks."""
    top = max([maximum, *totals, 1.0])
    width = 1.0 if top <= 20 else top / 20
    count = int(round(top / width))
    edges = [i * width for i in range(count + 1)]
    bins = []
    for i in range(count):
        low, high = edges[i], edges[i + 1]
        last = i == count - 1
        bins.append((low, high, sum(1 for t in totals if low <= t < high or (last and t == high))))
    return bins


def _range(low: float, high: float, last: bool) -> str:
    if high - low == 1 and float(low).is_integer():
        return f"{low:g}" + (f"-{high:g}" if last else "")
    return f"{low:.3g}-{high:.3g}"


def histogram_html(s: ChapterSummary) -> str:
    """The score histogram of one chapter: an ``<img>`` with alt text, and the same numbers as a table."""
    from matplotlib.figure import Figure

    from attention_course.views.plotting import COLORS, figure_html

    bins = _bins(s.totals, s.max)
    labels = [_range(lo, hi, i == len(bins) - 1) for i, (lo, hi, _) in enumerate(bins)]
    fig = Figure(figsize=(6.4, 2.8))
    ax = fig.subplots()
    ax.bar([lo for lo, _, _ in bins], [n for _, _, n in bins], width=[hi - lo for lo, hi, _ in bins], align="edge",
           color=COLORS["main"], edgecolor="white")
    ax.set(xlabel=f"total score (out of {s.max:g})", ylabel="students", title=f"{s.chapter}: scores of "
           f"{len(s.totals)} students")
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    median = sorted(s.totals)[len(s.totals) // 2] if s.totals else 0
    words = "; ".join(f"{label} points: {n}" for label, (_, _, n) in zip(labels, bins) if n)
    alt = (f"Histogram of the total scores of the {len(s.totals)} students in {s.chapter}, out of {s.max:g} points. "
           f"Students per score: {words or 'none'}. Full marks: {sum(t == s.max for t in s.totals)}; "
           f"median score {median:g}.")
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{n}</td></tr>" for label, (_, _, n) in zip(labels, bins))
    return (figure_html(fig, alt) + f"<details><summary>Scores as a table</summary><table><tr><th>score</th>"
            f"<th>students</th></tr>{rows}</table></details>")


def pass_rates_html(s: ChapterSummary) -> str:
    """The pass rate of each exercise of one chapter as horizontal bars, with alt text and a table."""
    from matplotlib.figure import Figure

    from attention_course.views.plotting import COLORS, figure_html

    names = [g for g, _, _ in s.exercises]
    rates = [100.0 * p / n if n else 0.0 for _, p, n in s.exercises]
    fig = Figure(figsize=(6.4, 0.5 + 0.38 * max(1, len(names))))
    ax = fig.subplots()
    ax.barh(names[::-1], rates[::-1], color=COLORS["main"])
    for y, (rate, (_, p, n)) in enumerate(zip(rates[::-1], s.exercises[::-1])):
        ax.text(min(rate, 100) + 1, y, f"{p}/{n}", va="center", fontsize=8)
    ax.set(xlim=(0, 112), xlabel="students who passed (%)", title=f"{s.chapter}: pass rate per exercise")
    fig.tight_layout()
    alt = (f"Bar chart of the pass rate of each exercise in {s.chapter}: "
           + "; ".join(f"{g} passed by {p} of {n} students ({rate:.0f} %)" for (g, p, n), rate in zip(s.exercises, rates))
           + ".")
    rows = "".join(f"<tr><td><code>{html.escape(g)}</code></td><td>{p}</td><td>{n}</td><td>{rate:.0f} %</td></tr>"
                   for (g, p, n), rate in zip(s.exercises, rates))
    return (figure_html(fig, alt) + "<details><summary>Pass rates as a table</summary><table><tr><th>exercise</th>"
            f"<th>passed</th><th>graded</th><th>rate</th></tr>{rows}</table></details>")


# ------------------------------------------------------------------------------ the page
def _mistakes_html(s: ChapterSummary) -> str:
    if not s.mistakes:
        return "<p>No check failed.</p>"
    graded = max((n for _, _, n in s.exercises), default=0) or 1
    rows = []
    for m in s.mistakes[:TOP_MISTAKES]:
        where = ", ".join(f"<code>{html.escape(g)}</code>" for g, _ in m.exercises.most_common())
        hidden = f" ({len(m.hidden)} found by hidden tests)" if m.hidden else ""
        example = "(the message itself)" if m.example == m.key else html.escape(m.example)
        rows.append(f"<tr><td>{html.escape(m.key)}</td><td>{len(m.students)} ({100 * len(m.students) / graded:.0f} %)"
                    f"{hidden}</td><td>{where}</td><td>{example}</td></tr>")
    more = len(s.mistakes) - TOP_MISTAKES
    return ("<table class='mistakes'><caption>The most frequent mistakes (students who made each)</caption>"
            "<tr><th>mistake (the check's message)</th><th>students</th><th>exercises</th><th>one example</th></tr>"
            + "".join(rows) + "</table>" + (f"<p>and {more} other mistakes.</p>" if more > 0 else ""))


def _statuses_html(statuses: Counter, caption: str) -> str:
    rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{statuses[k]}</td></tr>"
                   for k in sorted(statuses, key=lambda k: (SEVERITY.index(k) if k in SEVERITY else -1, k)))
    return f"<table><caption>{html.escape(caption)}</caption><tr><th>status</th><th>count</th></tr>{rows}</table>"


def chapter_html(s: ChapterSummary) -> str:
    """One chapter's section of the report."""
    return (f"<section><h2 id='{html.escape(s.chapter)}'>{html.escape(s.chapter)}</h2>"
            f"<p>{len(s.totals)} students, out of {s.max:g} points.</p>"
            f"<h3>Scores</h3>{histogram_html(s)}<h3>Exercises</h3>{pass_rates_html(s)}"
            f"<h3>Mistakes</h3>{_mistakes_html(s)}"
            f"<h3>Statuses</h3>{_statuses_html(s.statuses, 'Statuses of the submissions that count')}</section>")


STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.45;padding:0 1em}"
         "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;"
         "vertical-align:top}caption{text-align:left;font-weight:bold;padding:.3em 0}img{max-width:100%}"
         ".warnings li{color:#8a4b00}")


def report_html(rows: list[Row], assignments: dict, warnings: list[str] = (), names: set[str] = frozenset()) -> str:
    """The whole report page (see the module's docstring) as an HTML document.

    Args:
        rows: the gradebook rows; assignments: chapter -> Assignment.
        warnings: sentences to show at the top (the LMS exports', the roster's).
        names: roster names and e-mails to keep out of the example messages.
    """
    summaries = summarise(rows, assignments, names)
    others = Counter(r.status for r in rows if not (r.chapter in assignments and r.max))
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Class report</title>",
             f"<style>{STYLE}</style></head><body><h1>Class report</h1>",
             f"<p>{len(rows)} files from {len({r.student for r in rows})} students; chapters: "
             + (", ".join(f"<a href='#{html.escape(s.chapter)}'>{html.escape(s.chapter)}</a>" for s in summaries)
                or "none") + ". Each student counts once per chapter, with their best file.</p>"]
    if warnings:
        parts.append("<h2>Warnings</h2><ul class='warnings'>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
                     + "</ul>")
    parts += [chapter_html(s) for s in summaries]
    if others:
        parts.append("<h2>Files not graded as a chapter</h2>" + _statuses_html(others, "Their statuses"))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(rows: list[Row], assignments: dict, out: Path, warnings: list[str] = (),
                 names: set[str] = frozenset()) -> Path:
    """Write :func:`report_html` to ``out/report.html`` (replacing it); return its path.

    Raises:
        OSError: if the file cannot be written.
    """
    import matplotlib

    from attention_course.views.plotting import use_course_style

    with matplotlib.rc_context():  # the course's style for these figures only
        use_course_style()
        page = report_html(rows, assignments, warnings, names)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
