"""Every list costs a fixed number of SQL queries, whatever the page size and the data size;
a milestone read carries its whole spec."""

import datetime
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from milestones import services, signoffs
from milestones.models import Activity, Deliverable, Dependency, Milestone, today
from tests import test_api_support as support
from tests.factories import (
    grow_team,
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_risk,
    make_status_update,
)
from tests.test_api_support import results, url

api, no_throttle = support.api, support.no_throttle  # fixtures the API tests share

# Queries per list request with a token: the token, the caller's roles, the count, the page,
# and the page's prefetches (milestones: deliverables, all their criteria, grouped risk and
# blocker counts, and the sign-off roles and decisions). Sign-off lists: tests/test_api_signoffs.py.
BUDGETS = {
    "teams": 4,
    "plans": 4,
    "milestones": 10,
    "deliverables": 5,
    "criteria": 4,
    "risks": 4,
    "blockers": 4,
    "dependencies": 4,
    "status-updates": 4,
    "activity": 4,
    "health": 4,
}


def one_of_everything(world):
    second = make_milestone(world.plan, world.admin)
    deliverable = make_deliverable(world.milestone, world.admin, owner=world.member)
    make_criterion(world.admin, deliverable=deliverable, checked=True, checked_by=world.admin)
    make_criterion(world.admin, milestone=world.milestone)
    make_risk(world.milestone, world.admin, owner=world.member)
    make_blocker(world.milestone, world.admin)
    make_status_update(world.milestone, world.admin)
    services.add_dependency(world.milestone, second, actor=world.admin)


def grow(world, times: int):
    """Many more rows of every kind (bulk inserts, as tests/factories.grow_team does)."""
    grow_team(world.team, world.admin, plans=times, milestones_per_plan=12)
    milestones = list(Milestone.objects.filter(team=world.team).order_by("pk"))
    Dependency.objects.bulk_create(
        Dependency(team=world.team, predecessor=a, successor=b)
        for a, b in itertools.pairwise(milestones[1:])
    )
    Activity.objects.bulk_create(
        Activity(team=world.team, milestone=m, plan_id=m.plan_id, actor=world.admin,
                 verb="updated", object_type="milestone", object_id=m.pk, object_repr=str(m))
        for m in milestones
    )  # fmt: skip


def measure(client, resource: str, page_size: int) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url(f"{resource}/"), {"page_size": page_size})
    return len(queries), len(results(response))


@pytest.mark.parametrize("resource", sorted(BUDGETS))
def test_list_queries_do_not_grow_with_page_or_data_size(
    world, api, resource, django_assert_max_num_queries
):
    one_of_everything(world)
    client = api.token(world.member)
    client.get(url("teams/"))  # the token's first use records last_used_at once
    small, small_rows = measure(client, resource, page_size=5)
    grow(world, 4)
    with django_assert_max_num_queries(BUDGETS[resource]):
        big, big_rows = measure(client, resource, page_size=200)
    assert big_rows > small_rows or resource == "teams"
    assert small == big, f"{resource}: {small} queries for {small_rows} rows, {big} for {big_rows}"


def test_session_requests_cost_the_session_and_user_instead_of_the_token(world, api):
    one_of_everything(world)
    client = api.session(world.member)
    small, _ = measure(client, "milestones", 5)
    grow(world, 2)
    assert measure(client, "milestones", 200)[0] == small <= BUDGETS["milestones"] + 1


