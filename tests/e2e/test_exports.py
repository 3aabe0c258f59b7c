"""Downloading the library's results in a real browser: the links follow the filters."""

import csv
import re
from pathlib import Path

from playwright.sync_api import expect

from .conftest import assert_accessible


def test_download_links_carry_the_filters_and_download_them(contributor, visit):
    page = visit("/library")
    page.get_by_label("Search case studies").fill("misogyny")
    expect(page).to_have_url(re.compile(r"/library\?q=misogyny"))
    page.locator(".portal-facet").first.locator("input").first.check()
    expect(page).to_have_url(re.compile(r"theme="))
    theme = re.search(r"theme=([a-z0-9-]+)", page.url).group(1)

    # The results were swapped in by htmx: the links in them carry the new filters.
    csv_link = page.get_by_role("link", name=re.compile(r"^CSV"))
    expect(csv_link).to_have_attribute("href", re.compile(rf"q=misogyny&theme={theme}"))
    jsonl_link = page.get_by_role("link", name=re.compile(r"^JSON Lines"))
    expect(jsonl_link).to_have_attribute("href", re.compile(rf"q=misogyny&theme={theme}"))
    assert_accessible(page)

    count = int(re.match(r"\d+", page.locator(".portal-result-count").inner_text()).group())
    with page.expect_download() as download_info:
        csv_link.click()
    download = download_info.value
    assert re.fullmatch(r"case-studies-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == count > 0
    assert "Contact email" not in rows[0]  # a contributor's export
    titles = [t.inner_text() for t in page.locator(".portal-card__title").all()]
    assert [r["Title"] for r in rows][: len(titles)] == titles
    assert_accessible(page)  # still on the library page, nothing navigated away
