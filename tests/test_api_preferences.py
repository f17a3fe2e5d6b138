"""`/api/v1/me/notification-preferences/`: the caller's own e-mail preferences and time zone,
for integrations (the page is notifications/views.py). Who may call it is in the permission
matrix (tests/test_api_permissions.py)."""

import json

import pytest

from accounts.models import Membership, Role, User
from notifications.models import NotificationPreferences
from tests import test_api_support as support
from tests.factories import add_member, make_plan
from tests.test_api_support import url

api, no_throttle = support.api, support.no_throttle  # fixtures the API tests share

PATH = url("me/notification-preferences/")
EVERYTHING = {
    "digest_enabled": True,
    "digest_weekday": 2,
    "digest_hour": 7,
    "digest_when_empty": "skip",
    "at_risk_alerts": False,
    "signoff_requests": True,
    "signoff_decisions": False,
    "update_reminders": True,
    "completion_notices": False,
    "muted_plans": [],
    "time_zone": "Europe/Berlin",
}


def saved(user) -> NotificationPreferences:
    return NotificationPreferences.objects.get(user=user)


def test_a_user_who_never_chose_reads_the_defaults_without_a_row_being_made(world, api):
    response = api.token(world.viewer).get(PATH)
    assert response.status_code == 200
    assert response.json() == {
        "digest_enabled": True,
        "digest_weekday": 0,
        "digest_hour": 8,
        "digest_when_empty": "short",
        "at_risk_alerts": True,
        "signoff_requests": True,
        "signoff_decisions": True,
        "update_reminders": True,
        "completion_notices": True,
        "muted_plans": [],
        "time_zone": "UTC",
    }
    assert not NotificationPreferences.objects.exists()


def test_put_replaces_everything_and_patch_changes_what_it_names(world, api):
    client = api.token(world.viewer)  # a viewer chooses their own e-mails too
    body = {**EVERYTHING, "muted_plans": [world.plan.pk]}
    response = client.put(PATH, body)
    assert response.status_code == 200, response.content
    assert response.json() == body
    preferences = saved(world.viewer)
    assert (preferences.digest_weekday, preferences.digest_hour) == (2, 7)
    assert list(preferences.muted_plans.all()) == [world.plan]
    assert User.objects.get(pk=world.viewer.pk).time_zone == "Europe/Berlin"

    patched = client.patch(PATH, {"digest_hour": 18, "muted_plans": []})
    assert patched.status_code == 200, patched.content
    assert patched.json() == {**body, "digest_hour": 18, "muted_plans": []}
    assert saved(world.viewer).muted_plans.count() == 0
    assert client.get(PATH).json() == patched.json()


def test_put_needs_every_field(world, api):
    response = api.token(world.member).put(PATH, {"digest_hour": 9})
    assert response.status_code == 400
    missing = set(EVERYTHING) - {"digest_hour"}
    assert set(response.json()) == missing
    assert all(messages == ["This field is required."] for messages in response.json().values())
    assert not NotificationPreferences.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("digest_hour", 24),
        ("digest_hour", -1),
        ("digest_hour", "eight"),
        ("digest_weekday", 7),
        ("digest_when_empty", "never"),
        ("at_risk_alerts", "perhaps"),
        ("time_zone", "Mars/Olympus_Mons"),
        ("time_zone", ""),
        ("muted_plans", "1"),
        ("muted_plans", [0]),
        ("muted_plans", [1.5]),
    ],
)
def test_bad_values_are_400_under_their_field_and_nothing_is_saved(world, api, field, value):
    client = api.token(world.member)
    response = client.patch(PATH, {"time_zone": "Asia/Tokyo", "digest_hour": 6, field: value})
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert not NotificationPreferences.objects.exists()
    assert User.objects.get(pk=world.member.pk).time_zone == "UTC"


def test_read_only_and_unknown_fields_are_refused_by_name(world, api):
    response = api.token(world.member).patch(PATH, {"user": world.admin.pk, "colour": "red"})
    assert response.status_code == 400
    assert response.json() == {"user": ["Unknown field."], "colour": ["Unknown field."]}


def test_another_teams_plan_cannot_be_muted_and_nothing_half_saves(world, api):
    theirs = make_plan(world.other_team, world.outsider, title="Their secret plan")
    client = api.token(world.member)
    response = client.patch(PATH, {"digest_hour": 5, "muted_plans": [world.plan.pk, theirs.pk]})
    assert response.status_code == 400
    assert list(response.json()) == ["muted_plans"]
    assert "Their secret plan" not in response.content.decode()
    assert client.get(PATH).json()["digest_hour"] == 8


def test_mutes_in_a_team_you_left_are_kept_but_never_shown(world, api):
    """Like the preferences page: they hold again if the user comes back."""
    other_plan = make_plan(world.other_team, world.outsider)
    add_member(world.other_team, world.member, Role.MEMBER)
    client = api.token(world.member)
    body = {"muted_plans": [world.plan.pk, other_plan.pk]}
    assert client.patch(PATH, body).json()["muted_plans"] == sorted(body["muted_plans"])
    Membership.objects.filter(team=world.other_team, user=world.member).delete()

    assert api.token(world.member).get(PATH).json()["muted_plans"] == [world.plan.pk]
    cleared = api.token(world.member).patch(PATH, {"muted_plans": []})
    assert cleared.json()["muted_plans"] == []
    assert list(saved(world.member).muted_plans.all()) == [other_plan]


def test_each_token_reads_and_writes_only_its_own_users_preferences(world, api):
    api.token(world.admin).patch(PATH, {"digest_hour": 6, "time_zone": "Asia/Tokyo"})
    mine = api.token(world.member).get(PATH).json()
    assert (mine["digest_hour"], mine["time_zone"]) == (8, "UTC")
    assert saved(world.admin).digest_hour == 6
    assert not NotificationPreferences.objects.filter(user=world.member).exists()


def test_reads_cost_the_same_queries_however_many_plans_are_muted(
    world, api, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api.token(world.member)
    client.patch(PATH, {"muted_plans": [world.plan.pk]})
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(PATH).json()["muted_plans"]) == 1
    plans = [make_plan(world.team, world.admin).pk for _ in range(25)]
    client.patch(PATH, {"muted_plans": plans})
    # Token, the caller's teams, the preferences row, the muted plans.
    with django_assert_max_num_queries(4):
        assert len(client.get(PATH).json()["muted_plans"]) == 25
    with CaptureQueriesContext(connection) as many:
        client.get(PATH)
    assert len(few) == len(many)


def test_the_schema_documents_the_endpoint_and_its_real_errors(api):
    schema = json.loads(
        api.anonymous().get(url("schema/"), HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    operations = schema["paths"]["/api/v1/me/notification-preferences/"]
    assert set(operations) == {"get", "put", "patch"}
    assert set(operations["get"]["responses"]) == {"200", "401", "406", "429"}
    for method in ("put", "patch"):
        assert set(operations[method]["responses"]) == {
            "200", "400", "401", "403", "406", "409", "413", "429"
        }  # fmt: skip
        assert not [p for p in operations[method].get("parameters", []) if p["name"] == "If-Match"]
    component = schema["components"]["schemas"]["NotificationPreferences"]
    assert set(component["properties"]) == set(EVERYTHING)
    assert component["properties"]["digest_hour"]["maximum"] == 23
    put_body = schema["components"]["schemas"]["NotificationPreferencesRequest"]
    assert set(put_body["required"]) == set(EVERYTHING)
    assert put_body["additionalProperties"] is False
