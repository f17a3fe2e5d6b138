"""Writes go through the services: model rules give 400 per field, nothing half-saves,
read-only and unknown fields are refused by name, and every change is logged."""

import datetime

import pytest

from accounts.models import Role
from milestones import services
from milestones.models import Activity, Criterion, Dependency, Milestone, Plan, today
from tests import test_api_support as support
from tests.factories import (
    add_member,
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_plan,
    make_team,
    make_user,
)
from tests.test_api_support import if_match, results, url

api, no_throttle = support.api, support.no_throttle  # fixtures the API tests share


def days(n: int) -> str:
    return str(today() + datetime.timedelta(days=n))


@pytest.fixture
def member(world, api):
    return api.token(world.member)


def test_it_creates_a_milestone_through_the_services(world, member):
    response = member.post(
        url("milestones/"),
        {"plan": world.plan.pk, "title": "Importer", "owner": "max", "target_date": days(30)},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"] == "MLS-002"  # generated with the team row locked
    assert body["baseline_target_date"] == days(30)
    assert body["team"] == "rocket"
    assert response["ETag"] == '"1"'
    assert response["Location"].endswith(f"/api/v1/milestones/{body['id']}/")
    activity = Activity.objects.get(object_type="milestone", object_id=body["id"])
    assert (activity.verb, activity.actor) == ("created", world.member)


def test_it_refuses_a_dependency_cycle_naming_it(world, member):
    second = make_milestone(world.plan, world.admin)
    third = make_milestone(world.plan, world.admin)
    services.add_dependency(world.milestone, second, actor=world.admin)
    services.add_dependency(second, third, actor=world.admin)
    response = member.post(
        url("dependencies/"), {"predecessor": third.pk, "successor": world.milestone.pk}
    )
    assert response.status_code == 400
    message = response.json()["predecessor"][0]
    assert "cycle" in message
    assert f"{third.key} → {world.milestone.key} → {second.key} → {third.key}" in message
    assert Dependency.objects.count() == 2


def test_it_refuses_a_self_dependency(world, member):
    response = member.post(
        url("dependencies/"), {"predecessor": world.milestone.pk, "successor": world.milestone.pk}
    )
    assert response.status_code == 400
    assert "itself" in response.json()["predecessor"][0]


def test_it_refuses_a_dependency_across_teams(world, api):
    both = add_member(world.team, make_user("bea"), Role.MEMBER)
    add_member(world.other_team, both, Role.MEMBER)
    theirs = make_milestone(make_plan(world.other_team, world.outsider), world.outsider)
    response = api.token(both).post(
        url("dependencies/"), {"predecessor": world.milestone.pk, "successor": theirs.pk}
    )
    assert response.status_code == 400
    assert "same team" in response.json()["predecessor"][0]


def test_dependency_create_and_delete_are_logged(world, member):
    second = make_milestone(world.plan, world.admin)
    response = member.post(
        url("dependencies/"),
        {"predecessor": world.milestone.pk, "successor": second.pk, "lag_days": 3},
    )
    assert response.status_code == 201
    link = response.json()
    assert (link["predecessor_key"], link["successor_key"], link["lag_days"]) == (
        world.milestone.key,
        second.key,
        3,
    )
    assert member.delete(url(f"dependencies/{link['id']}/")).status_code == 204
    verbs = list(
        Activity.objects.filter(object_type="dependency", object_id=link["id"]).values_list(
            "verb", flat=True
        )
    )
    assert sorted(verbs) == ["created", "deleted"]


def test_a_bad_date_range_is_a_400_on_the_field_and_nothing_is_saved(world, member):
    milestone = world.milestone
    response = member.patch(
        url(f"milestones/{milestone.pk}/"),
        {"title": "Changed too", "start_date": days(10), "target_date": days(5)},
        **if_match(milestone),
    )
    assert response.status_code == 400
    assert response.json() == {"target_date": ["The target date cannot be before the start date."]}
    milestone.refresh_from_db()
    assert milestone.title == "Export queue ready"
    assert milestone.version == 1
    response = member.post(
        url("plans/"),
        {"team": "rocket", "title": "Backwards", "start_date": days(9), "target_date": days(1)},
    )
    assert response.status_code == 400
    assert "target_date" in response.json()
    assert not Plan.objects.filter(title="Backwards").exists()


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("milestones", "status", "done"),
        ("milestones", "priority", "urgent"),
        ("deliverables", "status", "shipped"),
        ("risks", "likelihood", "certain"),
        ("criteria", "comparator", "≈"),
    ],
)
def test_an_unknown_enum_value_is_a_400_on_the_field(world, member, path, field, value):
    obj = {
        "milestones": lambda: world.milestone,
        "deliverables": lambda: make_deliverable(world.milestone),
        "risks": lambda: services.create_object(
            __import__("milestones.models", fromlist=["Risk"]).Risk(
                milestone=world.milestone, title="R"
            ),
            actor=world.admin,
        ),
        "criteria": lambda: make_criterion(milestone=world.milestone),
    }[path]()
    response = member.patch(url(f"{path}/{obj.pk}/"), {field: value}, **if_match(obj))
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert "valid choice" in response.json()[field][0]


