"""Every list costs a fixed number of SQL queries, whatever the page size and the data size;
a milestone read carries its whole spec."""

import datetime
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from milestones import services
from milestones.models import Activity, Dependency, Milestone, today
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
# and the page's prefetches (milestones: deliverables, all their criteria, and the sign-off
# roles and decisions). Sign-off lists: tests/test_api_signoffs.py.
BUDGETS = {
    "teams": 4,
    "plans": 4,
    "milestones": 8,
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


def test_the_fast_reader_and_the_serializer_agree(world, api, rf):
    """api.readers builds milestone reads from rows; MilestoneSerializer defines the shape."""
    from api.readers import annotate_rows, rows
    from api.serializers import MilestoneSerializer
    from api.views import MilestoneViewSet

    one_of_everything(world)
    make_criterion(world.admin, milestone=world.milestone, target=10, comparator=">=", actual=12)
    Milestone.objects.filter(pk=world.milestone.pk).update(
        health="at_risk",
        health_reasons=[
            {"code": "stale_update", "health": "at_risk", "message": "Old.", "link": "#"}
        ],
        forecast_finish=today() + datetime.timedelta(days=31),
        owner=world.member,
    )
    request = rf.get("/")
    request.user = world.member
    view = MilestoneViewSet(request=request, format_kwarg=None, action="list")
    instances = list(view.serializer_queryset())
    expected = MilestoneSerializer(instances, many=True, context={"request": request}).data
    fast = rows(list(annotate_rows(view.get_queryset())))
    assert [row["id"] for row in fast] == [row["id"] for row in expected]
    assert fast == [dict(row) for row in _plain(expected)]


def _plain(value):
    """ReturnDict/OrderedDict → dict, recursively, for comparison."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
