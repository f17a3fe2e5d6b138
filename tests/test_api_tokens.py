"""Personal API tokens: stored as a hash only, expiry, revocation, last use, the command, the
tokens page, the lockout of an address that keeps sending bad tokens, and throttling."""

import datetime
import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from tests import test_api_support as support
from tests.test_api_support import url

api, no_throttle = support.api, support.no_throttle  # fixtures the API tests share

CHALLENGE = 'Bearer realm="api"'


def test_only_a_hash_of_the_token_is_stored(world):
    token, secret = ApiToken.objects.create_token(world.member, "CI")
    assert secret.startswith("mpt_") and len(secret) > 40
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(value) for value in row.values()}
    assert row["prefix"] == secret[:12]


def test_a_token_acts_as_its_user(world, api):
    response = api.token(world.viewer).get(url("teams/"))
    assert response.json()["results"][0]["role"] == "viewer"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("expired", "expired"),
        ("revoked", "revoked"),
        ("unknown", "Invalid"),
        ("inactive", "Invalid"),
    ],
)
def test_unusable_tokens_are_401_with_a_challenge(world, api, state, message):
    token, secret = ApiToken.objects.create_token(world.member, "CI", expires_days=1)
    if state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    elif state == "revoked":
        assert token.revoke()
    elif state == "unknown":
        secret = secret[:-4] + "AAAA"
    else:
        world.member.is_active = False
        world.member.save()
    response = api.bearer(secret).get(url("milestones/"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE
    assert message in response.json()["detail"]


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Basic dXNlcjpwYXNz", "Bearer  "])
def test_a_malformed_authorization_header_is_401(world, header):
    client = Client(HTTP_AUTHORIZATION=header)
    client.force_login(world.member)  # even with a session, a wrong header is not ignored
    response = client.get(url("milestones/"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE


def test_no_credentials_is_401_with_a_challenge(db, api):
    response = api.anonymous().get(url("milestones/"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE


def test_last_use_is_recorded(world, api):
    token, secret = ApiToken.objects.create_token(world.member, "CI")
    assert token.last_used_at is None
    assert api.bearer(secret).get(url("teams/")).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    first = token.last_used_at
    api.bearer(secret).get(url("teams/"))  # within the minute: no second write
    token.refresh_from_db()
    assert token.last_used_at == first


def test_the_command_prints_a_working_token_once(world, api):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_token", "max", "--name", "CI", "--expires-days", "30", stdout=out, stderr=err
    )
    secret = out.getvalue().strip()
    assert "shown only now" in err.getvalue()
    token = ApiToken.objects.get(user=world.member)
    assert token.name == "CI"
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    left = token.expires_at - timezone.now()
    assert datetime.timedelta(days=29) < left <= datetime.timedelta(days=30)
    assert api.bearer(secret).get(url("teams/")).status_code == 200


def test_the_command_refuses_unknown_users_and_bad_expiry(world):
    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_token", "nobody", "--name", "CI", stdout=io.StringIO())
    with pytest.raises(CommandError, match="expires-days"):
        call_command(
            "create_api_token", "max", "--name", "CI", "--expires-days", "0", stdout=io.StringIO()
        )


# --- The tokens page --------------------------------------------------------------------------


def test_the_tokens_page_needs_a_login(db):
    response = Client().get("/tokens/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_making_a_token_shows_it_once(world, api):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.member)
    page = client.get("/tokens/")
    assert page.status_code == 200
    csrf = page.cookies["csrftoken"].value
    response = client.post(
        "/tokens/", {"name": "Chat bot", "expires_in": "30", "csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 201
    token = ApiToken.objects.get(user=world.member)
    secret = response.context["secret"]
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.expires_at is not None
    again = client.get("/tokens/").content.decode()
    assert secret not in again
    assert "Chat bot" in again and token.prefix in again
    assert api.bearer(secret).get(url("teams/")).status_code == 200


def test_the_page_refuses_a_post_without_csrf(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.member)
    assert client.post("/tokens/", {"name": "X"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_a_nameless_token_is_refused(client_for, world):
    response = client_for(world.member).post("/tokens/", {"name": "  "})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_revoking_asks_first_then_the_token_stops_working(world, api, client_for):
    token, secret = ApiToken.objects.create_token(world.member, "CI")
    client = client_for(world.member)
    confirm = client.get(f"/tokens/{token.pk}/revoke/")
    assert confirm.status_code == 200
    assert "Revoke “CI”?" in confirm.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None  # asking changes nothing
    response = client.post(f"/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api.bearer(secret).get(url("teams/")).status_code == 401
    assert "Revoked" in client.get("/tokens/").content.decode()


def test_nobody_can_revoke_someone_elses_token(world, client_for):
    token, _ = ApiToken.objects.create_token(world.member, "CI")
    assert client_for(world.admin).post(f"/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


# --- Session authentication ------------------------------------------------------------------


def test_session_writes_need_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.member)
    response = client.post(
        url("deliverables/"),
        {"milestone": world.milestone.pk, "title": "X"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    client.get("/tokens/")
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        url("deliverables/"),
        {"milestone": world.milestone.pk, "title": "X"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf,
    )
    assert response.status_code == 201


def test_token_requests_need_no_csrf(world, api):
    response = api.token(world.member).post(
        url("deliverables/"), {"milestone": world.milestone.pk, "title": "X"}
    )
    assert response.status_code == 201


# --- Lockout and throttling -------------------------------------------------------------------


def test_an_address_that_keeps_sending_bad_tokens_is_locked_out(world, api, settings):
    settings.LOGIN_LOCKOUT_FAILURES = 3
    _, good = ApiToken.objects.create_token(world.member, "CI")
    for _ in range(3):
        assert api.bearer("mpt_guess").get(url("teams/")).status_code == 401
    response = api.bearer(good).get(url("teams/"))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    # Another address is not affected.
    other = api.bearer(good)
    assert other.get(url("teams/"), REMOTE_ADDR="10.0.0.9").status_code == 200


def test_the_lockout_uses_accounts_lockout(world, api, monkeypatch):
    calls = []

    class Recorder:
        def client_ip(self, request):
            return "203.0.113.5"

        def is_locked(self, key):
            calls.append(("is_locked", key))
            return False

        def record_failure(self, key):
            calls.append(("record_failure", key))

        def seconds_left(self, key):
            return 0

    monkeypatch.setattr("api.authentication._lockout", Recorder)
    api.bearer("mpt_wrong").get(url("teams/"))
    assert calls == [
        ("is_locked", "api-token:203.0.113.5"),
        ("record_failure", "api-token:203.0.113.5"),
    ]


def test_each_token_has_its_own_rate_limit(world, api, settings):
    settings.API_THROTTLE_RATE = "3/minute"
    first, second = api.token(world.member), api.token(world.member)
    assert [first.get(url("teams/")).status_code for _ in range(3)] == [200, 200, 200]
    response = first.get(url("teams/"))
    assert response.status_code == 429
    assert "Retry-After" in response
    assert second.get(url("teams/")).status_code == 200
