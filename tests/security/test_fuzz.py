"""A property-based fuzz pass over every route: any parameters, any form, never a 500, and a
refused request changes nothing.

For each endpoint of the app's URL map, Hypothesis builds requests: path values (real ids
of the scenario, ids that do not exist, odd slugs), query parameters (the library's, and
any others) and form fields (the ones the page's own form has, plus strays), filled with
odd Unicode, control characters, line separators, numbers past every range, and text at and
past each limit. The requests carry a valid CSRF token, so they reach the views. A
response below 400 may change data; one of 400 or more must leave the data as it was (the
audit log and sign-in bookkeeping aside, which record refusals on purpose).

Bounded: FUZZ_EXAMPLES examples per endpoint (15 by default; set PORTAL_FUZZ_EXAMPLES for a
deeper pass), derandomised so CI is repeatable.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import Counter

import pytest
from flask import url_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal import create_app
from portal.extensions import db

from ..conftest import Auth, csrf_from
from ..writing import complete, post_case_study

FUZZ_EXAMPLES = int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "15"))
#: Status codes seen, for the summary at the end of the run (conftest prints it).
SEEN: Counter = Counter()

# Not fuzzed: signing out ends the fuzzing session; static files are Flask's own.
SKIPPED = {"auth.logout", "static"}
# Written by refused requests on purpose: the audit log records refusals, sign-in keeps its
# counters and timestamps, the two-factor page keeps the key being set up.
BOOKKEEPING = {"audit_event"}
USER_BOOKKEEPING = {
    "second_factor_failures",
    "second_factor_locked_until",
    "last_login_at",
    "totp_pending_secret",
    "totp_last_step",
}

LIBRARY_PARAMETERS = ["q", "force", "theme", "year", "partner", "sort", "page", "evidence"]
OTHER_PARAMETERS = ["next", "token", "kind", "year", "text", "format", "days"]
#: Fields of forms the fuzz pass cannot read from a page of their own (a POST-only route whose
#: form shows only beside data), and query parameters only one page reads.
OWN_PARAMETERS = {
    "insights.add_synonym": ["term", "expansion", "search"],
    "casestudies.show": ["search"],
}

ODD = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e309",
        "99999999999999999999999",
        "2147483648",
        "NaN",
        "\x00",
        "\u2028",
        "\u202e",
        "\ufeff",
        "../../etc/passwd",
        "%00",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        '"; DROP TABLE "user"; --',
        "${7*7}{{7*7}}",
        "approve",
        "changes",
        "reject",
        "admin",
        "moderator",
        "disabled",
        "active",
        "adopted",
        "adapted",
        "newest",
        "relevance",
        "force",
        "theme",
        "Kent",
        "١٢٣٤٥٦",
        "x" * 201,
        "x" * 5001,
        "y" * 100_001,
        "😀" * 300,
    ]
)
TEXT = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=80,
    )
    | ODD
)
VALUE = TEXT | st.lists(TEXT, min_size=2, max_size=4)


@pytest.fixture
def fuzz(app, make_user, published, request):
    """The right visitor for the endpoint, its CSRF token, and real ids to aim at.

    Account pages (sign-in, registration, reset...) are fuzzed by someone not signed in, who
    is the only one they serve; every other page by a signed-in admin, who reaches them all.
    """
    admin = app.test_client()
    admin_user = make_user("admin")
    assert Auth(admin).login(admin_user).status_code == 303
    author = app.test_client()
    Auth(author).login(make_user(email="fuzz.author@kent.police.uk"))
    post_case_study(author, complete(app, title="A draft"), action="save")
    post_case_study(author, complete(app, title="Waiting"))
    (live,) = published()
    ids = {"case_study_id": [1, 2, live, 999_999], "revision_id": [1, 2, 3, 2**31 - 1]}
    ids |= {"user_id": [1, 2, 3, 999], "synonym_id": [1, 2, 999], "target_id": [1, 2, 43, 999]}
    ids |= {"attachment_id": [1, 999], "adoption_id": [1, 999]}
    if request.node.callspec.params["endpoint"].startswith("auth."):
        visitor = app.test_client()
        return visitor, ids, csrf_from(visitor.get("/auth/login").get_data(as_text=True))
    return admin, ids, csrf_from(admin.get("/account").get_data(as_text=True))


def snapshot(app) -> str:
    """A fingerprint of every row the portal keeps, bookkeeping aside."""
    digest = hashlib.sha256()
    with app.app_context():
        for table in db.metadata.sorted_tables:
            if table.name in BOOKKEEPING:
                continue
            columns = [c for c in table.columns if c.name not in USER_BOOKKEEPING]
            rows = db.session.execute(select(*columns).order_by(*table.primary_key.columns))
            digest.update(table.name.encode())
            for row in rows:
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def endpoints(app) -> list[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((rule.endpoint, method))
    return sorted(found)


def _names_in(page: str) -> list[str]:
    names = re.findall(r'<(?:input|textarea|select)[^>]*\bname="([^"]+)"', page)
    return sorted({n for n in names if n != "csrf_token"})


def path_values(rule, ids) -> dict:
    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        if name in ids:
            values[name] = st.sampled_from(ids[name])
        elif kind in ("IntegerConverter", "IdConverter"):
            values[name] = st.integers(min_value=1, max_value=2**31 - 1)
        elif kind == "AnyConverter":
            values[name] = st.sampled_from(sorted(converter.items))
        else:
            values[name] = TEXT.filter(lambda v: v and "/" not in v and "\x00" not in v) | st.just(
                "kent-police"
            )
    return values


def _all_endpoints():
    # Collected from an app built for the purpose (the URL map is the same for every app).
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"INSTANCE_PATH": folder, "TESTING": True, "SECRET_KEY": "x" * 40})
        return endpoints(app)


@pytest.mark.parametrize(("endpoint", "method"), _all_endpoints())
def test_no_request_gives_a_500_or_changes_data_when_refused(app, fuzz, endpoint, method):
    client, ids, token = fuzz
    rule = next(
        r for r in app.url_map.iter_rules() if r.endpoint == endpoint and method in r.methods
    )
    fields: list[str] = []
    if method == "POST" and "GET" in rule.methods:  # the fields of the page's own form
        with app.test_request_context():
            url = url_for(endpoint, **{name: ids.get(name, [1])[0] for name in rule._converters})
        fields = _names_in(client.get(url).get_data(as_text=True))
    if endpoint == "library.index" or endpoint.startswith("exports."):
        keys = LIBRARY_PARAMETERS + OTHER_PARAMETERS
    else:
        keys = OTHER_PARAMETERS + fields + ["decision", "comment", "role", "status", "force"]
    keys = keys + OWN_PARAMETERS.get(endpoint, [])

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        path=st.fixed_dictionaries(path_values(rule, ids)),
        parameters=st.dictionaries(st.sampled_from(keys), VALUE, max_size=6),
        htmx=st.booleans(),
    )
    def attempt(path, parameters, htmx):
        with app.test_request_context():
            try:
                url = url_for(endpoint, **path)
            except Exception:  # noqa: BLE001 - a value no URL can hold is no request at all
                return
        headers = {"HX-Request": "true", "X-CSRFToken": token} if htmx else {}
        before = snapshot(app) if method == "POST" else None
        if method == "GET":
            response = client.get(url, query_string=parameters, headers=headers)
        else:
            response = client.post(url, data={**parameters, "csrf_token": token}, headers=headers)
        SEEN[response.status_code] += 1
        assert response.status_code != 500, f"{method} {url} {parameters!r}"
        if method == "POST" and response.status_code >= 400:
            assert snapshot(app) == before, f"refused {method} {url} {parameters!r} changed data"

    attempt()
