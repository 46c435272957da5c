"""Signing in to a token-protected dashboard, sessions, sign-out, and token scopes.

Most tests run `lakelens serve` (on SQLite and on PostgreSQL) with tokens declared in
lakelens.yaml and talk to it with httpx as a browser or an API client would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from lakelens.config import load_settings
from lakelens.errors import ConfigError
from lakelens.server.limits import FailureLimit
from lakelens.server.security import Access
from lakelens.server.sessions import COOKIE, SessionCookies, safe_next
from lakelens.server.tokens import TokenEntry, declared_tokens, digest

API_TOKEN = "api-token-for-everything"
TOKENS = {
    "airflow": ("llk_airflow-ingest-only-0123456789abcdefghijkl", ["ingest"]),
    "viewer": ("llk_viewer-read-only-0123456789abcdefghijklmn", ["read"]),
    "team": ("llk_team-read-admin-0123456789abcdefghijklmno", ["read", "admin"]),
}
ODD_ASSET = 'odd "quoted" \\ name'  # recorded by the `pipeline` fixture
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _write_config(path: Path, names: list[str], extra: str = "") -> Path:
    lines = ["server:", "  tokens:"]
    for name in names:
        token, scopes = TOKENS[name]
        lines += [
            f"    - name: {name}",
            f"      hash: sha256:{hashlib.sha256(token.encode()).hexdigest()}",
            f"      scopes: [{', '.join(scopes)}]",
        ]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def _openlineage_event() -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2024-05-01T10:00:00Z",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "airflow", "name": "load_orders"},
        "inputs": [],
        "outputs": [{"namespace": "warehouse", "name": "orders"}],
        "producer": "https://example.com/tests",
    }


def _open_incident(store: Any) -> str:
    """A new open incident about a failing run of a fresh asset."""
    import lakelens
    from lakelens.alerts import triage
    from lakelens.alerts.config import AlertingConfig, RuleSettings
    from lakelens.alerts.engine import AlertEngine
    from lakelens.alerts.incidents import Policy
    from lakelens.testing import recording

    asset = f"scoped_{uuid.uuid4().hex[:8]}"
    try:
        with (
            recording(settings=store.settings, store=store),
            lakelens.run("job"),
            lakelens.asset(asset),
        ):
            raise RuntimeError("loader timed out")
    except RuntimeError:
        pass
    config = AlertingConfig(
        destinations={}, rules=RuleSettings(), incident_policy=Policy(group_wait=0)
    )
    AlertEngine(store, config).evaluate(now=time.time())
    with store.connect() as conn:
        (opened,) = [i.id for i in triage.incidents(conn, statuses=("open",), asset=asset)]
    return opened


class Browser:
    """An httpx client that signs in through the form, as a browser would."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, follow_redirects=False, timeout=20)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def move_to(self, url: str) -> None:
        """Talk to the server at `url` from now on, with the same cookies: a cookie is for a
        host, whatever the port (RFC 6265), in browsers and in httpx alike."""
        self.client.base_url = httpx.URL(url)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers={**HTML, **kwargs.pop("headers", {})}, **kwargs)

    def form_token(self, page: str, action: str) -> str:
        form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
        assert form, f"no form posting to {action}"
        match = re.search(r'name="csrf" value="([^"]+)"', form.group(0))
        assert match
        return match.group(1)

    def sign_in(self, token: str, next_path: str = "/", **headers: str) -> httpx.Response:
        form = self.get("/signin", params={"next": next_path})
        assert form.status_code == 200, form.text
        data = {"csrf": self.form_token(form.text, "/signin"), "token": token, "next": next_path}
        return self.client.post("/signin", data=data, headers=headers)

    @property
    def cookie(self) -> str | None:
        return self.client.cookies.get(COOKIE)


def _cookie_attributes(response: httpx.Response) -> dict[str, str]:
    (header,) = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    name_value, *attributes = [part.strip() for part in header.split(";")]
    assert name_value.startswith(f"{COOKIE}=")
    found = {"value": name_value.split("=", 1)[1]}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        found[key.lower()] = value
    return found