@pytest.mark.parametrize(
    "field",
    [
        "health",
        "health_reasons",
        "forecast_finish",
        "forecast_start",
        "slack_days",
        "is_critical",
        "team",
        "version",
        "key",
        "baseline_target_date",
        "progress",
        "created_at",
        "signoffs",
    ],
)
def test_a_read_only_milestone_field_is_refused_by_name(world, member, field):
    value = {"is_critical": True, "version": 7, "slack_days": 3, "progress": 50}.get(field, "x")
    response = member.patch(
        url(f"milestones/{world.milestone.pk}/"),
        {"title": "T", field: value},
        **if_match(world.milestone),
    )
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert "read-only" in response.json()[field][0]
    world.milestone.refresh_from_db()
    assert world.milestone.title != "T"


def test_read_only_fields_are_refused_on_create_too(world, member):
    response = member.post(
        url("milestones/"), {"plan": world.plan.pk, "title": "X", "health": "off_track"}
    )
    assert response.status_code == 400
    assert list(response.json()) == ["health"]


def test_create_only_and_unknown_fields_are_refused_by_name(world, member):
    plan = world.plan
    response = member.patch(url(f"plans/{plan.pk}/"), {"team": "elsewhere"}, **if_match(plan))
    assert response.status_code == 400
    assert "cannot be changed" in response.json()["team"][0]
    response = member.patch(url(f"plans/{plan.pk}/"), {"colour": "red"}, **if_match(plan))
    assert response.json() == {"colour": ["Unknown field."]}


def test_an_owner_outside_the_team_is_refused(world, member, api):
    response = member.patch(
        url(f"milestones/{world.milestone.pk}/"), {"owner": "olga"}, **if_match(world.milestone)
    )
    # olga shares no team with max: for him she does not exist.
    assert response.status_code == 400 and "owner" in response.json()
    both = add_member(world.team, make_user("bea"), Role.MEMBER)
    add_member(world.other_team, both, Role.MEMBER)
    response = api.token(both).patch(
        url(f"milestones/{world.milestone.pk}/"), {"owner": "olga"}, **if_match(world.milestone)
    )
    assert response.status_code == 400
    assert response.json() == {"owner": ["The owner must be a member of the team."]}


def test_a_parent_in_another_team_does_not_exist(world, member):
    theirs = make_milestone(make_plan(world.other_team, world.outsider), world.outsider)
    response = member.post(url("deliverables/"), {"milestone": theirs.pk, "title": "Sneaky"})
    assert response.status_code == 400
    assert "does not exist" in response.json()["milestone"][0]
    response = member.post(url("deliverables/"), {"milestone": 1.5, "title": "Fraction"})
    assert response.status_code == 400


def test_a_criterion_needs_exactly_one_owner(world, member):
    deliverable = make_deliverable(world.milestone)
    response = member.post(
        url("criteria/"),
        {"milestone": world.milestone.pk, "deliverable": deliverable.pk, "text": "Both"},
    )
    assert response.status_code == 400
    assert "exactly one" in response.json()["non_field_errors"][0]


def test_ticking_a_criterion_records_who_and_when(world, member):
    criterion = make_criterion(milestone=world.milestone)
    response = member.patch(
        url(f"criteria/{criterion.pk}/"), {"checked": True}, **if_match(criterion)
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["checked"], body["met"], body["checked_by"]) == (True, True, "max")
    assert body["checked_at"]
    assert response["ETag"] == '"2"'
    assert Activity.objects.filter(object_type="criterion", verb="checked").exists()


def test_a_refused_tick_leaves_the_other_changes_unsaved(world, member):
    """Text and tick in one PATCH: the tick is refused, so the text is not saved either."""
    criterion = make_criterion(milestone=world.milestone, target=10, comparator=">=")
    response = member.patch(
        url(f"criteria/{criterion.pk}/"),
        {"text": "Renamed", "checked": True},
        **if_match(criterion),
    )
    assert response.status_code == 400
    assert "measured" in response.json()["checked"][0]
    criterion.refresh_from_db()
    assert (criterion.text, criterion.version) != ("Renamed", 2)
    assert criterion.text != "Renamed"
    assert not Activity.objects.filter(object_type="criterion", verb="updated").exists()


