"""Phones: every page reflows at 320 CSS px (WCAG 1.4.10), and the header's links fold
behind GOV.UK Frontend's "Menu" button on small screens.

The reflow test does not list pages: for a contributor, a moderator and an admin it crawls
what each can reach from "/" by following the portal's own links (GET only), and checks each
kind of page once, at 320 x 640, for sideways scrolling and with axe-core.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import update
from werkzeug.exceptions import HTTPException

from portal.demo import DEMO_ACCOUNTS
from portal.extensions import db
from portal.models import User

from .conftest import AccessibilityError, assert_accessible, settle, sign_in, watch

PHONE = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 800}
MOST_SHAPES = 60  # kinds of page checked per role, to keep the run short
MOST_PEEKS = 20  # pages of one kind whose links are read (only the first is checked)

# Never followed: downloads (exports, PDFs, attachments), feeds, assets, health, sign-out.
SKIP = re.compile(
    r"^/(static|healthz)(/|$)|\.(csv|jsonl?|pdf|atom|xml|zip)$|/attachments/|logout|sign-?out",
    re.IGNORECASE,
)

# The outermost elements that stick out past the viewport's right edge, for the message.
WIDEST = """width => {
  const out = e => e && e.getClientRects().length && e.getBoundingClientRect().right > width + 0.5;
  return [...document.querySelectorAll("body *")]
    .filter(e => out(e) && !out(e.parentElement))
    .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
      + (typeof e.className === "string" && e.className.trim()
        ? "." + e.className.trim().split(/\\s+/).join(".") : "")
      + " (" + Math.round(e.getBoundingClientRect().right) + "px)")
    .slice(0, 3);
}"""
LINKS = "as => as.filter(a => !a.hasAttribute('download')).map(a => a.href)"


class _Links(HTMLParser):
    """The a[href] of a page read without a browser (no download attribute)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "a" and found.get("href") and "download" not in found:
            self.hrefs.append(found["href"])


def _free_code(live_app, email: str) -> None:
    """Let this test use the current TOTP code even if another test just did."""
    with live_app.app_context():
        db.session.execute(update(User).where(User.email == email).values(totp_last_step=None))
        db.session.commit()
        db.session.remove()


def _signed_in(page, live_app, base_url, account) -> None:
    sign_in(page, base_url, account.email, account.password)
    if account.totp_secret:
        _free_code(live_app, account.email)
        page.get_by_label("Enter your security code").fill(pyotp.TOTP(account.totp_secret).now())
        page.get_by_role("button", name="Continue").click()
        settle(page)
    expect(page.locator(".portal-signout")).to_have_count(1)  # signed in (the link may be folded)


class _Crawl:
    """Same-origin links, one page per kind: the route a path matches (so /case-studies/3
    and /case-studies/7, or /forces/kent and /forces/essex, are one kind), digits replaced
    when no route matches. The query string is dropped, except for one library search."""

    def __init__(self, live_app, base_url: str) -> None:
        self.adapter = live_app.url_map.bind("localhost")
        self.origin = urlsplit(base_url).netloc
        self.base_url = base_url
        self.queue: list[str] = ["/"]
        self.checked: dict[str, str] = {}  # kind -> the path checked
        self.peeked: dict[str, int] = {}  # kind -> pages of it whose links were read
        self.seen_paths: set[str] = set()
        self.redirects: set[str] = set()  # kinds that only redirect to another kind

    def kind(self, path: str, query: str) -> str:
        try:
            rule, _ = self.adapter.match(path, method="GET", return_rule=True)
            shape = rule.rule
        except HTTPException:
            shape = re.sub(r"\d+", "N", path)
        return shape + ("?search" if shape == "/library" and query else "")

    def add(self, hrefs: list[str], page_url: str) -> None:
        for href in hrefs:
            parts = urlsplit(urljoin(page_url, href))
            if parts.scheme not in ("http", "https") or parts.netloc != self.origin:
                continue
            if SKIP.search(parts.path):
                continue
            keep_query = self.kind(parts.path, parts.query).endswith("?search")
            target = parts.path + (f"?{parts.query}" if keep_query else "")
            if target not in self.seen_paths:
                self.seen_paths.add(target)
                self.queue.append(target)

    def redirected(self, kind: str, url: str) -> bool:
        """Whether a path led to a kind of page already checked (then it is not counted)."""
        parts = urlsplit(url)
        landed = self.kind(parts.path, parts.query)
        if landed != kind and landed in self.checked:
            del self.checked[kind]
            self.peeked[kind] = MOST_PEEKS  # never opened again
            self.redirects.add(kind)
            return True
        return False

    def next(self) -> tuple[str, str, bool] | None:
        """The next path, its kind, and whether it is the first of its kind (to be checked)."""
        while self.queue:
            target = self.queue.pop(0)
            parts = urlsplit(target)
            kind = self.kind(parts.path, parts.query)
            if kind not in self.checked and kind not in self.redirects:
                if len(self.checked) >= MOST_SHAPES:
                    continue
                self.checked[kind] = target
                return target, kind, True
            if self.peeked.get(kind, 0) < MOST_PEEKS:
                self.peeked[kind] = self.peeked.get(kind, 0) + 1
                return target, kind, False
        return None


