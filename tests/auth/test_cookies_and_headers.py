"""The session cookie and security headers of an app started with production settings."""

import contextlib

import pytest

from tests.fixtures.apps import separate_app
from tests.pages import get_page, parse

PUBLIC = "https://portal.example.nhs.uk"


@contextlib.contextmanager
def _production(database_url, monkeypatch):
    """An app built as `PORTAL_ENV=production` builds it, from the environment."""
    for name, value in {
        "PORTAL_ENV": "production", "SECRET_KEY": "production-test-secret", "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": PUBLIC, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM": "NHS Appts", "TWILIO_API_BASE": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with separate_app({}) as production:
        assert production.config["PRODUCTION"] is True
        yield production


@pytest.fixture
def production_app(app, database_url, monkeypatch):
    with _production(database_url, monkeypatch) as production:
        yield production


def _set_cookie(response) -> str:
    cookies = [value for name, value in response.headers.items() if name == "Set-Cookie"]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_the_production_session_cookie_is_secure_host_only_httponly_and_lax(production_app):
    client = production_app.test_client()
    response = client.get("/sign-in", base_url=PUBLIC)
    assert response.status_code == 200
    cookie = _set_cookie(response)
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0].startswith("__Host-session=")
    # What the __Host- prefix demands (no Domain, Path=/, Secure), and what we add.
    assert {"Secure", "HttpOnly", "Path=/", "SameSite=Lax"} <= set(attributes)
    assert not any(a.lower().startswith("domain=") for a in attributes)
    assert not any(a.lower().startswith(("expires=", "max-age=")) for a in attributes), "remember-me stays off"


def test_production_sends_hsts_over_https(production_app):
    response = production_app.test_client().get("/sign-in", base_url=PUBLIC)
    directives = [d.strip() for d in response.headers["Strict-Transport-Security"].split(";")]
    assert directives[1:] == ["includeSubDomains"]
    assert int(directives[0].removeprefix("max-age=")) >= 365 * 24 * 3600  # at least a year


def test_production_redirects_plain_http_to_https(production_app):
    response = production_app.test_client().get("/sign-in", base_url="http://portal.example.nhs.uk")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PUBLIC}/sign-in"


@pytest.mark.parametrize("base_url", ["https://evil.example", "https://portal.example.nhs.uk.evil.example",
                                      "https://127.0.0.1", "http://evil.example"])
def test_production_answers_another_host_with_400(production_app, base_url):
    """Links built from the request (a redirect, an absolute address) would point at whatever Host it named."""
    for path in ("/sign-in", "/healthz", "/no-such-page"):
        response = production_app.test_client().get(path, base_url=base_url)
        assert response.status_code == 400, (path, response.status_code)
        assert "evil" not in response.headers.get("Location", "")
    page = parse(production_app.test_client().get("/sign-in", base_url=base_url))
    assert page.h1.get_text(strip=True) == "Something went wrong with that request"


def test_production_answers_its_own_host_on_any_port_and_the_extra_hosts(app, database_url, monkeypatch):
    monkeypatch.setenv("EXTRA_HOSTS", "10.0.1.23")
    with _production(database_url, monkeypatch) as production:
        client = production.test_client()
        assert client.get("/sign-in", base_url=f"{PUBLIC}:443").status_code == 200
        assert client.get("/healthz", base_url="https://10.0.1.23:8000").status_code == 200
        assert client.get("/healthz", base_url="https://10.0.1.24").status_code == 400


def test_development_sends_no_hsts_and_a_plain_cookie_name(client):
    response = client.get("/sign-in")
    assert "Strict-Transport-Security" not in response.headers
    cookie = _set_cookie(response)
    assert cookie.startswith("session=") and "Secure" not in cookie and "HttpOnly" in cookie


def test_the_session_app_still_serves_plain_http(client):
    """The production app above must not leave HTTPS redirects on for the rest of the suite."""
    get_page(client, "/sign-in")