@pytest.fixture
def secured(
    pipeline: tuple[Any, Any, dict[str, Any]], serve: Callable[..., Any], tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """`lakelens serve` over the recorded pipeline with LAKELENS_API_TOKEN and three tokens
    in lakelens.yaml (ingest; read; read + admin)."""
    settings, store, _ = pipeline
    config = _write_config(tmp_path / "lakelens.yaml", list(TOKENS))
    env = {
        "LAKELENS_DATABASE_URL": settings.resolved_database_url,
        "LAKELENS_CONFIG": str(config),
        "LAKELENS_API_TOKEN": API_TOKEN,
        "LAKELENS_LOG_LEVEL": "INFO",
    }
    # No evaluator: the tests open incidents themselves, and an evaluation running at the
    # moment of an acknowledge could write the incident back as open.
    server = serve(tmp_path / "server-home", env=env, args=("--no-alerts",))
    yield {"server": server, "url": server.url, "store": store, "config": config, "env": env}


def _assert_no_secrets_logged(server: Any, *cookies: str | None) -> None:
    output = server.output()
    assert "signed in with token" in output  # the log was captured at INFO
    for secret in [API_TOKEN, *(t for t, _ in TOKENS.values()), *(c for c in cookies if c)]:
        assert secret not in output
        # Nor a part of it long enough to matter (a cookie's signature, a token's tail).
        assert secret[-24:] not in output


# -- sign-in and sessions against a real server ------------------------------------------------


def test_a_browser_signs_in_and_comes_back_where_it_was_going(secured: dict[str, Any]) -> None:
    url = secured["url"]
    with Browser(url) as browser:
        sent = browser.get("/", params={"period": "7d"})
        assert sent.status_code == 303
        assert sent.headers["location"] == "/signin?next=%2F%3Fperiod%3D7d"
        form = browser.get(sent.headers["location"])
        assert form.status_code == 200 and 'name="token"' in form.text
        assert 'type="password"' in form.text and 'aria-label="Main"' not in form.text
        assert form.headers["content-security-policy"].startswith("default-src 'none'")
        # /health in a browser is a page too; API clients and JSON get a 401 JSON.
        assert browser.get("/health").headers["location"] == "/signin?next=%2Fhealth"
        for path, headers in (("/api/v1/runs", HTML), ("/", JSON), ("/metrics", {})):
            refused = httpx.get(url + path, headers=headers)
            assert refused.status_code == 401, path
            assert refused.json()["detail"].startswith("Missing or wrong bearer token"), path
        # Anything else (curl's */*) gets a 401 page whose link leads to the form.
        page = httpx.get(url + "/runs")
        assert page.status_code == 401 and 'href="/signin?next=%2Fruns"' in page.text

        signed = browser.sign_in(TOKENS["team"][0], "/?period=7d")
        assert signed.status_code == 303 and signed.headers["location"] == "/?period=7d"
        cookie = _cookie_attributes(signed)
        assert browser.cookie == cookie["value"]
        overview = browser.get("/", params={"period": "7d"})
        assert overview.status_code == 200, overview.text
        assert "Sign out" in overview.text and ">team</span>" in overview.text
        for path in ("/runs", "/assets", "/incidents", "/lineage"):
            assert browser.get(path).status_code == 200, path
        assert browser.get("/health").status_code in (200, 503)  # the pipeline has failures
        # The session reads the API too (the live tail streams from it).
        runs = browser.client.get("/api/v1/runs", headers=JSON)
        assert runs.status_code == 200 and runs.json()["runs"]
        # A page whose path needs escaping (quotes, a backslash, spaces) comes back too.
        odd = "/assets/" + quote(ODD_ASSET, safe="")
        with Browser(url) as other:
            there = other.get(odd).headers["location"]
            assert there == "/signin?next=" + quote(odd, safe="")
            back = other.sign_in(TOKENS["viewer"][0], unquote(there.split("=", 1)[1]))
            assert back.headers["location"] == odd
            assert other.get(odd).status_code == 200
        # The form again while signed in goes straight on.
        assert browser.get("/signin", params={"next": "/runs"}).headers["location"] == "/runs"
    _assert_no_secrets_logged(secured["server"], cookie["value"])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/runs?status=failure", "/runs?status=failure"),
        ("/assets/raw.orders#columns", "/assets/raw.orders#columns"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("http:/evil.example", "/"),
        ("/runs\r\nSet-Cookie: x=1", "/"),
        ("/signout", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_next_is_only_a_path_on_this_server(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_signin_redirects_only_to_paths_here(secured: dict[str, Any]) -> None:
    for hostile in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        with Browser(secured["url"]) as browser:
            signed = browser.sign_in(TOKENS["viewer"][0], hostile)
            assert signed.status_code == 303 and signed.headers["location"] == "/", hostile


def test_the_session_cookie_is_httponly_strict_expiring_and_secure_behind_tls(
    secured: dict[str, Any],
) -> None:
    with Browser(secured["url"]) as browser:
        plain = _cookie_attributes(browser.sign_in(TOKENS["viewer"][0]))
    assert "httponly" in plain and plain["samesite"].lower() == "strict"
    assert plain["max-age"] == str(12 * 3600) and plain["path"] == "/" and "expires" in plain
    assert "secure" not in plain
    # uvicorn trusts X-Forwarded-Proto from loopback (FORWARDED_ALLOW_IPS): a TLS proxy.
    with Browser(secured["url"]) as browser:
        proxied = browser.sign_in(TOKENS["viewer"][0], **{"X-Forwarded-Proto": "https"})
        assert "secure" in _cookie_attributes(proxied)


def test_a_wrong_token_gets_the_form_again_then_429_after_five(secured: dict[str, Any]) -> None:
    with Browser(secured["url"]) as browser:
        for guess in ("wrong", TOKENS["team"][0][:-1], TOKENS["team"][0] + "x", " ", "x" * 400):
            refused = browser.sign_in(guess)
            assert refused.status_code == 401, guess
            assert "That token is not valid." in refused.text
            assert guess.strip() not in refused.text or not guess.strip()
            assert browser.cookie is None
        # The sixth try within the minute waits, even with the right token.
        limited = browser.sign_in(TOKENS["team"][0])
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert "Too many failed sign-ins" in limited.text and browser.cookie is None
        # Bearer tokens are not limited by the form's failures.
        api = httpx.get(secured["url"] + "/api/v1/runs", headers=_bearer(TOKENS["team"][0]))
        assert api.status_code == 200


def test_signing_out_ends_the_session_and_a_forged_signout_is_refused(
    secured: dict[str, Any],
) -> None:
    with Browser(secured["url"]) as browser:
        browser.sign_in(TOKENS["team"][0])
        page = browser.get("/runs")
        token = browser.form_token(page.text, "/signout")
        # No form token, another site's page, another session's token: refused, still in.
        assert browser.client.post("/signout", data={}).status_code == 403
        cross = browser.client.post(
            "/signout", data={"csrf": token}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403
        with Browser(secured["url"]) as other:
            other.sign_in(TOKENS["team"][0])
            foreign = other.form_token(other.get("/runs").text, "/signout")
        assert browser.client.post("/signout", data={"csrf": foreign}).status_code == 403
        assert browser.get("/runs").status_code == 200
        out = browser.client.post("/signout", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/signin"
        cleared = _cookie_attributes(out)
        assert cleared["max-age"] == "0" and cleared["value"] in ('""', "")
        assert browser.cookie is None
        assert browser.get("/runs").headers["location"] == "/signin?next=%2Fruns"
        assert browser.get("/signin").status_code == 200


def test_incident_forms_are_bound_to_the_session(secured: dict[str, Any]) -> None:
    incident = _open_incident(secured["store"])
    action = f"/incidents/{incident}/acknowledge"
    with Browser(secured["url"]) as first, Browser(secured["url"]) as second:
        first.sign_in(TOKENS["team"][0])
        second.sign_in(TOKENS["team"][0])
        token = first.form_token(first.get(f"/incidents/{incident}").text, action)
        # The same token in another session (same token, same incident) does nothing.
        assert second.client.post(action, data={"csrf": token}).status_code == 403
        acked = first.client.post(action, data={"csrf": token})
        assert acked.status_code == 303, acked.text
        assert acked.headers["location"] == f"/incidents/{incident}?done=acknowledge"
    state = httpx.get(f"{secured['url']}/api/v1/incidents/{incident}", headers=_bearer(API_TOKEN))
    assert state.json()["status"] == "acknowledged" and state.json()["acknowledged_by"] == "web"


def test_a_tampered_forged_or_expired_cookie_is_refused(secured: dict[str, Any]) -> None:
    url = secured["url"]
    with Browser(url) as browser:
        browser.sign_in(TOKENS["viewer"][0])
        good = browser.cookie
    assert good is not None
    version, fingerprint, scopes, expires, nonce, mac = good.split(".")
    # The server's key comes from LAKELENS_API_TOKEN, so this test can sign cookies too.
    access = Access(API_TOKEN, tokens=declared_tokens(load_settings(env=secured["env"])))
    viewer = access.token(TOKENS["viewer"][0])
    assert viewer is not None
    made = access.sessions.issue(viewer)
    expired = access.sessions.issue(viewer, now=time.time() - 12 * 3600 - 5)
    other_key = Access("another-api-token", tokens=[viewer]).sessions.issue(viewer)
    cases = {
        "theirs": (good, 200),
        "made with the key": (made, 200),
        "mac altered": (good[:-2] + ("AA" if not good.endswith("AA") else "BB"), 303),
        "admin added": (".".join([version, fingerprint, "read+admin", expires, nonce, mac]), 303),
        "later expiry": (
            ".".join([version, fingerprint, scopes, str(int(expires) + 60), nonce, mac]),
            303,
        ),
        "expired": (expired, 303),
        "another key": (other_key, 303),
        "garbage": ("v1.x.y.z", 303),
    }
    for what, (value, status) in cases.items():
        with httpx.Client(base_url=url, cookies={COOKIE: value}, follow_redirects=False) as client:
            response = client.get("/runs", headers=HTML)
            assert response.status_code == status, what
            api = client.get("/api/v1/runs")
            assert api.status_code == (200 if status == 200 else 401), what
    # A cookie never grants more than read through the POST API (it needs a bearer token).
    with httpx.Client(base_url=url, cookies={COOKIE: good}) as client:
        assert client.post("/api/v1/events", json=[]).status_code == 401


def test_removing_a_token_from_the_config_ends_its_sessions(
    pipeline: tuple[Any, Any, dict[str, Any]], serve: Callable[..., Any], tmp_path: Path
) -> None:
    settings, _, _ = pipeline
    config = _write_config(tmp_path / "lakelens.yaml", ["viewer", "team"])
    env = {
        "LAKELENS_DATABASE_URL": settings.resolved_database_url,
        "LAKELENS_CONFIG": str(config),
        # A key that outlives the restart: only the token's removal can end the session.
        "LAKELENS_SESSION_SECRET": "a-long-random-session-secret",
    }
    first = serve(tmp_path / "server-home", env=env)
    with Browser(first.url) as viewer, Browser(first.url) as team:
        viewer.sign_in(TOKENS["viewer"][0])
        team.sign_in(TOKENS["team"][0])
        assert viewer.get("/runs").status_code == 200 and team.get("/runs").status_code == 200
        first.stop()
        _write_config(config, ["team"])
        # Restarted on another port: the first one may be taken meanwhile by another test's
        # server. The browsers follow with their cookies.
        second = serve(tmp_path / "server-home", env=env)
        viewer.move_to(second.url)
        team.move_to(second.url)
        assert team.get("/runs").status_code == 200
        assert viewer.get("/runs").headers["location"] == "/signin?next=%2Fruns"
        assert viewer.sign_in(TOKENS["viewer"][0]).status_code == 401
        second.stop()
        # A new key (no secret, no API token: new at each start) signs everyone out.
        without = {k: v for k, v in env.items() if k != "LAKELENS_SESSION_SECRET"}
        team.move_to(serve(tmp_path / "server-home", env=without).url)
        assert team.get("/runs").status_code == 303


# -- scopes --------------------------------------------------------------------------------------


def test_each_scope_opens_only_its_part(secured: dict[str, Any]) -> None:
    url = secured["url"]
    incident = _open_incident(secured["store"])
    ack = f"{url}/api/v1/incidents/{incident}/acknowledge"

    def lacks(response: httpx.Response, scope: str) -> bool:
        return (
            response.status_code == 403
            and response.json()["detail"] == f"This token lacks the '{scope}' scope."
        )

    airflow = _bearer(TOKENS["airflow"][0])
    posted = httpx.post(f"{url}/api/v1/lineage", json=_openlineage_event(), headers=airflow)
    assert posted.status_code == 200 and posted.json()["accepted"] >= 1, posted.text
    assert lacks(httpx.get(f"{url}/api/v1/runs", headers=airflow), "read")
    assert lacks(httpx.get(f"{url}/metrics", headers=airflow), "read")
    assert lacks(httpx.post(ack, headers=airflow), "admin")
    page = httpx.get(f"{url}/runs", headers={**airflow, **HTML})
    assert page.status_code == 403 and "This token lacks the &#39;read&#39; scope." in page.text
    with Browser(url) as browser:
        refused = browser.sign_in(TOKENS["airflow"][0])
        assert refused.status_code == 403 and browser.cookie is None
        assert "lacks the &#39;read&#39; scope" in refused.text

    viewer = _bearer(TOKENS["viewer"][0])
    assert httpx.get(f"{url}/runs", headers=viewer).status_code == 200
    assert httpx.get(f"{url}/api/v1/runs", headers=viewer).status_code == 200
    assert lacks(
        httpx.post(f"{url}/api/v1/lineage", json=_openlineage_event(), headers=viewer), "ingest"
    )
    assert lacks(httpx.post(f"{url}/api/v1/events", json=[], headers=viewer), "ingest")
    assert lacks(httpx.post(ack, headers=viewer), "admin")
    with Browser(url) as browser:
        browser.sign_in(TOKENS["viewer"][0])
        shown = browser.get(f"/incidents/{incident}").text
        assert '<form method="post" action="/incidents/' not in shown
        assert "needs LAKELENS_API_TOKEN or a token with the <code>admin</code> scope" in shown
        signout = browser.form_token(shown, "/signout")  # a real form token of this session
        pressed = browser.client.post(f"/incidents/{incident}/acknowledge", data={"csrf": signout})
        assert pressed.status_code == 403 and "lacks the &#39;admin&#39; scope" in pressed.text
    state = httpx.get(f"{url}/api/v1/incidents/{incident}", headers=viewer).json()
    assert state["status"] == "open"

    team = _bearer(TOKENS["team"][0])
    assert lacks(httpx.post(f"{url}/api/v1/events", json=[], headers=team), "ingest")
    acked = httpx.post(ack, headers=team)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"

    everything = _bearer(API_TOKEN)
    assert httpx.post(f"{url}/api/v1/events", json=[], headers=everything).status_code == 200
    assert httpx.get(f"{url}/api/v1/runs", headers=everything).status_code == 200
    resolved = httpx.post(
        f"{url}/api/v1/incidents/{incident}/resolve", json={"note": "ok"}, headers=everything
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    with Browser(url) as browser:
        assert browser.sign_in(API_TOKEN).status_code == 303
        assert browser.get("/").status_code == 200
    _assert_no_secrets_logged(secured["server"])


# -- in-process: the pieces -----------------------------------------------------------------------


def _entry(name: str) -> TokenEntry:
    token, scopes = TOKENS[name]
    return TokenEntry(name, digest(token), frozenset(scopes))


def test_session_cookies_open_only_what_they_issued() -> None:
    team, viewer = _entry("team"), _entry("viewer")
    cookies = SessionCookies(b"k" * 32, [team, viewer], hours=2)
    now = 1_800_000_000.0
    value = cookies.issue(team, now=now)
    grant = cookies.open(value, now=now + 60)
    assert grant is not None and grant.name == "team" and grant.scopes == {"read", "admin"}
    assert grant.session and grant.expires == now + 2 * 3600
    assert cookies.issue(team, now=now) != value  # every sign-in is its own session
    assert cookies.open(value, now=now + 2 * 3600) is None  # expired
    assert SessionCookies(b"j" * 32, [team]).open(value, now=now) is None  # another key
    assert SessionCookies(b"k" * 32, [viewer], hours=2).open(value, now=now) is None  # removed
    # The token lost a scope since: the session has only what both still have.
    narrowed = TokenEntry("team", team.digest, frozenset({"read"}))
    kept = SessionCookies(b"k" * 32, [narrowed], hours=2).open(value, now=now)
    assert kept is not None and kept.scopes == {"read"}
    # Sessions made shorter: a cookie claiming a longer life is refused.
    assert SessionCookies(b"k" * 32, [team], hours=1).open(value, now=now) is None
    for broken in ("", "v1", value + "x", value.replace("v1.", "v2.", 1), "a" * 300):
        assert cookies.open(broken, now=now) is None, broken
    # The cookie tells nothing about the token.
    assert team.digest.hex() not in value and TOKENS["team"][0] not in value


def test_the_cookie_builder_sets_the_flags_and_hours(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings = load_settings(
        home=str(tmp_path / "home"), log_format="none", api_token=API_TOKEN, session_hours=2
    )
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        with TestClient(create_app(settings), base_url=base) as client:
            form = client.get("/signin")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            signed = client.post(
                "/signin",
                data={"csrf": csrf.group(1), "token": API_TOKEN, "next": "/"},
                follow_redirects=False,
            )
            flags = _cookie_attributes(signed)
            assert flags["max-age"] == "7200" and "httponly" in flags
            assert flags["samesite"].lower() == "strict"
            assert ("secure" in flags) is secure
            assert "2 hours" in form.text


def test_no_token_configured_means_no_signin_on_loopback(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings = load_settings(home=str(tmp_path / "home"), log_format="none")
    with TestClient(create_app(settings)) as client:
        page = client.get("/", headers=HTML, follow_redirects=False)
        assert page.status_code == 200 and "Sign out" not in page.text
        assert 'href="/signin' not in page.text
        assert (
            client.get("/signin?next=/runs", follow_redirects=False).headers["location"] == "/runs"
        )


def test_public_reads_offer_a_signin_for_admins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    monkeypatch.setenv("LAKELENS_PUBLIC_READ", "1")
    settings = load_settings(home=str(tmp_path / "home"), log_format="none", api_token=API_TOKEN)
    with TestClient(create_app(settings)) as client:
        page = client.get("/runs", headers=HTML)
        assert page.status_code == 200 and 'href="/signin?next=%2Fruns">Sign in</a>' in page.text


def test_failed_signins_are_limited_per_address() -> None:
    now = [0.0]
    limit = FailureLimit(5, 60.0, max_keys=3, clock=lambda: now[0])
    for _ in range(4):
        limit.fail("10.0.0.1")
        now[0] += 1
    assert limit.retry_after("10.0.0.1") is None
    limit.fail("10.0.0.1")
    assert limit.retry_after("10.0.0.1") == pytest.approx(56.0)
    assert limit.retry_after("10.0.0.2") is None  # per address
    now[0] = 60.5  # the first failure has aged out
    assert limit.retry_after("10.0.0.1") is None
    for address in ("a", "b", "c", "d"):
        limit.fail(address)
    assert len(limit._failures) == 3  # bounded memory: the oldest address is forgotten


def test_secrets_never_reach_log_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    config = _write_config(tmp_path / "lakelens.yaml", list(TOKENS))
    settings = load_settings(
        env={"LAKELENS_CONFIG": str(config)},
        home=str(tmp_path / "home"),
        log_format="none",
        api_token=API_TOKEN,
    )
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        form = client.get("/signin").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        for token in ("not-" + TOKENS["team"][0], TOKENS["team"][0]):
            client.post("/signin", data={"csrf": csrf.group(1), "token": token, "next": "/runs"})
        cookie = client.cookies.get(COOKIE)
        assert cookie
        client.get("/runs")
        client.get("/api/v1/runs", headers=_bearer(TOKENS["viewer"][0]))
        client.post("/api/v1/events", json=[], headers=_bearer(TOKENS["airflow"][0]))
        client.post("/api/v1/events", json=[], headers=_bearer("wrong-" + API_TOKEN))
        client.post("/signout", data={})
    text = caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert "failed sign-in" in text and "signed in with token team" in text
    for secret in (API_TOKEN, cookie, *(t for t, _ in TOKENS.values())):
        assert secret not in text
    assert cookie.rsplit(".", 1)[1] not in text


# -- configuration -------------------------------------------------------------------------------


def _tokens_from(tmp_path: Path, body: str) -> list[TokenEntry]:
    path = tmp_path / "lakelens.yaml"
    path.write_text(body, encoding="utf-8")
    return declared_tokens(load_settings(env={"LAKELENS_CONFIG": str(path)}))


GOOD_HASH = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("server:\n  tokens: {name: x}\n", "server.tokens in "),
        ("server:\n  tokens:\n    - just-a-string\n", "server.tokens[0] in "),
        (
            f"server:\n  tokens:\n    - name: ci\n      hash: {GOOD_HASH}\n      scopes: [ingest, write]\n",
            "server.tokens[0] (ci) in {path}: Unknown scope 'write': use ingest, read or admin.",
        ),
        (
            "server:\n  tokens:\n    - name: ci\n      hash: md5:abc\n      scopes: [read]\n",
            "server.tokens[0] (ci) in {path} needs `hash: sha256:<64 hex digits>`",
        ),
        (
            "server:\n  tokens:\n    - name: ci\n      token: llk_plain\n      scopes: [read]\n",
            "server.tokens[0] (ci) in {path} has unknown key 'token'",
        ),
        (f"server:\n  tokens:\n    - hash: {GOOD_HASH}\n      scopes: [read]\n", "needs a `name`"),
        (f"server:\n  tokens:\n    - name: ci\n      hash: {GOOD_HASH}\n", "needs `scopes`"),
        (
            f"server:\n  tokens:\n    - name: a\n      hash: {GOOD_HASH}\n      scopes: [read]\n"
            f"    - name: a\n      hash: {GOOD_HASH}\n      scopes: [read]\n",
            "Two tokens in server.tokens",
        ),
    ],
)
def test_a_bad_tokens_section_is_one_error_naming_the_entry(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _tokens_from(tmp_path, body)
    text = str(caught.value)
    assert message.format(path=tmp_path / "lakelens.yaml") in text
    assert "\n" not in text


def test_tokens_and_session_hours_are_read_from_the_server_section(tmp_path: Path) -> None:
    body = (
        "server:\n  session_hours: 1.5\n  tokens:\n"
        f"    - name: ci\n      hash: {GOOD_HASH.upper().replace('SHA256', 'sha256')}\n"
        "      scopes: ingest\n"
    )
    (entry,) = _tokens_from(tmp_path, body)
    assert entry.name == "ci" and entry.scopes == {"ingest"} and entry.digest == b"\xab" * 32
    path = tmp_path / "lakelens.yaml"
    assert load_settings(env={"LAKELENS_CONFIG": str(path)}).session_hours == 1.5
    path.write_text("server:\n  session_hours: soon\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a number of hours above 0"):
        load_settings(env={"LAKELENS_CONFIG": str(path)})


def test_serve_with_a_bad_tokens_section_fails_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "lakelens.yaml"
    path.write_text(
        f"server:\n  tokens:\n    - name: ci\n      hash: {GOOD_HASH}\n      scopes: [root]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "lakelens", "serve", "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        env={**_env(), "LAKELENS_CONFIG": str(path)},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"Error: server.tokens[0] (ci) in {path}: Unknown scope 'root': use ingest, read or admin."
    ]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("LAKELENS_")}
