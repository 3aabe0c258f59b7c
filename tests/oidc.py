"""A real OpenID provider for the single sign-on tests: tests/idp/server.mjs (oidc-provider on
Debian's Node), started on loopback, and a person signing in at it (its own login page).

Three "tenants", each its own issuer http://127.0.0.1:PORT/<tenant id>/v2.0, as Entra ID's are:
Kent's and Essex's behind the multi-tenant /organizations/v2.0 endpoints, and Merseyside's,
which the tests also configure on its own as "another OpenID provider".
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

IDP_DIR = Path(__file__).parent / "idp"
CLIENT_ID = "heforshe-portal-tests"
CLIENT_SECRET = "a-client-secret-for-the-tests-only-" + "x" * 16
PASSWORD = "idp password 1"

KENT_TENANT = "0b5c2a3e-7d41-4f0e-9c1a-00000000000a"
ESSEX_TENANT = "0b5c2a3e-7d41-4f0e-9c1a-00000000000b"  # never mapped to a force
MERSEY_TENANT = "0b5c2a3e-7d41-4f0e-9c1a-00000000000c"


def _account(login: str, email: str, name: str, amr=("pwd",), **extra) -> dict:
    return {
        "login": login,
        "password": PASSWORD,
        "claims": {
            "sub": f"pairwise-{login}-{uuid.uuid5(uuid.NAMESPACE_DNS, login).hex[:12]}",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"oid:{login}")),
            "email": email,
            "preferred_username": email,
            "name": name,
        },
        "amr": list(amr),
        **extra,
    }


TENANTS = [
    {
        "id": KENT_TENANT,
        "name": "Kent Police",
        "accounts": [
            _account("alex", "alex.morgan@kent.police.uk", "Alex Morgan"),
            _account("mo.mfa", "mo.reed@kent.police.uk", "Mo Reed", amr=("pwd", "mfa")),
            _account("mo.pwd", "mo.reed.pwd@kent.police.uk", "Mo Reed"),
            _account("acr.user", "ari.cole@kent.police.uk", "Ari Cole", acr="urn:kent:mfa"),
            # A tenant admin set this account's email claim to someone else's address.
            _account("mallory", "victim@kent.police.uk", "Mallory"),
            _account("outsider", "someone@example.com", "Out Sider"),
            _account("odd", "odd.one@kent.police.uk", "<script>alert(1)</script>\u202e"),
            _account("linker", "lin.ker@kent.police.uk", "Lin Ker"),
        ],
    },
    {
        "id": ESSEX_TENANT,
        "name": "Essex Police",
        "accounts": [_account("bea", "bea.hart@essex.police.uk", "Bea Hart")],
    },
    {
        "id": MERSEY_TENANT,
        "name": "Merseyside Police",
        "accounts": [_account("cal", "cal.ward@merseyside.police.uk", "Cal Ward")],
    },
]


def claims_of(login: str) -> dict:
    return next(a["claims"] for t in TENANTS for a in t["accounts"] if a["login"] == login)


@dataclass
class Idp:
    url: str
    process: subprocess.Popen
    bases: list[str] = field(default_factory=list)

    @property
    def entra_discovery(self) -> str:
        return f"{self.url}/organizations/v2.0/.well-known/openid-configuration"

    def discovery(self, tenant: str) -> str:
        return f"{self.url}/{tenant}/v2.0/.well-known/openid-configuration"

    def issuer(self, tenant: str) -> str:
        return f"{self.url}/{tenant}/v2.0"

    def next_token(self, mutation: str | None) -> None:
        """Change the next ID token a token endpoint hands out (see server.mjs)."""
        requests.post(f"{self.url}/_test/next-token", json={"mutation": mutation}, timeout=5)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def entra_provider(idp: Idp):
    """The portal's Entra ID provider at `idp` (MFA trusted), Kent's tenant mapped to Kent
    Police for kent.police.uk addresses; Essex's tenant never mapped. Call in an app context."""
    from portal.models import IdentityProvider, ProviderKind, ProviderTenant
    from portal.reference import find_force

    provider = IdentityProvider(
        slug="entra",
        name="Microsoft Entra ID",
        kind=ProviderKind.ENTRA,
        discovery_url=idp.entra_discovery,
        client_id=CLIENT_ID,
        trust_mfa=True,
    )
    provider.tenants.append(
        ProviderTenant(
            tenant_id=KENT_TENANT, force=find_force("Kent Police"), email_domains="kent.police.uk"
        )
    )
    return provider


def start_idp(bases: list[str]) -> Idp:
    """Start the provider, with the portal at each of `bases` as its registered client."""
    node = shutil.which("node")
    if node is None or not (IDP_DIR / "node_modules" / "oidc-provider").exists():
        raise RuntimeError(
            "The single sign-on tests need Node and tests/idp's packages: "
            "run `npm ci --prefix tests/idp` (make test does)"
        )
    config = {
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{b}/auth/sso/callback" for b in bases],
                "post_logout_redirect_uris": [f"{b}/auth/login" for b in bases],
            }
        ],
        "tenants": TENANTS,
    }
    process = subprocess.Popen(
        [node, str(IDP_DIR / "server.mjs")],
        env={"IDP_CONFIG": json.dumps(config), "PATH": "/usr/bin:/bin", "NODE_ENV": "test"},
        stdin=subprocess.PIPE,  # closed when the tests end, killed or not: the server exits
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the test OpenID provider did not start")
    port = json.loads(line)["port"]
    return Idp(url=f"http://127.0.0.1:{port}", process=process, bases=list(bases))


FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.I)
TENANT_LINK = re.compile(r'<a href="([^"]+)">([^<]+)</a>')


def sign_in_at(authorize_url: str, login: str, tenant: str = "Kent Police") -> str:
    """Be a person at the provider: pick the organisation, sign in on its login page, and
    return the address the provider sends the browser back to (the portal's callback)."""
    browser = requests.Session()
    url = authorize_url
    for _ in range(20):
        answer = browser.get(url, allow_redirects=False, timeout=10)
        url = _next(answer, browser, login, tenant)
        if "/auth/sso/callback" in urlsplit(url).path:
            return url
    raise AssertionError("the provider never sent the browser back")


def _next(answer, browser, login: str, tenant: str) -> str:
    if answer.is_redirect:
        return urljoin(answer.url, answer.headers["location"])
    text = answer.text
    if "Pick your organisation" in text:
        for href, name in TENANT_LINK.findall(text):
            if name == tenant:
                return urljoin(answer.url, html.unescape(href))
        raise AssertionError(f"no organisation {tenant}")
    action = FORM.search(text)
    if action is None:
        raise AssertionError(f"unexpected page from the provider: {text[:300]}")
    posted = browser.post(
        urljoin(answer.url, html.unescape(action.group(1))),
        data={"login": login, "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    if not posted.is_redirect:
        raise AssertionError(f"the provider refused the sign-in: {posted.text[:300]}")
    return urljoin(posted.url, posted.headers["location"])


def path_of(url: str) -> str:
    """The path and query of an absolute address (the test client's cookies are its host's)."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")
