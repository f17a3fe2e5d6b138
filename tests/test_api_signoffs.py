"""Sign-offs through the API: `signoffs` in milestone reads, `signoff-roles/` (admins change
roles and holders) and `signoff-decisions/` (holders decide; never changed or deleted).

Every write goes through milestones/signoffs.py, the same functions as the pages.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from milestones import services, signoffs
from milestones.models import (
    ZERO_HASH,
    Milestone,
    MilestoneStatus,
    SignoffDecision,
    SignoffRole,
)
from tests import test_api_support as support
from tests.factories import make_deliverable, make_milestone, make_plan
from tests.test_api_support import if_match, results, url

api, no_throttle = support.api, support.no_throttle  # fixtures the API tests share

HOLDERS = {"Tech lead": "admin", "Product owner": "member", "Operations lead": "viewer"}


def roles_of(milestone) -> dict[str, SignoffRole]:
    return {role.name: role for role in milestone.signoff_roles.active()}


def hold(world, milestone=None) -> dict[str, SignoffRole]:
    """ada holds Tech lead, max Product owner, vic (a viewer) Operations lead."""
    milestone = milestone or world.milestone
    admin = world.outsider if milestone.team_id == world.other_team.pk else world.admin
    for name, role in roles_of(milestone).items():
        holder = admin if admin == world.outsider else getattr(world, HOLDERS[name])
        signoffs.set_holder(role, actor=admin, holder=holder)
    return roles_of(milestone)


@pytest.fixture
def held(world):
    return hold(world)


def decide(client, role, outcome="approved", **fields):
    return client.post(
        url("signoff-decisions/"), {"role": role.pk, "outcome": outcome, **fields}, format="json"
    )


# --- Reads -----------------------------------------------------------------------------------


def test_milestone_reads_carry_the_signoff_state(world, api, held):
    client = api.token(world.viewer)
    decide(api.token(world.admin), held["Tech lead"])
    detail = client.get(url(f"milestones/{world.milestone.pk}/")).json()["signoffs"]
    assert (detail["governed"], detail["approved"], detail["required"], detail["complete"]) == (
        True, 1, 3, False,
    )  # fmt: skip
    assert detail["scope_hash"] == Milestone.objects.get(pk=world.milestone.pk).scope_hash
    by_name = {role["name"]: role for role in detail["roles"]}
    assert by_name["Tech lead"]["holder"] == "ada"
    assert by_name["Tech lead"]["decision"] == "approved"
    assert by_name["Tech lead"]["decided_at"].endswith("Z")
    assert by_name["Operations lead"] == {
        "id": held["Operations lead"].pk, "name": "Operations lead", "holder": "vic",
        "decision": None, "with_exceptions": False, "decided_at": None, "stale": False,
    }  # fmt: skip
    listed = results(client.get(url("milestones/")))
    assert [row["signoffs"] for row in listed if row["id"] == world.milestone.pk] == [detail]


def test_a_scope_change_makes_the_decision_stale_in_reads(world, api, held):
    decide(api.token(world.admin), held["Tech lead"])
    services.update_object(
        Milestone.objects.get(pk=world.milestone.pk), actor=world.admin, title="New scope"
    )
    client = api.token(world.member)
    body = client.get(url(f"milestones/{world.milestone.pk}/")).json()["signoffs"]
    tech = next(role for role in body["roles"] if role["name"] == "Tech lead")
    assert (tech["decision"], tech["stale"], body["approved"]) == (None, True, 0)
    role = client.get(url(f"signoff-roles/{held['Tech lead'].pk}/")).json()
    assert (role["decision"], role["stale"]) == (None, True)
    [decision] = results(client.get(url("signoff-decisions/")))
    assert decision["current"] is False


# --- Decisions -------------------------------------------------------------------------------


def test_holders_decide_and_the_milestone_completes(world, api, held):
    first = decide(api.token(world.admin), held["Tech lead"], comment="Looks good")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["sequence"] == 1 and body["previous_hash"] == ZERO_HASH
    assert (body["decided_by"], body["role_name"], body["current"]) == ("ada", "Tech lead", True)
    assert body["milestone"] == world.milestone.pk and body["comment"] == "Looks good"
    assert body["scope_hash"] == Milestone.objects.get(pk=world.milestone.pk).scope_hash
    assert first["Location"].endswith(f"/api/v1/signoff-decisions/{body['id']}/")
    second = decide(api.token(world.member), held["Product owner"], scope_hash=body["scope_hash"])
    assert second.status_code == 201, second.content
    assert second.json()["previous_hash"] == body["record_hash"]
    # A viewer who holds a role decides too: the domain checks the holder, not the team role.
    third = decide(api.session(world.viewer), held["Operations lead"])
    assert third.status_code == 201, third.content
    assert third.json()["sequence"] == 3
    milestone = Milestone.objects.get(pk=world.milestone.pk)
    assert milestone.status == MilestoneStatus.COMPLETED and milestone.completed_on
    state = api.token(world.viewer).get(url(f"milestones/{milestone.pk}/")).json()
    assert state["status"] == "completed" and state["signoffs"]["complete"] is True
    assert signoffs.verify_chains() == (3, [])
    fetched = api.token(world.viewer).get(url(f"signoff-decisions/{body['id']}/"))
    assert fetched.status_code == 200 and fetched.json()["record_hash"] == body["record_hash"]


def test_only_the_holder_decides(world, api, held):
    response = decide(api.token(world.member), held["Tech lead"])
    assert response.status_code == 403
    assert "Only the holder of Tech lead" in response.json()["detail"]
    assert decide(api.token(world.viewer), held["Tech lead"]).status_code == 403
    # Another team's role does not exist for an outsider, whoever holds it.
    response = decide(api.token(world.outsider), held["Tech lead"])
    assert response.status_code == 400 and "role" in response.json()
    assert not SignoffDecision.objects.exists()


def test_approval_is_refused_with_reasons_until_exceptions_are_named(world, api, held):
    make_deliverable(world.milestone, world.admin, title="Queue worker")
    client = api.token(world.admin)
    refused = decide(client, held["Tech lead"])
    assert refused.status_code == 400
    messages = refused.json()["outcome"]
    assert any("Deliverable not accepted: Queue worker" in m for m in messages)
    unnamed = decide(client, held["Tech lead"], with_exceptions=True)
    assert unnamed.status_code == 400 and "comment" in unnamed.json()
    named = decide(client, held["Tech lead"], with_exceptions=True, comment="Worker ships later")
    assert named.status_code == 201, named.content
    assert named.json()["with_exceptions"] is True


def test_decision_rules_answer_400_per_field(world, api, held):
    client = api.token(world.admin)
    assert "comment" in decide(client, held["Tech lead"], "rejected").json()
    assert "outcome" in decide(client, held["Tech lead"], "maybe").json()
    moved = decide(client, held["Tech lead"], scope_hash="0" * 64)
    assert moved.status_code == 400 and "scope_hash" in moved.json()
    read_only = decide(client, held["Tech lead"], sequence=9)
    assert read_only.status_code == 400 and "sequence" in read_only.json()
    assert decide(client, held["Tech lead"]).status_code == 201
    duplicate = decide(client, held["Tech lead"])
    assert duplicate.status_code == 400 and "already recorded" in duplicate.json()["outcome"][0]
    assert SignoffDecision.objects.count() == 1


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_decisions_are_never_changed_or_deleted(world, api, held, method):
    decision = decide(api.token(world.admin), held["Tech lead"]).json()
    client = api.token(world.admin)
    response = getattr(client, method)(
        url(f"signoff-decisions/{decision['id']}/"), {"comment": "edited"}, format="json"
    )
    assert response.status_code == 405
    assert SignoffDecision.objects.get().comment == ""


# --- Roles -----------------------------------------------------------------------------------


def test_roles_are_added_by_team_admins_only(world, api):
    body = {"milestone": world.milestone.pk, "name": "Security", "holder": "max"}
    assert api.token(world.member).post(url("signoff-roles/"), body).status_code == 403
    assert api.token(world.viewer).post(url("signoff-roles/"), body).status_code == 403
    outsider = api.token(world.outsider).post(url("signoff-roles/"), body)
    assert outsider.status_code == 400 and "milestone" in outsider.json()
    assert not SignoffRole.objects.filter(name="Security").exists()
    created = api.token(world.admin).post(url("signoff-roles/"), body)
    assert created.status_code == 201, created.content
    assert (created.json()["holder"], created.json()["decision"]) == ("max", None)
    assert created["ETag"] == '"1"'
    again = api.token(world.admin).post(url("signoff-roles/"), body)
    assert again.status_code == 400 and "already has" in str(again.json())
    stranger = {**body, "name": "Legal", "holder": "olga"}
    assert api.token(world.admin).post(url("signoff-roles/"), stranger).status_code == 400


def test_changing_a_holder_is_admin_only_and_needs_if_match(world, api):
    role = roles_of(world.milestone)["Product owner"]
    path = url(f"signoff-roles/{role.pk}/")
    admin = api.token(world.admin)
    assert admin.patch(path, {"holder": "max"}).status_code == 428
    stale = admin.patch(path, {"holder": "max"}, HTTP_IF_MATCH='"99"')
    assert stale.status_code == 412 and stale.json()["holder"] is None
    assert (
        api.token(world.member).patch(path, {"holder": "max"}, **if_match(role)).status_code == 403
    )
    outsider = api.token(world.outsider).patch(path, {"holder": "olga"}, **if_match(role))
    assert outsider.status_code == 404
    renamed = admin.patch(path, {"name": "PO"}, **if_match(role))
    assert renamed.status_code == 400 and "name" in renamed.json()
    changed = admin.patch(path, {"holder": "max"}, **if_match(role))
    assert changed.status_code == 200, changed.content
    assert changed.json()["holder"] == "max" and changed["ETag"] == '"2"'
    assert admin.patch(path, {"holder": "olga"}, **if_match(role)).status_code == 400


def test_dropping_a_role_is_admin_only(world, api, held):
    role = held["Operations lead"]
    path = url(f"signoff-roles/{role.pk}/")
    assert api.token(world.member).delete(path, **if_match(role)).status_code == 403
    assert api.token(world.outsider).delete(path, **if_match(role)).status_code == 404
    assert api.token(world.admin).delete(path).status_code == 428
    assert api.token(world.admin).delete(path, **if_match(role)).status_code == 204
    assert api.token(world.admin).get(path).status_code == 404
    assert not SignoffRole.objects.filter(pk=role.pk).exists()


def test_filters_and_awaiting(world, api, held):
    member = api.token(world.member)
    awaiting = results(member.get(url("signoff-roles/"), {"awaiting": "true"}))
    assert [row["name"] for row in awaiting] == ["Product owner"]
    others = results(member.get(url("signoff-roles/"), {"awaiting": "false"}))
    assert {row["name"] for row in others} == {"Tech lead", "Operations lead"}
    assert [r["holder"] for r in results(member.get(url("signoff-roles/"), {"holder": "vic"}))] == [
        "vic"
    ]
    decide(member, held["Product owner"])
    assert results(member.get(url("signoff-roles/"), {"awaiting": "true"})) == []
    decide(api.token(world.admin), held["Tech lead"], "changes_requested", comment="Not yet")
    listed = member.get(url("signoff-decisions/"), {"outcome": "changes_requested"})
    assert [row["role_name"] for row in results(listed)] == ["Tech lead"]
    by_role = results(member.get(url("signoff-decisions/"), {"role": held["Product owner"].pk}))
    assert [row["outcome"] for row in by_role] == ["approved"]
    for bad in ({"milestone": "abc"}, {"awaiting": "maybe"}, {"outcome": "nope"}, {"role": "0"}):
        resource = "signoff-roles/" if "awaiting" in bad else "signoff-decisions/"
        assert member.get(url(resource), bad).status_code == 400, bad


def test_lists_never_include_another_teams_rows(world, api, held):
    decide(api.token(world.admin), held["Tech lead"])
    theirs = make_milestone(make_plan(world.other_team, world.outsider), world.outsider)
    their_roles = hold(world, theirs)
    decide(api.token(world.outsider), their_roles["Tech lead"])
    ours = api.token(world.member)
    role_rows = results(ours.get(url("signoff-roles/")))
    assert {row["milestone"] for row in role_rows} == {world.milestone.pk}
    decision_rows = results(ours.get(url("signoff-decisions/")))
    assert {row["milestone"] for row in decision_rows} == {world.milestone.pk}
    assert ours.get(url(f"signoff-roles/{their_roles['Tech lead'].pk}/")).status_code == 404
    outsider = api.token(world.outsider)
    assert {row["milestone"] for row in results(outsider.get(url("signoff-decisions/")))} == {
        theirs.pk
    }
    assert results(outsider.get(url("signoff-roles/"), {"milestone": world.milestone.pk})) == []


# --- Query budgets ---------------------------------------------------------------------------

# Token, roles, count, page (the latest decision of each role is a subquery, holders joined).
BUDGETS = {"signoff-roles": 4, "signoff-decisions": 4}


def decided_milestones(world, api, count: int):
    clients = {user: api.token(user) for user in (world.admin, world.member, world.viewer)}
    for _ in range(count):
        milestone = make_milestone(world.plan, world.admin)
        for name, role in hold(world, milestone).items():
            decide(clients[getattr(world, HOLDERS[name])], role)


@pytest.mark.parametrize("resource", sorted(BUDGETS))
def test_signoff_lists_cost_a_fixed_number_of_queries(
    world, api, resource, django_assert_max_num_queries
):
    decided_milestones(world, api, 2)
    client = api.token(world.member)
    client.get(url("teams/"))  # the token's first use records last_used_at once
    with CaptureQueriesContext(connection) as small:
        small_rows = results(client.get(url(f"{resource}/"), {"page_size": 5}))
    decided_milestones(world, api, 6)
    with django_assert_max_num_queries(BUDGETS[resource]):
        big_rows = results(client.get(url(f"{resource}/"), {"page_size": 200}))
    assert len(big_rows) > len(small_rows)
    with CaptureQueriesContext(connection) as big:
        client.get(url(f"{resource}/"), {"page_size": 200})
    assert len(small) == len(big)


def test_milestone_list_with_signoffs_stays_within_its_budget(
    world, api, django_assert_max_num_queries
):
    from tests.test_api_queries import BUDGETS as LIST_BUDGETS

    decided_milestones(world, api, 2)
    client = api.token(world.member)
    client.get(url("teams/"))
    with django_assert_max_num_queries(LIST_BUDGETS["milestones"]):
        small = results(client.get(url("milestones/"), {"page_size": 2}))
    decided_milestones(world, api, 5)
    with django_assert_max_num_queries(LIST_BUDGETS["milestones"]):
        big = results(client.get(url("milestones/"), {"page_size": 200}))
    assert len(big) > len(small)
    assert sum(row["signoffs"]["complete"] for row in big) == 7


def test_a_milestone_with_decisions_on_record_cannot_be_deleted(world, api, held):
    """The decisions are append-only, so their milestone stays: 400 with the reason (found by
    schemathesis, which also checks that the schema documents a 400 on DELETE)."""
    decide(api.token(world.admin), held["Tech lead"])
    path = url(f"milestones/{world.milestone.pk}/")
    response = api.token(world.admin).delete(path, **if_match(world.milestone))
    assert response.status_code == 400
    assert "cancelled" in response.json()["non_field_errors"][0]
    assert Milestone.objects.filter(pk=world.milestone.pk).exists()
    schema = api.anonymous().get(url("schema/"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert "400" in schema.json()["paths"]["/api/v1/milestones/{id}/"]["delete"]["responses"]
