"""The pages: home, library, a case study, health, errors, and the headers on all of them."""

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import CaseStudy

from ..backends import whoosh_only
from ..records import case_study_line


def test_home_explains_the_library_offers_search_and_lists_the_latest(member, published):
    published(case_study_line(title="Older one"), case_study_line(title="Newest one"))
    page = member.get("/").get_data(as_text=True)
    assert "<h1" in page and "gender equality" in page
    assert 'action="/library"' in page and 'name="q"' in page
    assert page.index("Newest one") < page.index("Older one")


def test_home_says_so_when_nothing_is_published(member):
    assert "No case studies have been published yet." in member.get("/").get_data(as_text=True)


def test_case_study_page_shows_the_published_content(member, published):
    (case_id,) = published(case_study_line(evidence="worked", lessons="Book the hall early."))
    response = member.get(f"/case-studies/{case_id}", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<h1 class="govuk-heading-xl">Challenging Misogyny with the fire service</h1>' in page
    assert "Northamptonshire Police" in page
    assert "<strong>misogyny</strong>" in page
    assert "Northamptonshire Fire and Rescue Service" in page
    assert "Book the hall early." in page
    assert "Worked" in page
    # The contact is named, with a way to write to them; their address stays private.
    assert "Inspector Sarah Khan" in page and f'href="/case-studies/{case_id}/contact"' in page
    assert "sarah.khan@northants.police.uk" not in page
    assert (
        "<title>Challenging Misogyny with the fire service – HeForShe Practice Library</title>"
        in page
    )


def test_case_study_address_without_or_with_a_wrong_slug_redirects_to_the_canonical_one(
    member, published
):
    (case_id,) = published()
    canonical = f"/case-studies/{case_id}/challenging-misogyny-with-the-fire-service"
    for path in (f"/case-studies/{case_id}", f"/case-studies/{case_id}/old-title"):
        response = member.get(path)
        assert response.status_code == 301
        assert response.headers["Location"] == canonical
    assert member.get(canonical).status_code == 200


def test_case_study_body_is_sanitised_on_the_page(member, published):
    body = (
        "<script>alert('x')</script>\n\n[click](javascript:alert(1))\n\n"
        '<a href="#" onclick="steal()" hx-post="/x">y</a>'
    )
    (case_id,) = published(case_study_line(body=body))
    page = member.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    assert "<script>alert" not in page
    assert 'href="javascript:' not in page
    assert '<a href="#" onclick' not in page
    assert '&lt;a href="#" onclick="steal()" hx-post="/x"&gt;' in page  # shown as text, inert


@pytest.mark.parametrize("status", ["draft", "submitted"])
def test_unpublished_case_studies_are_not_found_and_not_listed(member, published, status):
    (case_id,) = published(case_study_line(title="Not yet approved", status=status))
    assert member.get(f"/case-studies/{case_id}").status_code == 404
    assert member.get(f"/case-studies/{case_id}/not-yet-approved").status_code == 404
    assert "Not yet approved" not in member.get("/").get_data(as_text=True)
    assert "Not yet approved" not in member.get("/library").get_data(as_text=True)


def test_library_lists_and_filters_published_case_studies(member, published):
    published(case_study_line(title="Rugby allies"), case_study_line(title="Menopause café"))
    everything = member.get("/library").get_data(as_text=True)
    assert "2 case studies" in everything
    filtered = member.get("/library?q=rugby").get_data(as_text=True)
    assert "Rugby allies" in filtered and "Menopause café" not in filtered
    assert "1 case study" in filtered


def test_library_pages_through_results(member, published):
    published(*[case_study_line(title=f"Scheme {n:02d}") for n in range(25)])
    first = member.get("/library").get_data(as_text=True)
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = member.get("/library?page=2").get_data(as_text=True)
    assert "Scheme 00" in second and 'rel="prev"' in second


@pytest.mark.parametrize(
    "query", ["?page=-3", "?page=abc", "?page=99999", "?q=%25%25_", "?q=" + "x" * 5000]
)
def test_library_survives_odd_query_strings(member, query):
    assert member.get("/library" + query).status_code == 200


@pytest.mark.parametrize("query", ["?page=9223372036854775807", "?page=" + "9" * 40])
def test_library_pages_past_the_end_show_the_last_page(member, published, query):
    published()
    response = member.get("/library" + query)
    assert response.status_code == 200
    assert "Challenging Misogyny" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/case-studies/0",
        "/case-studies/99999999999999999999",
        "/case-studies/-1",
        "/case-studies/3000000000",  # beyond PostgreSQL's 32-bit ids
        "/case-studies/9223372036854775807",
    ],
)
def test_case_study_ids_out_of_range_are_not_found(member, path):
    assert member.get(path).status_code == 404


