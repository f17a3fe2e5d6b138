"""Login lockout after repeated failures (accounts/lockout.py and the login form)."""

import os
import re
import time
import uuid

import pytest
from django.urls import reverse

from accounts import lockout
from tests.factories import PASSWORD

LOGIN = reverse("accounts:login")
CACHE_CLASSES = {"locmem": "LocMemCache", "filebased": "FileBasedCache", "redis": "RedisCache"}
CACHE_BACKENDS = ["locmem", "filebased"] + (["redis"] if os.environ.get("REDIS_URL") else [])


@pytest.fixture(autouse=True, params=CACHE_BACKENDS)
def private_cache(request, settings, tmp_path):
    """Each test counts failures in its own empty cache, never the shared one. The in-memory
    and file backends are always tried, Redis (production's) when REDIS_URL is set."""
    backend = request.param
    location = {
        "locmem": "test-lockout",
        "filebased": str(tmp_path / "cache"),
        "redis": os.environ.get("REDIS_URL"),
    }
    settings.CACHES = {
        "default": {
            "BACKEND": f"django.core.cache.backends.{backend}.{CACHE_CLASSES[backend]}",
            "LOCATION": location[backend],
            # A fresh prefix instead of clear(): clearing Redis would flush the whole database.
            "KEY_PREFIX": f"test-lockout-{uuid.uuid4().hex}",
        }
    }
    settings.LOGIN_LOCKOUT_FAILURES = 3
    settings.LOGIN_LOCKOUT_WINDOW = 600
    settings.LOGIN_LOCKOUT_SECONDS = 300


@pytest.fixture
def clock(monkeypatch):
    """Move time forward: `clock(seconds)`. The cache and the lockout both read time.time()."""
    offset = [0.0]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    def advance(seconds):
        offset[0] += seconds

    return advance


def fail(client, login="max", times=1, **extra):
    response = None
    for _ in range(times):
        response = client.post(LOGIN, {"username": login, "password": "wrong"}, **extra)
    return response


def log_in(client, login="max", **extra):
    return client.post(LOGIN, {"username": login, "password": PASSWORD}, **extra)


# --- The module ----------------------------------------------------------------------------


def test_a_key_locks_after_the_allowed_failures():
    key = lockout.login_key("someone")
    for _ in range(2):
        lockout.record_failure(key)
        assert not lockout.is_locked(key)
    lockout.record_failure(key)
    assert lockout.is_locked(key)
    assert 299 <= lockout.seconds_left(key) <= 300


def test_reset_clears_failures_and_lock():
    key = lockout.login_key("someone")
    lockout.record_failure(key)
    lockout.record_failure(key)
    lockout.reset(key)
    lockout.record_failure(key)
    assert not lockout.is_locked(key)
    for _ in range(2):
        lockout.record_failure(key)
    assert lockout.is_locked(key)
    lockout.reset(key)
    assert not lockout.is_locked(key)


def test_failures_older_than_the_window_are_forgotten(clock):
    key = lockout.login_key("someone")
    lockout.record_failure(key)
    lockout.record_failure(key)
    clock(601)
    lockout.record_failure(key)
    assert not lockout.is_locked(key)


def test_failures_spread_over_the_window_still_count(settings, clock):
    settings.LOGIN_LOCKOUT_WINDOW = 3600  # longer than the cache's default timeout (300 s)
    key = lockout.login_key("someone")
    for _ in range(2):
        lockout.record_failure(key)
        clock(400)
    lockout.record_failure(key)
    assert lockout.is_locked(key)


def test_a_lock_ends_after_the_lock_time_and_failures_meanwhile_do_not_extend_it(clock):
    key = lockout.login_key("someone")
    for _ in range(3):
        lockout.record_failure(key)
    clock(200)
    lockout.record_failure(key)
    assert lockout.is_locked(key)
    clock(101)
    assert not lockout.is_locked(key)
    assert lockout.seconds_left(key) == 0


def test_login_keys_ignore_case_and_spaces_and_addresses_group_ipv6_by_64():
    assert lockout.login_key("  Max@Example.COM ") == lockout.login_key("max@example.com")
    assert lockout.ip_key("2001:db8::1") == lockout.ip_key("2001:db8::ffff:1")
    assert lockout.ip_key("2001:db8:0:1::1") != lockout.ip_key("2001:db8::1")
    assert lockout.ip_key("::ffff:10.0.0.1") == lockout.ip_key("10.0.0.1")