def test_a_plan_of_50_milestones_with_their_spec_in_a_fixed_number_of_queries(world, api):
    """The bench's shape: 50 milestones × 6 deliverables × 2 criteria, in one plan."""
    from tests.factories import make_plan

    plan = make_plan(world.team, world.admin, title="Big")
    milestones = Milestone.objects.bulk_create(
        Milestone(team=world.team, plan=plan, key=f"BIG-{i + 1:03d}", title=f"M{i}", position=i,
                  target_date=today() + datetime.timedelta(days=i))
        for i in range(50)
    )  # fmt: skip
    from milestones.models import Criterion, Deliverable

    deliverables = Deliverable.objects.bulk_create(
        Deliverable(milestone=m, title=f"D{d}", position=d) for m in milestones for d in range(6)
    )
    Criterion.objects.bulk_create(
        Criterion(deliverable=d, text=f"C{c}", checked=c == 0)
        for d in deliverables
        for c in range(2)
    )
    client = api.token(world.member)
    client.get(url("teams/"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("milestones/"), {"plan": plan.key})
    rows = results(response)
    assert len(rows) == 50
    assert len(queries) == BUDGETS["milestones"]
    assert all(len(row["deliverables"]) == 6 for row in rows)
    assert all(len(d["criteria"]) == 2 for d in rows[0]["deliverables"])
    assert rows[0]["progress"] == 100 * 6 // 18  # 6 of 18 met: 12 criteria + 6 deliverables


def test_a_milestone_read_carries_its_whole_spec(world, api):
    one_of_everything(world)
    make_blocker(world.milestone, world.admin, resolved_on=today())
    body = api.token(world.viewer).get(url(f"milestones/{world.milestone.pk}/")).json()
    assert [len(d["criteria"]) for d in body["deliverables"]] == [1]
    deliverable = body["deliverables"][0]
    assert deliverable["owner"] == "max"
    assert deliverable["criteria"][0]["checked_by"] == "ada"
    assert [c["kind"] for c in body["success_criteria"]] == ["success"]
    assert (body["open_risks"], body["open_blockers"]) == (1, 1)
    assert body["progress"] == 1 * 100 // 3  # 1 of: 1 success, 1 acceptance, 1 deliverable
    for field in ("health", "health_reasons", "forecast_finish", "slip_days", "slack_days",
                  "is_critical", "signoffs", "version", "plan_key", "team"):  # fmt: skip
        assert field in body
    assert body["signoffs"]["required"] == 3  # the team's default roles, no holders yet
    assert body["signoffs"]["governed"] is False


def varied_milestones(world):
    """Milestones that exercise every branch of the reader: measured and ticked criteria,
    must and should, accepted and open deliverables, a completed milestone, an empty one,
    timestamps with and without microseconds, health reasons and a sign-off decision."""
    one_of_everything(world)
    make_criterion(world.admin, milestone=world.milestone, target=10, comparator=">=", actual=12)
    should = make_criterion(world.admin, milestone=world.milestone, level="should")
    services.set_criterion_checked(should, actor=world.admin, checked=True)  # with checked_at
    make_criterion(world.admin, milestone=world.milestone, target=5, comparator="<", actual=9)
    accepted = make_deliverable(world.milestone, world.admin, status="accepted")
    make_criterion(world.admin, deliverable=accepted, target="2.5", comparator="=", unit="s",
                   actual="2.5")  # fmt: skip
    make_milestone(world.plan, world.admin, title="Nothing to check yet")
    done = make_milestone(world.plan, world.admin, title="Done")
    Milestone.objects.filter(pk=done.pk).update(status="completed", completed_on=today())
    on_the_second = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
    Milestone.objects.filter(pk=world.milestone.pk).update(
        health="at_risk",
        health_reasons=[
            {"code": "stale_update", "health": "at_risk", "message": "Old.", "link": "#"}
        ],
        health_evaluated_at=on_the_second,
        created_at=on_the_second,
        forecast_finish=today() + datetime.timedelta(days=31),
        owner=world.member,
    )
    Deliverable.objects.filter(pk=accepted.pk).update(updated_at=on_the_second)
    role = signoffs.add_role(world.milestone, actor=world.admin, name="QA", holder=world.viewer)
    signoffs.decide(world.milestone, user=world.viewer, role=role, outcome="rejected",
                    comment="Not yet")  # fmt: skip


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin"])
def test_the_fast_reader_and_the_serializer_agree(world, api, rf, settings, time_zone):
    """api.readers builds milestone reads from rows; MilestoneSerializer defines the shape,
    with the progress counts from `Milestone.objects.with_progress()`."""
    from api.readers import annotate_rows, rows
    from api.serializers import MilestoneSerializer
    from api.views import MilestoneViewSet

    settings.TIME_ZONE = time_zone
    varied_milestones(world)
    request = rf.get("/")
    request.user = world.member
    view = MilestoneViewSet(request=request, format_kwarg=None, action="list")
    instances = list(view.serializer_queryset())
    expected = MilestoneSerializer(instances, many=True, context={"request": request}).data
    fast = rows(list(annotate_rows(view.get_queryset())))
    assert [row["id"] for row in fast] == [row["id"] for row in expected]
    # world.milestone: 1 of 3 musts, 2 of 2 acceptance criteria, 1 of 2 deliverables.
    assert sorted(row["progress"] for row in fast) == [0, 0, 4 * 100 // 7, 100]
    assert fast == [dict(row) for row in _plain(expected)]


MOMENT = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?(Z|[+-]\d\d:\d\d)$"


def test_the_list_response_shape_is_pinned(world, api):
    """What integrations parse: the keys, their order and the value formats of one
    milestone in `GET /api/v1/milestones/` (a change here is a change of the public API)."""
    import re

    one_of_everything(world)
    on_the_second = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
    Milestone.objects.filter(pk=world.milestone.pk).update(created_at=on_the_second)
    response = api.token(world.member).get(url("milestones/"), {"plan": world.plan.key})
    assert list(response.json()) == ["count", "next", "previous", "results"]
    row = next(r for r in results(response) if r["id"] == world.milestone.pk)
    assert list(row) == [
        "id", "team", "plan", "plan_key", "key", "title", "summary", "owner", "owning_group",
        "priority", "status", "start_date", "target_date", "baseline_target_date",
        "completed_on", "estimated_effort", "position", "rollback_plan", "retro_went_well",
        "retro_went_badly", "retro_actions", "retro_learnings", "progress", "health",
        "health_reasons", "health_evaluated_at", "forecast_start", "forecast_finish",
        "slip_days", "slack_days", "is_critical", "open_risks", "open_blockers",
        "deliverables", "success_criteria", "signoffs", "spec_check", "version", "created_at",
        "updated_at",
    ]  # fmt: skip
    assert list(row["spec_check"]) == ["score", "errors", "warnings", "gaps"]
    [deliverable] = row["deliverables"]
    assert list(deliverable) == [
        "id", "milestone", "title", "description", "owner", "owner_label", "status",
        "target_date", "position", "criteria", "version", "created_at", "updated_at",
    ]  # fmt: skip
    [acceptance] = deliverable["criteria"]
    [success] = row["success_criteria"]
    criterion_keys = [
        "id", "kind", "plan", "milestone", "deliverable", "text", "description", "category",
        "level", "target", "comparator", "unit", "actual", "checked", "checked_by", "checked_at",
        "met", "position", "version", "created_at", "updated_at",
    ]  # fmt: skip
    assert list(acceptance) == list(success) == criterion_keys
    assert list(row["signoffs"]) == [
        "governed", "approved", "required", "complete", "scope_hash", "roles"
    ]  # fmt: skip
    assert list(row["signoffs"]["roles"][0]) == [
        "id", "name", "holder", "decision", "with_exceptions", "decided_at", "stale"
    ]  # fmt: skip
    assert (row["team"], row["plan_key"], row["key"]) == ("rocket", world.plan.key, "MLS-001")
    assert row["created_at"] == "2026-03-01T12:00:00Z"  # no microseconds when there are none
    for moment in (row["updated_at"], deliverable["created_at"], acceptance["updated_at"]):
        assert re.match(MOMENT, moment), moment
    assert row["target_date"] == str(world.milestone.target_date)
    assert (acceptance["kind"], acceptance["checked"], acceptance["checked_by"]) == (
        "acceptance", True, "ada",
    )  # fmt: skip
    assert (success["kind"], success["target"], success["deliverable"]) == ("success", None, None)
    assert (row["progress"], row["open_risks"], row["open_blockers"]) == (33, 1, 1)


def _plain(value):
    """ReturnDict/OrderedDict → dict, recursively, for comparison."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