@pytest.mark.parametrize("query", ["_", "%", "%00", "\\"])
def test_library_filter_takes_wildcard_characters_literally(member, published, query):
    published()
    page = member.get("/library", query_string={"q": query}).get_data(as_text=True)
    assert "0 case studies" in page


def test_library_answers_htmx_with_the_results_fragment_only(member, published):
    published()
    fragment = member.get("/library", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.get_data(as_text=True)
    assert 'id="results"' in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]
    restore = member.get(
        "/library", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.get_data(as_text=True)
    assert "HX-Request" in member.get("/library").headers["Vary"]


def test_healthz_reports_database_and_search_index(member):
    response = member.get("/healthz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "search": {"ok": True}},
    }


@whoosh_only
def test_healthz_says_unavailable_when_the_search_index_is_gone(member, instance_path):
    import shutil

    shutil.rmtree(instance_path / "search")
    response = member.get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["search"]["ok"] is False
    assert response.json["checks"]["database"]["ok"] is True


def test_not_found_is_a_page_in_the_site_layout(member):
    response = member.get("/no/such/page")
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert (
        "Page not found" in page and 'id="main-content"' in page and "Skip to main content" in page
    )


def test_not_found_for_htmx_is_a_fragment(member):
    response = member.get("/no/such/page", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert "<html" not in response.get_data(as_text=True)
    assert "Page not found" in response.get_data(as_text=True)


def test_wrong_method_is_a_405_page(member):
    response = member.post("/healthz")
    assert response.status_code == 405
    assert response.headers["Allow"]
    assert "<html" in response.get_data(as_text=True)


@pytest.fixture
def failing_routes(app):
    """Routes that fail on purpose, added before the app serves its first request."""
    from flask import abort

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    @app.get("/fail/<int:code>")
    def fail(code):
        abort(code)


def test_an_unexpected_error_is_a_500_page_in_the_layout(failing_routes, member):
    response = member.get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Sorry, there is a problem with the service" in page
    assert "kaboom" not in page
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


@pytest.mark.parametrize(
    "path", ["/", "/library", "/healthz", "/missing", "/static/css/portal.css"]
)
def test_every_response_carries_the_security_headers(member, path):
    with member.get(path) as response:
        headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert (
        "object-src 'none'" in csp and "base-uri 'none'" in csp and "frame-ancestors 'none'" in csp
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_pages_load_only_vendored_assets(member):
    page = member.get("/").get_data(as_text=True)
    assert "/static/vendor/htmx/htmx.min.js" in page
    assert "/static/vendor/govuk-frontend/govuk-frontend.min.css" in page
    assert "https://" not in page.split("<body")[0]  # nothing from a CDN in <head>
    assert "<script>" not in page  # no inline script: the CSP would block it


def test_vendored_files_match_their_recorded_checksums():
    import hashlib
    from pathlib import Path

    vendor = Path(__file__).resolve().parents[2] / "static" / "vendor"
    lines = (vendor / "SHA256SUMS").read_text().splitlines()
    assert any("htmx/htmx.min.js" in line for line in lines)
    for line in lines:
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name


def test_case_studies_keep_their_force(app, published):
    (case_id,) = published(case_study_line(force="the met"))
    with app.app_context():
        case_study = db.session.scalar(select(CaseStudy).where(CaseStudy.id == case_id))
        assert case_study.force.name == "Metropolitan Police Service"


@pytest.mark.parametrize("code", [400, 403, 404, 405, 413, 429, 500])
def test_every_error_page_is_in_the_layout_with_its_status(failing_routes, member, code):
    response = member.get(f"/fail/{code}")
    assert response.status_code == code
    page = response.get_data(as_text=True)
    assert 'id="main-content"' in page and f"Error {code}" in page