def test_address_keys_allow_more_failures(settings):
    key = lockout.ip_key("10.0.0.1")
    for _ in range(11):
        lockout.record_failure(key)
    assert not lockout.is_locked(key)
    lockout.record_failure(key)  # 4 × 3
    assert lockout.is_locked(key)
    settings.LOGIN_LOCKOUT_IP_FAILURES = 2
    other = lockout.ip_key("10.0.0.2")
    lockout.record_failure(other)
    lockout.record_failure(other)
    assert lockout.is_locked(other)


def test_defaults_without_settings(settings):
    del settings.LOGIN_LOCKOUT_FAILURES
    del settings.LOGIN_LOCKOUT_SECONDS
    key = lockout.login_key("someone")
    for _ in range(4):
        lockout.record_failure(key)
    assert not lockout.is_locked(key)
    lockout.record_failure(key)
    assert lockout.is_locked(key)
    assert 899 <= lockout.seconds_left(key) <= 900


def test_the_client_address_is_the_proxys_last_forwarded_entry_only_behind_a_proxy(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert lockout.client_ip(request) == "10.9.9.9"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert lockout.client_ip(request) == "203.0.113.7"
    settings.LOGIN_LOCKOUT_TRUST_FORWARDED_FOR = False
    assert lockout.client_ip(request) == "10.9.9.9"


# --- The login page ------------------------------------------------------------------------


def test_repeated_failures_lock_the_login_and_say_when_to_try_again(world, client):
    first = fail(client, times=2)
    assert first.status_code == 200
    assert "do not match an account" in first.content.decode()
    locked = fail(client)
    page = locked.content.decode()
    assert locked.status_code == 429
    assert locked["Retry-After"] in {"299", "300"}
    assert "Too many failed log-in attempts. Try again in 5 minutes" in page
    assert "You can still reset your password" in page
    assert reverse("accounts:password_reset") in page


def test_the_right_password_is_refused_while_locked(world, client):
    fail(client, times=3)
    response = log_in(client)
    assert response.status_code == 429
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_ends_after_its_time(world, client, clock):
    fail(client, times=3)
    clock(301)
    response = log_in(client)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.member.pk)


def test_the_lock_holds_for_any_spelling_of_the_login(world, client):
    fail(client, login="max", times=3)
    response = log_in(client, login="  MAX ")
    assert response.status_code == 429


def test_an_unknown_login_locks_exactly_like_a_real_one(world, client):
    def outcome(response):
        errors = re.search(r'<div class="form-errors".*?</div>', response.content.decode(), re.S)
        return response.status_code, errors.group(0)

    real = [outcome(fail(client, login="max")) for _ in range(4)]
    unknown = [outcome(fail(client, login="nobody-here")) for _ in range(4)]
    assert real == unknown
    assert [status for status, _ in real] == [200, 200, 429, 429]


def test_a_successful_login_resets_the_count(world, client):
    fail(client, times=2)
    assert log_in(client).status_code == 302
    client.logout()
    fail(client, times=2)
    assert log_in(client).status_code == 302


def test_a_locked_login_does_not_lock_other_logins_from_the_same_address(world, client):
    fail(client, login="max", times=3)
    assert log_in(client, login="ada").status_code == 302


def test_one_address_trying_many_logins_is_locked_at_the_higher_threshold(world, client):
    for n in range(11):
        assert fail(client, login=f"guess{n}").status_code == 200
    assert fail(client, login="guess-last").status_code == 429
    response = log_in(client, login="ada")
    assert response.status_code == 429
    elsewhere = log_in(client, login="ada", REMOTE_ADDR="198.51.100.4")
    assert elsewhere.status_code == 302


def test_logging_in_does_not_reset_the_address_count(world, client):
    fail(client, login="guess1", times=2)
    for n in range(9):
        fail(client, login=f"other{n}")
    assert log_in(client, login="ada").status_code == 302  # 11 failures from here so far
    client.logout()
    assert fail(client, login="guess2").status_code == 429


def test_the_admin_login_form_locks_out_the_same_way(world, client, monkeypatch):
    from django.contrib import admin

    from accounts.forms import AdminLoginForm

    monkeypatch.setattr(admin.site, "login_form", AdminLoginForm)
    world.admin.is_staff = True
    world.admin.save()
    admin_login = reverse("admin:login")
    for _ in range(3):
        client.post(admin_login, {"username": "ada", "password": "wrong"})
    response = client.post(admin_login, {"username": "ada", "password": PASSWORD})
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert lockout.is_locked(lockout.login_key("ada"))