def test_a_measured_criterion_without_comparator_is_refused(world, member):
    response = member.post(
        url("criteria/"), {"milestone": world.milestone.pk, "text": "Fast", "target": "10"}
    )
    assert response.status_code == 400
    assert "comparator" in response.json()


def test_a_blocker_cannot_be_resolved_before_it_was_raised(world, member):
    blocker = make_blocker(world.milestone, raised_on=today())
    response = member.patch(
        url(f"blockers/{blocker.pk}/"), {"resolved_on": days(-3)}, **if_match(blocker)
    )
    assert response.status_code == 400
    assert "resolved_on" in response.json()


def test_a_plan_with_milestones_cannot_be_deleted(world, member):
    response = member.delete(url(f"plans/{world.plan.pk}/"), **if_match(world.plan))
    assert response.status_code == 409
    assert "milestones" in response.json()["detail"]
    assert Plan.objects.filter(pk=world.plan.pk).exists()


def test_updates_are_logged_with_what_changed(world, member):
    response = member.patch(
        url(f"milestones/{world.milestone.pk}/"),
        {"title": "Queue live", "status": "completed"},
        **if_match(world.milestone),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["completed_on"] == str(today())
    assert body["progress"] == 100
    activity = Activity.objects.filter(object_type="milestone", verb="updated").get()
    assert activity.actor == world.member
    assert activity.changes["title"] == ["Export queue ready", "Queue live"]


def test_a_status_update_is_posted_with_its_author(world, member):
    response = member.post(
        url("status-updates/"),
        {"milestone": world.milestone.pk, "percent_complete": 40, "confidence": 30,
         "narrative": "Slow week.", "health": "at_risk"},
    )  # fmt: skip
    assert response.status_code == 201
    assert response.json()["author"] == "max"
    response = member.post(
        url("status-updates/"),
        {"milestone": world.milestone.pk, "percent_complete": 140, "confidence": 30,
         "narrative": "Too much."},
    )  # fmt: skip
    assert response.status_code == 400
    assert "percent_complete" in response.json()


def test_moving_reorders_through_the_services(world, member):
    second = make_milestone(world.plan, world.admin)
    response = member.post(url(f"milestones/{second.pk}/move/"), {"offset": -1})
    assert response.status_code == 200
    assert response.json()["position"] == 0
    assert list(Milestone.objects.filter(plan=world.plan).order_by("position")) == [
        second,
        world.milestone,
    ]
    assert Activity.objects.filter(verb="moved").exists()


def test_a_malformed_body_is_a_400(world, member):
    response = member.generic("POST", url("plans/"), "{not json", content_type="application/json")
    assert response.status_code == 400
    response = member.post(url("plans/"), [1, 2], format="json")
    assert response.status_code == 400


# --- Filters, ordering and pagination ---------------------------------------------------------


@pytest.fixture
def spread(world):
    """Milestones that differ in every filterable way."""
    other_plan = make_plan(world.team, world.admin, title="Other")
    a = make_milestone(
        world.plan,
        world.admin,
        title="Alpha importer",
        owner=world.member,
        priority="critical",
        target_date=today() + datetime.timedelta(days=3),
    )
    b = make_milestone(
        other_plan,
        world.admin,
        title="Beta exporter",
        status="in_progress",
        target_date=today() + datetime.timedelta(days=60),
    )
    Milestone.objects.filter(pk=b.pk).update(health="at_risk")
    return {"a": a, "b": b, "other_plan": other_plan}  # fmt: skip


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"plan": "plan-001"}, {"world", "a"}),
        ({"status": ["in_progress", "completed"]}, {"b"}),
        ({"health": "at_risk"}, {"b"}),
        ({"owner": "max"}, {"a"}),
        ({"priority": "critical"}, {"a"}),
        ({"target_before": days(10)}, {"a"}),
        ({"target_after": days(50)}, {"b"}),
        ({"q": "IMPORT"}, {"a"}),
        ({"q": "MLS-003"}, {"b"}),
    ],
)
def test_milestone_filters(world, member, spread, params, names):
    keys = {row["key"] for row in results(member.get(url("milestones/"), params))}
    wanted = {
        {"world": world.milestone, "a": spread["a"], "b": spread["b"]}[name].key for name in names
    }
    assert keys == wanted


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"health": "bad"}, "health"),
        ({"plan": "not a key"}, "plan"),
        ({"target_before": "yesterday"}, "target_before"),
        ({"ordering": "colour"}, "ordering"),
        ({"target_after": ""}, "target_after"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "100000"}, "page_size"),
    ],
)
def test_a_filter_it_does_not_understand_is_a_400_naming_it(world, member, params, field):
    response = member.get(url("milestones/"), params)
    assert response.status_code == 400
    assert field in response.json()


