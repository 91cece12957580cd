"""The grader's class report, report.html, opened in Chromium with no network but localhost.

The test grades a small class of Ch. 3 notebooks (grading_fixtures.write_small_class: one solved,
two with named mistakes; and one that loops past the time limit) in a temporary folder, serves the
output folder on localhost and opens the report as an offline instructor would: it must load
nothing from elsewhere, log no console error, show every plot (decoded images, each with alt text
that gives its numbers) with its table, and pass axe-core's WCAG 2 A/AA rules. It needs no book build.
"""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from conftest import ROOT, open_offline_page, serve
from test_rendered_book import violations

sys.path.insert(0, str(ROOT / "tests"))
from grading_fixtures import course_copy, submission, write, write_small_class  # noqa: E402

pytestmark = pytest.mark.slow  # it grades notebooks first


# The report's tests share one grading run: its id, a page path, makes conftest's scheduler keep them on
# one worker under ``-n 2 --dist loadscope`` (as the tests of one book page).
@pytest.fixture(scope="module", params=["class_report/report.html"])
def report(request, tmp_path_factory, browser):
    tmp = tmp_path_factory.mktemp("class_report")
    course = course_copy(tmp)
    subs = tmp / "subs"
    write_small_class(subs)
    write(subs, "dee_general_form.ipynb", submission(extra=[(3, "while True:\n    pass")]))
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "attention_course.grading", str(subs), "--out", str(out), "--course",
                           str(course), "--jobs", "2", "--cell-timeout", "4", "--total-timeout", "90"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "gradebook.csv", encoding="utf-8") as handle:
        book = list(csv.DictReader(handle))
    server, url = serve(out)
    context, page = open_offline_page(browser)
    page.goto(f"{url}/report.html", wait_until="load")
    yield page, book
    context.close()
    server.shutdown()


def test_report_loads_offline_without_console_errors(report):
    page, _ = report
    assert page.title() == "Class report"
    assert not page.blocked, f"the report fetched from the network: {page.blocked}"
    assert not page.console_errors, page.console_errors


def test_every_plot_is_shown_with_alt_text_that_gives_its_numbers(report):
    page, book = report
    images = page.evaluate("() => [...document.images].map(i => ({alt: i.alt, width: i.naturalWidth, "
                           "ok: i.complete, src: i.src.slice(0, 22)}))")
    assert len(images) == 2, images  # one chapter: the score histogram and the pass rates
    assert all(i["ok"] and i["width"] > 0 and i["src"] == "data:image/png;base64," for i in images), images
    histogram, rates = (i["alt"] for i in images)
    assert histogram.startswith(f"Histogram of the total scores of the {len(book)} students in ch03_general_form")
    full = sum(float(r["total"]) == float(r["max"]) for r in book)
    assert f"Full marks: {full};" in histogram
    passed = sum(r["test_scaled_dot_product_score"] != "0" for r in book)
    assert f"test_scaled_dot_product_score passed by {passed} of {len(book)} students" in rates


def test_each_plot_has_its_table_and_the_mistakes_and_statuses_are_listed(report):
    page, book = report
    tables = page.locator("details")
    assert tables.count() == 2
    tables.nth(1).locator("summary").click()
    row = tables.nth(1).locator("tr", has_text="test_scaled_dot_product_score")
    assert row.is_visible()
    passed = sum(r["test_scaled_dot_product_score"] != "0" for r in book)
    assert row.locator("td").nth(1).inner_text() == str(passed)
    # the scaled score's mistake (divided by d_k, not its square root): one row, every student who made it
    failed = len(book) - passed
    mistake = page.locator("table.mistakes tr", has_text="test_scaled_dot_product_score").first
    assert mistake.locator("td").nth(1).inner_text().startswith(f"{failed} (")
    statuses = {r["status"] for r in book}
    assert "timeout" in statuses
    for status in statuses:
        assert page.locator("td code", has_text=status).count() >= 1


def test_report_has_no_wcag_violation(report):
    page, _ = report
    found = violations(page)
    assert not found, "axe found WCAG 2 A/AA violations in report.html:\n" + "\n".join(found)
