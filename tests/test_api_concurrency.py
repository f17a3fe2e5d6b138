"""Optimistic concurrency: ETag from the version, If-Match required (428) and checked (412)."""

import pytest

from milestones import services
from milestones.models import Milestone, Plan
from tests import test_api_support as support
from tests.factories import make_deliverable, make_milestone, make_status_update
from tests.test_api_support import if_match, url

api, no_throttle = support.api, support.no_throttle  # fixtures the API tests share


@pytest.fixture
def member(world, api):
    return api.token(world.member)


def detail(obj) -> str:
    return url(f"milestones/{obj.pk}/")


def test_single_objects_carry_an_etag_from_their_version(world, member):
    response = member.get(detail(world.milestone))
    assert response["ETag"] == '"1"'
    services.update_object(world.milestone, actor=world.admin, title="Moved on")
    assert member.get(detail(world.milestone))["ETag"] == '"2"'


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_write_without_if_match_is_428_and_changes_nothing(world, member, method):
    body = {"plan": world.plan.pk, "title": "Mine"} if method != "delete" else None
    response = getattr(member, method)(detail(world.milestone), body)
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    milestone = Milestone.objects.get(pk=world.milestone.pk)
    assert (milestone.title, milestone.version) == ("Export queue ready", 1)


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_stale_if_match_is_412_with_the_current_object(world, member, method):
    stale = if_match(world.milestone)
    services.update_object(world.milestone, actor=world.admin, title="Someone else's")
    body = {"plan": world.plan.pk, "title": "Mine"} if method != "delete" else None
    response = getattr(member, method)(detail(world.milestone), body, **stale)
    assert response.status_code == 412
    assert response["ETag"] == '"2"'
    current = response.json()
    assert (current["title"], current["version"]) == ("Someone else's", 2)
    assert current["deliverables"] == []  # the full representation, as a GET shows it
    assert Milestone.objects.get(pk=world.milestone.pk).title == "Someone else's"


def test_the_right_if_match_succeeds_and_returns_the_new_etag(world, member):
    response = member.patch(detail(world.milestone), {"title": "Mine"}, **if_match(world.milestone))
    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    response = member.put(
        detail(world.milestone),
        {"plan": world.plan.pk, "title": "Mine again"},
        HTTP_IF_MATCH=response["ETag"],
    )
    assert response.status_code == 200
    assert response["ETag"] == '"3"'
    response = member.delete(detail(world.milestone), HTTP_IF_MATCH='"3"')
    assert response.status_code == 204
    assert not Milestone.objects.filter(pk=world.milestone.pk).exists()


def test_two_editors_of_one_version_cannot_both_win(world, api):
    """No lost update: the second save, based on the same version, is refused."""
    first, second = api.token(world.member), api.session(world.admin)
    seen = first.get(detail(world.milestone))["ETag"]
    assert second.get(detail(world.milestone))["ETag"] == seen
    assert (
        first.patch(detail(world.milestone), {"title": "A"}, HTTP_IF_MATCH=seen).status_code == 200
    )
    response = second.patch(detail(world.milestone), {"summary": "B"}, HTTP_IF_MATCH=seen)
    assert response.status_code == 412
    assert response.json()["title"] == "A"
    milestone = Milestone.objects.get(pk=world.milestone.pk)
    assert (milestone.title, milestone.summary) == ("A", "")


def test_star_and_lists_of_etags_and_weak_tags(world, member):
    assert (
        member.patch(detail(world.milestone), {"title": "A"}, HTTP_IF_MATCH="*").status_code == 200
    )
    response = member.patch(detail(world.milestone), {"title": "B"}, HTTP_IF_MATCH='"9", W/"2"')
    assert response.status_code == 200


def test_a_refused_write_does_not_bump_the_version(world, member):
    response = member.patch(
        detail(world.milestone), {"target_date": "2000-01-01"}, **if_match(world.milestone)
    )
    assert response.status_code == 400
    assert member.get(detail(world.milestone))["ETag"] == '"1"'


def test_bad_input_is_a_400_before_the_version_is_looked_at(world, member):
    response = member.patch(detail(world.milestone), {"status": "nope"}, HTTP_IF_MATCH='"99"')
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    ["plans", "deliverables", "criteria", "risks", "blockers"],
)
def test_every_editable_object_needs_if_match(world, member, path):
    from tests.test_api_permissions import BUILD

    obj = BUILD[path](world)
    response = member.patch(url(f"{path}/{obj.pk}/"), {})
    assert response.status_code == 428
    response = member.patch(url(f"{path}/{obj.pk}/"), {}, HTTP_IF_MATCH='"0"')
    assert response.status_code == 412
    assert response.json()["id"] == obj.pk
    response = member.delete(url(f"{path}/{obj.pk}/"), HTTP_IF_MATCH='"0"')
    assert response.status_code == 412
    response = member.patch(url(f"{path}/{obj.pk}/"), {}, **if_match(obj))
    assert response.status_code == 200


def test_append_only_objects_take_if_match_when_given(world, member):
    """Status updates and dependencies are never edited: deleting them needs no If-Match,
    but a stale one given is still refused."""
    update = make_status_update(world.milestone, world.admin)
    etag = member.get(url(f"status-updates/{update.pk}/"))["ETag"]
    assert (
        member.delete(url(f"status-updates/{update.pk}/"), HTTP_IF_MATCH='"c1"').status_code == 412
    )
    assert member.delete(url(f"status-updates/{update.pk}/"), HTTP_IF_MATCH=etag).status_code == 204
    second = make_milestone(world.plan, world.admin)
    link = services.add_dependency(world.milestone, second, actor=world.admin)
    assert member.put(url(f"dependencies/{link.pk}/"), {"lag_days": 2}).status_code == 405
    assert member.delete(url(f"dependencies/{link.pk}/")).status_code == 204


def test_create_returns_the_etag_of_the_new_object(world, member):
    response = member.post(url("deliverables/"), {"milestone": world.milestone.pk, "title": "D"})
    assert response["ETag"] == '"1"'
    deliverable = make_deliverable(world.milestone)
    plan = Plan.objects.get(pk=world.plan.pk)
    assert member.get(url(f"deliverables/{deliverable.pk}/"))["ETag"] == '"1"'
    assert member.get(url(f"plans/{plan.pk}/"))["ETag"] == f'"{plan.version}"'
