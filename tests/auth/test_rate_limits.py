"""Per-IP limits on sign-in and the password reset: counted in memory by default, in Redis when REDIS_URL
is set (so that every web host shares one count). The Redis test uses the real server on 127.0.0.1.

Each test also asks for the session's ``app``: its tables are emptied after the test.
"""

import ast
import os
import uuid
from pathlib import Path

import pytest

import portal
from portal.extensions import LIMITED_METHODS, limiter
from tests.conftest import UNUSABLE_TWILIO
from tests.fixtures.apps import separate_app
from tests.pages import csrf_token, get_page, parse

REDIS_URL = "redis://127.0.0.1:6379/0"


def _config(database_url, **extra):
    return {
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
        "PUBLIC_BASE_URL": "https://portal.test", "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "test-token", "TWILIO_FROM": "NHS Appts", "TWILIO_API_BASE": UNUSABLE_TWILIO,
        "RATELIMIT_ENABLED": True, "REDIS_URL": "", "PASSWORD_RESET_ANSWER_SECONDS": 0, **extra,
    }


def _post(client, url, data, ip):
    page = get_page(client, url)
    return client.post(url, data={**data, "csrf_token": csrf_token(page)}, environ_base={"REMOTE_ADDR": ip})


def _redis():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as problem:
        client.close()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL} ({problem}); CI=true, so this fails", pytrace=False)
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {problem}")
    return client


def test_without_redis_the_limits_are_counted_in_memory(app, database_url):
    with separate_app(_config(database_url)) as app:
        assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
        assert type(limiter.storage).__name__ == "MemoryStorage"
        client = app.test_client()
        for _ in range(20):
            response = _post(client, "/sign-in", {"identifier": "nobody@test.nhs.uk", "password": "x"}, "10.1.1.1")
            assert response.status_code == 200
        refused = _post(client, "/sign-in", {"identifier": "nobody@test.nhs.uk", "password": "x"}, "10.1.1.1")
        assert refused.status_code == 429
        assert "Too many attempts" in refused.get_data(as_text=True)
        # Per IP: another address is not held back.
        other = _post(client, "/sign-in", {"identifier": "nobody@test.nhs.uk", "password": "x"}, "10.1.1.2")
        assert other.status_code == 200


def test_asking_for_reset_codes_is_limited_per_ip(app, database_url):
    with separate_app(_config(database_url)) as app:
        client = app.test_client()
        statuses = [_post(client, "/forgot-password", {"identifier": "07911 123459"}, "10.2.2.2").status_code
                    for _ in range(6)]
        assert statuses == [302] * 5 + [429]


def test_the_refusal_says_how_long_to_wait(app, database_url, monkeypatch):
    """Past the hourly limit on reset codes the wait is up to an hour: the page once said "a minute" whatever it was."""
    import time

    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # the limiter's storage and its headers read this clock
    with separate_app(_config(database_url)) as app:
        client = app.test_client()
        statuses = []
        for attempt in range(1, 21):
            statuses.append(_post(client, "/forgot-password", {"identifier": "07911 123459"}, "10.7.7.7").status_code)
            if attempt % 5 == 0:
                clock[0] += 61  # past the per-minute limit, not the hourly one
        assert statuses == [302] * 20
        refused = _post(client, "/forgot-password", {"identifier": "07911 123459"}, "10.7.7.7")
        assert refused.status_code == 429
        # The hour began with the first request, 4 x 61 seconds ago: 3,356 seconds are left.
        assert int(refused.headers["Retry-After"]) in (3356, 3357)
        text = parse(refused).main.get_text(" ", strip=True)
        assert "please wait 56 minutes before you try again" in text
        assert "call the service on" in text
        for _ in range(5):
            _post(client, "/forgot-password", {"identifier": "07911 123459"}, "10.7.7.8")
        refused = _post(client, "/forgot-password", {"identifier": "07911 123459"}, "10.7.7.8")
        assert "please wait a minute before you try again" in parse(refused).main.get_text(" ", strip=True)


def test_the_code_and_new_password_steps_are_limited_per_ip(app, database_url):
    with separate_app(_config(database_url)) as app:
        client = app.test_client()
        _post(client, "/forgot-password", {"identifier": "07911 123459"}, "10.3.3.3")
        statuses = [_post(client, "/forgot-password/code", {"code": "123456"}, "10.3.3.3").status_code
                    for _ in range(11)]
        assert statuses == [200] * 10 + [429]


def test_with_redis_url_the_limits_are_shared_through_redis(app, database_url):
    redis = _redis()
    prefix = f"portal-test-{uuid.uuid4().hex[:12]}"
    try:
        config = _config(database_url, REDIS_URL=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix)
        with separate_app(config) as app:
            assert app.config["RATELIMIT_STORAGE_URI"] == REDIS_URL
            assert type(limiter.storage).__name__ == "RedisStorage"
            client = app.test_client()
            statuses = [_post(client, "/forgot-password", {"identifier": "07911 123459"}, "10.4.4.4").status_code
                        for _ in range(5)]
            assert statuses == [302] * 5
            assert any(redis.scan_iter(match=f"*{prefix}*")), "no rate-limit keys in Redis under the prefix"
        # Another host (a new app, its own process memory) sees the same count: the sixth try is refused.
        with separate_app(config) as other_host:
            refused = _post(other_host.test_client(), "/forgot-password", {"identifier": "07911 123459"}, "10.4.4.4")
            assert refused.status_code == 429
    finally:
        for key in redis.scan_iter(match=f"*{prefix}*"):
            redis.delete(key)
        redis.close()


def test_the_session_app_is_left_as_it_was(app, client, monkeypatch):
    """The separate apps above must not switch limits on for the rest of the suite."""
    monkeypatch.setitem(app.config, "PASSWORD_RESET_ANSWER_SECONDS", 0)
    assert app.config["RATELIMIT_ENABLED"] is False
    assert limiter.enabled is False
    statuses = {_post(client, "/forgot-password", {"identifier": "07911 123459"}, "10.5.5.5").status_code
                for _ in range(8)}
    assert statuses == {302}


def _limit_decorators():
    """Every ``limiter.limit(...)`` call in the portal's source, with the file it is in."""
    for path in sorted(Path(portal.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "limit"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "limiter"):
                yield path.name, node


def test_every_limit_is_on_a_method_the_limiter_checks():
    """Page views skip the limiter (LIMITED_METHODS): a limit on any other method would never count."""
    found = 0
    for name, call in _limit_decorators():
        methods = next((k.value for k in call.keywords if k.arg == "methods"), None)
        assert methods is not None, f"{name}:{call.lineno}: a limit without methods= would cover page views too"
        assert set(ast.literal_eval(methods)) <= LIMITED_METHODS, f"{name}:{call.lineno}"
        found += 1
    assert found >= 10  # the sign-in, activation, reset, MFA and mobile-code limits


def test_an_address_held_back_from_signing_in_still_gets_the_page(app, database_url):
    with separate_app(_config(database_url)) as app:
        client = app.test_client()
        statuses = [_post(client, "/sign-in", {"identifier": "nobody@test.nhs.uk", "password": "x"},
                          "10.6.6.6").status_code for _ in range(21)]
        assert statuses[-1] == 429
        assert client.get("/sign-in", environ_base={"REMOTE_ADDR": "10.6.6.6"}).status_code == 200