def test_ordering_and_pagination(world, member, spread):
    rows = results(member.get(url("milestones/"), {"ordering": "-target"}))
    assert rows[0]["key"] == spread["b"].key
    page = member.get(url("milestones/"), {"page_size": 2, "ordering": "key"}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert member.get(url("milestones/"), {"page": 9}).status_code == 404


def test_other_lists_filter(world, member):
    deliverable = make_deliverable(world.milestone, status="accepted")
    make_deliverable(world.milestone)
    make_criterion(deliverable=deliverable, checked=True)
    make_criterion(milestone=world.milestone)
    make_blocker(world.milestone, resolved_on=today())
    make_blocker(world.milestone)
    assert len(results(member.get(url("deliverables/"), {"status": "accepted"}))) == 1
    assert len(results(member.get(url("criteria/"), {"kind": "acceptance"}))) == 1
    assert len(results(member.get(url("criteria/"), {"met": "true"}))) == 1
    assert len(results(member.get(url("criteria/"), {"milestone": world.milestone.pk}))) == 2
    assert len(results(member.get(url("blockers/"), {"resolved": "false"}))) == 1
    assert member.get(url("blockers/"), {"resolved": "maybe"}).status_code == 400
    activity = results(member.get(url("activity/"), {"milestone": world.milestone.pk}))
    assert activity and all(row["milestone"] == world.milestone.pk for row in activity)


def test_team_filter_and_teams_list_show_only_my_teams(world, member):
    make_team("Hidden")
    teams = results(member.get(url("teams/")))
    assert [(t["slug"], t["role"]) for t in teams] == [("rocket", "member")]
    assert results(member.get(url("plans/"), {"team": "elsewhere"})) == []
    assert member.get(url("teams/elsewhere/")).status_code == 404


def test_health_endpoint(world, member):
    Milestone.objects.filter(pk=world.milestone.pk).update(
        health="off_track",
        health_reasons=[
            {"code": "overdue", "health": "off_track", "message": "Late.", "link": "#"}
        ],
        forecast_finish=today() + datetime.timedelta(days=25),
        slack_days=-2,
        is_critical=True,
    )
    row = member.get(url(f"health/{world.milestone.pk}/")).json()
    assert row["health"] == "off_track"
    assert row["health_reasons"][0]["code"] == "overdue"
    assert row["slip_days"] == 5  # forecast 25 days out, baseline 20
    assert (row["slack_days"], row["is_critical"]) == (-2, True)
    assert [r["key"] for r in results(member.get(url("health/"), {"health": "off_track"}))] == [
        world.milestone.key
    ]


def test_it_never_writes_without_the_services(world, member, monkeypatch):
    """A write that bypassed the services would not be logged: every write here is."""
    before = Activity.objects.count()
    deliverable = member.post(url("deliverables/"), {"milestone": world.milestone.pk, "title": "D"})
    criterion = member.post(
        url("criteria/"), {"deliverable": deliverable.json()["id"], "text": "C", "checked": True}
    )
    assert criterion.status_code == 201
    assert criterion.json()["checked_by"] == "max"
    risk = member.post(url("risks/"), {"milestone": world.milestone.pk, "title": "R"})
    assert risk.status_code == 201
    assert Activity.objects.count() == before + 4  # created ×3 and checked
    assert Criterion.objects.get(pk=criterion.json()["id"]).position == 0


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("7315-12-16T19:45:11.28-23:47", 200),  # PostgreSQL refuses offsets past ±15:59
        ("9999-12-31T23:59:59-10:00", 400),  # beyond year 9999 in UTC
        ("2026-01-01T00:00:00Z", 200),
    ],
)
def test_odd_moments_in_filters_are_answered_not_crashed(world, member, moment, status):
    assert member.get(url("status-updates/"), {"since": moment}).status_code == status
    assert member.get(url("activity/"), {"before": moment}).status_code == status


def test_a_body_over_the_upload_limit_is_a_json_413_and_saves_nothing(world, member, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = Plan.objects.count()
    response = member.post(
        url("plans/"),
        {"team": world.team.slug, "title": "Huge", "description": "x" * 20_000},
        format="json",
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "The request body is too large."}
    assert Plan.objects.count() == before


def test_an_accept_header_the_api_cannot_answer_is_a_406(world, member):
    response = member.get(url("milestones/"), HTTP_ACCEPT="text/csv")
    assert response.status_code == 406
    assert "text/csv" not in response["Content-Type"]