@pytest.mark.parametrize("role", ["contributor", "moderator", "admin"])
def test_every_page_a_role_can_reach_reflows_at_320_px_and_passes_axe(
    role, page, live_app, base_url
):
    account = next(a for a in DEMO_ACCOUNTS if a.role.value == role)
    problems = watch(page)
    page.set_viewport_size(PHONE)
    _signed_in(page, live_app, base_url, account)

    crawl = _Crawl(live_app, base_url)
    offenders: list[str] = []
    while (step := crawl.next()) is not None:
        target, kind, check = step
        if not check:  # another page of a kind already checked: only read its links
            response = page.request.get(base_url + target)
            if response.ok and "text/html" in response.headers.get("content-type", ""):
                parser = _Links()
                parser.feed(response.text())
                crawl.add(parser.hrefs, base_url + target)
            continue
        response = page.goto(base_url + target, wait_until="load")
        # Wait for htmx to settle (e.g. a preview). A locator, not wait_for_function: the
        # latter evaluates a string in the page when it must poll, which the CSP refuses.
        expect(page.locator(".htmx-request")).to_have_count(0)
        if response is None or response.status >= 400:
            offenders.append(f"{target}: answered {response.status if response else 'nothing'}")
            continue
        if crawl.redirected(kind, page.url):  # e.g. /case-studies/7 to its address with a slug
            crawl.add(page.eval_on_selector_all("a[href]", LINKS), page.url)
            continue
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            widest = ", ".join(page.evaluate(WIDEST, PHONE["width"]))
            offenders.append(f"{target}: {width}px wide at 320px ({widest})")
        try:
            assert_accessible(page)
        except AccessibilityError as error:
            offenders.append(f"{target}: axe-core: {error}")
        crawl.add(page.eval_on_selector_all("a[href]", LINKS), page.url)

    checked = sorted(crawl.checked)
    assert len(checked) >= 10, f"the crawl found too little: {checked}"
    assert not offenders, f"{len(offenders)} of {len(checked)} kinds of page failed:\n" + (
        "\n".join(offenders)
    )
    assert not problems, f"browser errors: {problems}"


def _menu_button(page):
    return page.get_by_role("button", name="Menu")


def _nav(page):
    return page.get_by_role("navigation", name="Main menu")


def test_the_menu_button_folds_the_links_on_a_phone_and_works_by_keyboard(contributor, visit):
    page = contributor
    page.set_viewport_size(PHONE)
    visit("/")
    account_link = _nav(page).get_by_role("link", name="Your account")
    expect(_menu_button(page)).to_have_attribute("aria-expanded", "false")
    expect(account_link).to_be_hidden()

    # From the top of the page: the skip link, the service's name, then Menu.
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Menu":
            break
    expect(_menu_button(page)).to_be_focused()

    page.keyboard.press("Enter")
    expect(_menu_button(page)).to_have_attribute("aria-expanded", "true")
    expect(account_link).to_be_visible()
    expect(_nav(page).get_by_role("button", name="Sign out")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)
    page.keyboard.press("Tab")  # the first link, just below the button
    expect(_nav(page).get_by_role("link", name="Home")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(_menu_button(page)).to_have_attribute("aria-expanded", "false")
    expect(account_link).to_be_hidden()

    # On a wide screen there is no Menu button and every link shows.
    page.set_viewport_size(DESKTOP)
    expect(_menu_button(page)).to_be_hidden()
    expect(account_link).to_be_visible()
    expect(_nav(page).get_by_role("button", name="Sign out")).to_be_visible()
    assert_accessible(page)


def test_without_javascript_the_links_show_on_a_phone(browser, base_url):
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(base_url + "/auth/login")
        expect(page.locator(".govuk-service-navigation__toggle")).to_be_hidden()
        for name in ("Home", "Sign in", "Create an account"):
            expect(_nav(page).get_by_role("link", name=name, exact=True)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()
