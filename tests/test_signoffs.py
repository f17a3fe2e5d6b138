"""Sign-off rules (milestones/signoffs.py) against the database: scope, decisions, completion,
holders, the append-only chain, concurrency, health and the admin.

Pages are in test_signoff_pages.py and the browser walk-through in test_browser_signoffs.py.
"""

import datetime
import hashlib
import json
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.urls import reverse

from accounts.models import Role
from milestones import health, services, signoffs
from milestones.admin import SignoffDecisionAdmin, SignoffRoleAdmin
from milestones.models import (
    ZERO_HASH,
    Activity,
    Criterion,
    CriterionLevel,
    Deliverable,
    DeliverableStatus,
    Milestone,
    MilestoneStatus,
    SignoffDecision,
    SignoffOutcome,
    SignoffRequest,
    SignoffRequestReason,
    SignoffRole,
    today,
)
from tests.conftest import World
from tests.factories import (
    add_member,
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_plan,
    make_risk,
    make_status_update,
    make_user,
)

APPROVED = SignoffOutcome.APPROVED
CHANGES = SignoffOutcome.CHANGES_REQUESTED
REJECTED = SignoffOutcome.REJECTED
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger and row locks are PG-only"
)


# --- Helpers ---------------------------------------------------------------------------------


def roles_of(milestone) -> dict[str, SignoffRole]:
    return {role.name: role for role in milestone.signoff_roles.active().select_related("holder")}


def hold(world, milestone=None) -> dict[str, SignoffRole]:
    """Give the default roles holders: ada the tech lead, max the product owner, vic ops."""
    milestone = milestone or world.milestone
    holders = {
        "Tech lead": world.admin,
        "Product owner": world.member,
        "Operations lead": world.viewer,
    }
    for name, role in roles_of(milestone).items():
        signoffs.set_holder(role, actor=world.admin, holder=holders[name])
    return roles_of(milestone)


def decide(milestone, role, outcome=APPROVED, comment="", with_exceptions=False, user=None):
    role = SignoffRole.objects.select_related("holder").get(pk=role.pk)
    return signoffs.decide(
        Milestone.objects.get(pk=milestone.pk),
        user=user or role.holder,
        role=role,
        outcome=outcome,
        comment=comment,
        with_exceptions=with_exceptions,
    )


def fresh(milestone) -> Milestone:
    return Milestone.objects.get(pk=milestone.pk)


def state(milestone) -> signoffs.SignoffState:
    return signoffs.state_of(fresh(milestone))


def role_state(milestone, name) -> signoffs.RoleState:
    return next(r for r in state(milestone).roles if r.role.name == name)


def field_messages(excinfo, field: str) -> list[str]:
    return excinfo.value.message_dict[field]


@pytest.fixture
def governed(world):
    """world.milestone with its three default roles held; nothing unmet, so plain approval."""
    return hold(world)


@pytest.fixture
def scoped(world):
    """A milestone with scope (two deliverables, criteria) and a held role, approved by ada
    with exceptions (some items are open)."""
    m = world.milestone
    first = make_deliverable(m, world.admin, title="Queue worker", owner=world.member)
    second = make_deliverable(m, world.admin, title="Docs")
    ticked = make_criterion(world.admin, milestone=m, text="p95 under 200 ms", checked=True)
    open_must = make_criterion(world.admin, milestone=m, text="Runbook reviewed")
    acceptance = make_criterion(world.admin, deliverable=first, text="Survives a restart")
    measured = make_criterion(
        world.admin,
        milestone=m,
        text="Throughput",
        target=Decimal("100"),
        comparator=">=",
        unit="jobs/s",
        actual=Decimal("150"),
        level=CriterionLevel.SHOULD,
    )
    roles = hold(world)
    decision = decide(m, roles["Tech lead"], comment="Runbook and docs later", with_exceptions=True)
    assert role_state(m, "Tech lead").is_current
    return {
        "m": m,
        "first": first,
        "second": second,
        "ticked": ticked,
        "open_must": open_must,
        "acceptance": acceptance,
        "measured": measured,
        "roles": roles,
        "decision": decision,
    }


# --- Scope -------------------------------------------------------------------------------------


def test_the_decision_stores_its_scope_document_and_its_hash(scoped):
    decision, m = scoped["decision"], scoped["m"]
    assert hashlib.sha256(decision.scope_document.encode("utf-8")).hexdigest() == (
        decision.scope_hash
    )
    assert decision.scope_hash == fresh(m).scope_hash
    assert decision.scope_document == signoffs.scope_document(fresh(m))
    document = json.loads(decision.scope_document)
    assert set(document) == {
        "milestone",
        "title",
        "target_date",
        "deliverables",
        "success_criteria",
    }
    assert document["milestone"] == m.key
    assert document["target_date"] == m.target_date.isoformat()
    assert [d["title"] for d in document["deliverables"]] == ["Queue worker", "Docs"]
    assert document["deliverables"][0]["acceptance_criteria"] == [
        {"id": scoped["acceptance"].pk, "text": "Survives a restart", "met": False}
    ]
    by_text = {c["text"]: c for c in document["success_criteria"]}
    assert by_text["p95 under 200 ms"]["met"] is True
    assert by_text["Runbook reviewed"] == {
        "id": scoped["open_must"].pk,
        "text": "Runbook reviewed",
        "level": "must",
        "measure": "",
        "met": False,
    }
    assert by_text["Throughput"]["measure"] == ">= 100 jobs/s"
    # Canonical: sorted keys, no whitespace.
    assert decision.scope_document == json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    # Owners are not scope.
    assert "owner" not in decision.scope_document


def _edit_deliverable(s, actor):
    services.update_object(s["first"], actor=actor, title="Queue worker v2")


def _deliverable_status(s, actor):
    services.update_object(s["second"], actor=actor, status=DeliverableStatus.IN_REVIEW)


def _deliverable_description(s, actor):
    services.update_object(s["second"], actor=actor, description="Now with examples")


def _move_target(s, actor):
    services.update_object(
        s["m"], actor=actor, target_date=s["m"].target_date + datetime.timedelta(days=7)
    )


def _retitle(s, actor):
    services.update_object(s["m"], actor=actor, title="Export queue really ready")


def _tick(s, actor):
    services.set_criterion_checked(s["open_must"], actor=actor, checked=True)


def _untick(s, actor):
    services.set_criterion_checked(s["ticked"], actor=actor, checked=False)


def _tick_acceptance(s, actor):
    services.set_criterion_checked(s["acceptance"], actor=actor, checked=True)


def _add_deliverable(s, actor):
    make_deliverable(s["m"], actor, title="Dashboard")


def _delete_deliverable(s, actor):
    services.delete_object(s["second"], actor=actor)


def _add_criterion(s, actor):
    make_criterion(actor, milestone=s["m"], text="Alerts wired")


def _add_acceptance(s, actor):
    make_criterion(actor, deliverable=s["second"], text="Reviewed by support")


def _delete_criterion(s, actor):
    services.delete_object(s["ticked"], actor=actor)


def _criterion_text(s, actor):
    services.update_object(s["ticked"], actor=actor, text="p95 under 150 ms")


def _criterion_level(s, actor):
    services.update_object(s["open_must"], actor=actor, level=CriterionLevel.SHOULD)


def _measure_misses(s, actor):
    services.update_object(s["measured"], actor=actor, actual=Decimal("90"))


def _measure_target(s, actor):
    services.update_object(s["measured"], actor=actor, target=Decimal("120"))


SCOPE_CHANGES = [
    _edit_deliverable,
    _deliverable_status,
    _deliverable_description,
    _move_target,
    _retitle,
    _tick,
    _untick,
    _tick_acceptance,
    _add_deliverable,
    _delete_deliverable,
    _add_criterion,
    _add_acceptance,
    _delete_criterion,
    _criterion_text,
    _criterion_level,
    _measure_misses,
    _measure_target,
]


@pytest.mark.parametrize("change", SCOPE_CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_a_scope_change_makes_the_decision_stale_and_asks_the_holder_again(world, scoped, change):
    m, before = scoped["m"], fresh(scoped["m"]).scope_hash
    change(scoped, world.member)
    after = fresh(m)
    assert after.scope_hash != before
    assert after.scope_hash == signoffs.sha256(signoffs.scope_document(after))
    tech = role_state(m, "Tech lead")
    assert tech.is_stale and not tech.is_current and tech.current is None
    assert tech.is_awaiting
    request = SignoffRequest.objects.get(
        role=scoped["roles"]["Tech lead"], scope_hash=after.scope_hash
    )
    assert request.reason == SignoffRequestReason.STALE
    assert request.holder == world.admin
    # Nobody else had decided, so nobody else is asked because of the change.
    assert not SignoffRequest.objects.filter(
        reason=SignoffRequestReason.STALE, role__name__in=["Product owner", "Operations lead"]
    ).exists()
    # The old decision is untouched: still bound to the scope it approved.
    scoped["decision"].refresh_from_db()
    assert scoped["decision"].scope_hash == before


def _reorder_deliverables(s, actor):
    assert services.move_in_order(s["second"], actor=actor, offset=-1)


def _reorder_criteria(s, actor):
    assert services.move_in_order(s["open_must"], actor=actor, offset=-1)


def _deliverable_owner(s, actor):
    services.update_object(s["first"], actor=actor, owner=None, owner_label="Infra team")


def _milestone_owner(s, actor):
    services.update_object(s["m"], actor=actor, owner=actor)


def _deliverable_date(s, actor):
    services.update_object(s["first"], actor=actor, target_date=today())


def _criterion_category(s, actor):
    services.update_object(s["ticked"], actor=actor, category="quality")


def _measure_still_met(s, actor):
    services.update_object(s["measured"], actor=actor, actual=Decimal("180"))


def _summary(s, actor):
    services.update_object(s["m"], actor=actor, summary="Ships the queue.")


def _risk_blocker_update(s, actor):
    make_risk(s["m"], actor)
    make_blocker(s["m"], actor)
    make_status_update(s["m"], actor)


NOT_SCOPE = [
    _reorder_deliverables,
    _reorder_criteria,
    _deliverable_owner,
    _milestone_owner,
    _deliverable_date,
    _criterion_category,
    _measure_still_met,
    _summary,
    _risk_blocker_update,
]


@pytest.mark.parametrize("change", NOT_SCOPE, ids=lambda f: f.__name__.strip("_"))
def test_changes_outside_the_scope_leave_the_decision_current(world, scoped, change):
    before = fresh(scoped["m"]).scope_hash
    requests = SignoffRequest.objects.count()
    change(scoped, world.member)
    assert fresh(scoped["m"]).scope_hash == before
    assert role_state(scoped["m"], "Tech lead").is_current
    assert SignoffRequest.objects.count() == requests


def test_returning_to_the_approved_scope_makes_the_decision_current_again(world, scoped):
    """Content-bound: the approval is of a scope, so the same scope is approved again."""
    m = scoped["m"]
    services.set_criterion_checked(scoped["ticked"], actor=world.member, checked=False)
    assert role_state(m, "Tech lead").is_stale
    services.set_criterion_checked(scoped["ticked"], actor=world.member, checked=True)
    assert role_state(m, "Tech lead").is_current


# --- Deciding: the approval rule, comments and outcomes -----------------------------------------


def test_approval_is_refused_with_the_unmet_items_listed(world, scoped):
    m, product = scoped["m"], scoped["roles"]["Product owner"]
    with pytest.raises(ValidationError) as excinfo:
        decide(m, product)
    reasons = field_messages(excinfo, "outcome")
    assert "Must-criterion not met: Runbook reviewed" in reasons
    assert "Deliverable not accepted: Queue worker (planned)" in reasons
    assert "Deliverable not accepted: Docs (planned)" in reasons
    assert not any("p95" in reason for reason in reasons)  # met
    assert not any("Throughput" in reason for reason in reasons)  # met (and a should)
    assert not SignoffDecision.objects.filter(role=product).exists()


def test_approval_with_nothing_unmet_needs_no_exceptions(world, scoped):
    m = scoped["m"]
    services.set_criterion_checked(scoped["open_must"], actor=world.member, checked=True)
    for deliverable in (scoped["first"], scoped["second"]):
        services.update_object(deliverable, actor=world.member, status=DeliverableStatus.ACCEPTED)
    assert signoffs.unmet_items(fresh(m)) == []
    plain = decide(m, scoped["roles"]["Product owner"])
    assert plain.outcome == APPROVED and not plain.with_exceptions
    # Asking for exceptions when none apply records a plain approval: the truth.
    ops = decide(m, scoped["roles"]["Operations lead"], comment="fine", with_exceptions=True)
    assert ops.with_exceptions is False


def test_a_should_criterion_does_not_block_approval(world, governed):
    m = world.milestone
    make_criterion(world.admin, milestone=m, text="Nice dashboards", level=CriterionLevel.SHOULD)
    assert decide(m, governed["Tech lead"]).outcome == APPROVED


def test_approval_with_exceptions_needs_a_comment_and_is_recorded_as_such(world, scoped):
    m, product = scoped["m"], scoped["roles"]["Product owner"]
    with pytest.raises(ValidationError) as excinfo:
        decide(m, product, with_exceptions=True, comment="   ")
    assert field_messages(excinfo, "comment") == [signoffs.EXCEPTIONS_NEED_COMMENT]
    decision = decide(m, product, with_exceptions=True, comment="  Runbook after launch.  ")
    assert decision.with_exceptions is True
    assert decision.comment == "Runbook after launch."
    assert [d.pk for d in state(m).exceptions] == [scoped["decision"].pk, decision.pk]


@pytest.mark.parametrize("outcome", [CHANGES, REJECTED])
def test_request_changes_and_reject_need_a_comment(world, governed, outcome):
    m, role = world.milestone, governed["Product owner"]
    with pytest.raises(ValidationError) as excinfo:
        decide(m, role, outcome=outcome, comment=" ")
    assert field_messages(excinfo, "comment") == [signoffs.COMMENT_REQUIRED]
    with pytest.raises(ValidationError) as excinfo:
        decide(m, role, outcome=outcome, comment="why", with_exceptions=True)
    assert "with_exceptions" in excinfo.value.message_dict
    decision = decide(m, role, outcome=outcome, comment="Not the scope we agreed.")
    assert decision.outcome == outcome
    assert role_state(m, "Product owner").current == decision
    assert not role_state(m, "Product owner").is_approved


def test_request_changes_and_reject_are_allowed_with_unmet_items(world, scoped):
    decision = decide(scoped["m"], scoped["roles"]["Product owner"], CHANGES, "Finish the docs")
    assert decision.outcome == CHANGES


def test_an_unknown_outcome_is_refused(world, governed):
    with pytest.raises(ValidationError) as excinfo:
        decide(world.milestone, governed["Tech lead"], outcome="shrug", comment="hm")
    assert "“shrug” is not a decision" in field_messages(excinfo, "outcome")[0]
    assert not SignoffDecision.objects.exists()


def test_a_cancelled_milestone_cannot_be_signed_off(world, governed):
    services.update_object(world.milestone, actor=world.admin, status=MilestoneStatus.CANCELLED)
    with pytest.raises(ValidationError) as excinfo:
        decide(world.milestone, governed["Tech lead"])
    assert "cancelled" in field_messages(excinfo, "outcome")[0]
    assert not SignoffDecision.objects.exists()


def test_a_dropped_role_cannot_be_decided(world, governed):
    role = governed["Tech lead"]
    signoffs.drop_role(role, actor=world.admin)
    with pytest.raises(ValidationError):
        signoffs.decide(world.milestone, user=world.admin, role=role, outcome=APPROVED)
    # Nor a role of another milestone.
    other = make_milestone(world.plan, world.admin)
    other_role = hold(world, other)["Product owner"]
    with pytest.raises(ValidationError) as excinfo:
        signoffs.decide(world.milestone, user=world.member, role=other_role, outcome=APPROVED)
    assert "role" in excinfo.value.message_dict


def test_the_decision_records_who_what_when_and_logs_activity(world, governed):
    m = world.milestone
    decision = decide(m, governed["Product owner"], comment="Looks right")
    assert decision.decided_by == world.member
    assert decision.decided_by_name == "max"
    assert decision.role_name == "Product owner"
    assert decision.sequence == 1 and decision.previous_hash == ZERO_HASH
    assert decision.record_hash == signoffs.record_hash(decision)
    assert abs((decision.decided_at - datetime.datetime.now(datetime.UTC)).total_seconds()) < 60
    entry = Activity.objects.get(verb="decided", object_type="signoffdecision")
    assert entry.milestone_id == m.pk and entry.actor == world.member
    assert entry.changes == {
        "role": "Product owner",
        "outcome": "approved",
        "with_exceptions": False,
    }
    second = decide(m, governed["Tech lead"])
    assert second.sequence == 2 and second.previous_hash == decision.record_hash


# --- Who may decide, and who may change roles -------------------------------------------------


def test_only_the_holder_can_decide(world, governed):
    m = world.milestone
    for intruder in (world.admin, world.viewer, world.outsider):
        with pytest.raises(PermissionDenied) as excinfo:
            decide(m, governed["Product owner"], user=intruder)
        assert "the holder is max" in str(excinfo.value)
    unheld = signoffs.add_role(m, actor=world.admin, name="Security")
    with pytest.raises(PermissionDenied, match="nobody yet"):
        decide(m, unheld, user=world.admin)
    assert not SignoffDecision.objects.exists()


def test_changing_a_holder_is_for_admins_and_is_logged(world):
    role = roles_of(world.milestone)["Product owner"]
    with pytest.raises(PermissionDenied):
        signoffs.set_holder(role, actor=world.member, holder=world.member)
    with pytest.raises(PermissionDenied):
        signoffs.set_holder(role, actor=world.outsider, holder=world.member)
    assert SignoffRole.objects.get(pk=role.pk).holder is None

    signoffs.set_holder(role, actor=world.admin, holder=world.member)
    role.refresh_from_db()
    assert role.holder == world.member and role.version == 2
    entry = Activity.objects.get(verb="updated", object_type="signoffrole")
    assert entry.actor == world.admin and entry.milestone_id == world.milestone.pk
    assert entry.changes == {"holder": [None, world.member.display_name]}

    signoffs.set_holder(role, actor=world.admin, holder=None)
    assert SignoffRole.objects.get(pk=role.pk).holder is None
    assert Activity.objects.filter(verb="updated", object_type="signoffrole").count() == 2


def test_a_new_holder_decides_afresh_and_the_old_holders_approval_stops_counting(world, governed):
    m = world.milestone
    for role in governed.values():
        decide(m, role)
    assert fresh(m).status == MilestoneStatus.COMPLETED
    product_owner = governed["Product owner"]
    signoffs.set_holder(product_owner, actor=world.admin, holder=world.admin)
    after = role_state(m, "Product owner")
    assert after.is_stale and not after.is_approved  # max's approval no longer counts
    assert fresh(m).status == MilestoneStatus.IN_PROGRESS  # re-opened: a role is not approved
    awaiting = signoffs.awaiting_roles(world.admin)
    assert list(awaiting.values_list("pk", flat=True)) == [product_owner.pk]
    assert signoffs.missing_by_milestone(world.team.pk) == {m.pk: ["Product owner"]}
    # The same decision by the new holder is a new record, not a refused duplicate.
    decide(m, product_owner, user=world.admin)
    assert role_state(m, "Product owner").is_approved
    assert fresh(m).status == MilestoneStatus.COMPLETED


def test_a_holder_must_be_a_member_of_the_team(world):
    role = roles_of(world.milestone)["Product owner"]
    with pytest.raises(ValidationError) as excinfo:
        signoffs.set_holder(role, actor=world.admin, holder=world.outsider)
    assert excinfo.value.message_dict["holder"] == ["The holder must be a member of the team."]
    with pytest.raises(ValidationError):
        signoffs.add_role(world.milestone, actor=world.admin, name="Legal", holder=world.outsider)
    assert SignoffRole.objects.get(pk=role.pk).holder is None
    assert not SignoffRole.objects.filter(name="Legal").exists()


def test_roles_are_added_and_dropped_by_admins_and_logged(world):
    m = world.milestone
    with pytest.raises(PermissionDenied):
        signoffs.add_role(m, actor=world.member, name="Security")
    role = signoffs.add_role(m, actor=world.admin, name="Security", holder=world.member)
    assert role.position == 3
    assert Activity.objects.filter(verb="created", object_type="signoffrole", object_id=role.pk)
    assert (
        SignoffRequest.objects.filter(role=role, reason=SignoffRequestReason.ASSIGNED).count() == 1
    )
    with pytest.raises(ValidationError):
        signoffs.add_role(m, actor=world.admin, name="Security")  # the name is taken
    with pytest.raises(ValidationError):
        signoffs.add_role(m, actor=world.admin, name="   ")

    with pytest.raises(PermissionDenied):
        signoffs.drop_role(role, actor=world.member)
    signoffs.drop_role(role, actor=world.admin)
    assert not SignoffRole.objects.filter(pk=role.pk).exists()  # no decisions: gone
    assert Activity.objects.filter(verb="removed", object_type="signoffrole", object_id=role.pk)


def test_a_dropped_role_with_decisions_is_kept_for_the_history(world, governed):
    m, role = world.milestone, governed["Operations lead"]
    decision = decide(m, role)
    signoffs.drop_role(role, actor=world.admin)
    role.refresh_from_db()
    assert role.removed_at is not None
    assert [r.role.name for r in state(m).roles] == ["Tech lead", "Product owner"]
    assert state(m).decisions == [decision]
    # The name is free again for a new role.
    signoffs.add_role(m, actor=world.admin, name="Operations lead")


def test_the_team_default_roles_are_given_to_new_milestones(world):
    world.team.signoff_roles = ["Architect", "Customer"]
    world.team.save()
    m = make_milestone(world.plan, world.admin)
    assert list(m.signoff_roles.values_list("name", flat=True)) == ["Architect", "Customer"]
    assert list(world.milestone.signoff_roles.values_list("name", flat=True)) == [
        "Tech lead",
        "Product owner",
        "Operations lead",
    ]


def test_requests_are_recorded_once_per_role_holder_and_scope(world, scoped):
    m, tech = scoped["m"], scoped["roles"]["Tech lead"]
    # One request on assignment per role.
    assigned = SignoffRequest.objects.filter(reason=SignoffRequestReason.ASSIGNED)
    assert sorted(assigned.values_list("role__name", flat=True)) == [
        "Operations lead",
        "Product owner",
        "Tech lead",
    ]
    # Re-assigning the same holder changes nothing; away and back on the same scope asks once.
    signoffs.set_holder(tech, actor=world.admin, holder=world.admin)
    signoffs.set_holder(tech, actor=world.admin, holder=world.member)
    signoffs.set_holder(tech, actor=world.admin, holder=world.admin)
    assert SignoffRequest.objects.filter(role=tech, holder=world.admin).count() == 1
    assert SignoffRequest.objects.filter(role=tech, holder=world.member).count() == 1

    # A current decision going stale asks once; going back and forth asks no more.
    approved_scope = fresh(m).scope_hash
    services.set_criterion_checked(scoped["open_must"], actor=world.member, checked=True)
    changed_scope = fresh(m).scope_hash
    stale = SignoffRequest.objects.filter(role=tech, reason=SignoffRequestReason.STALE)
    assert list(stale.values_list("scope_hash", flat=True)) == [changed_scope]
    services.set_criterion_checked(scoped["open_must"], actor=world.member, checked=False)
    assert fresh(m).scope_hash == approved_scope
    services.set_criterion_checked(scoped["open_must"], actor=world.member, checked=True)
    assert stale.count() == 1
    # A further change while the decision is already stale does not ask again.
    services.update_object(scoped["first"], actor=world.member, title="Queue worker v3")
    assert stale.count() == 1


def test_an_identical_decision_on_the_same_scope_is_refused(world, governed):
    m, role = world.milestone, governed["Product owner"]
    decide(m, role, comment="ok")
    with pytest.raises(ValidationError) as excinfo:
        decide(m, role, comment="ok")
    assert "already recorded" in field_messages(excinfo, "outcome")[0]
    assert SignoffDecision.objects.filter(role=role).count() == 1
    # A changed mind is a new record.
    decide(m, role, outcome=CHANGES, comment="Wait, the docs")
    assert SignoffDecision.objects.filter(role=role).count() == 2


def test_a_decision_on_a_scope_the_holder_did_not_see_is_refused(world, scoped):
    m, role = scoped["m"], scoped["roles"]["Product owner"]
    seen = fresh(m).scope_hash
    make_deliverable(m, world.admin, title="Slipped in meanwhile")
    role = SignoffRole.objects.select_related("holder").get(pk=role.pk)
    with pytest.raises(ValidationError) as excinfo:
        signoffs.decide(
            fresh(m),
            user=world.member,
            role=role,
            outcome=CHANGES,
            comment="Docs first",
            seen_scope_hash=seen,
        )
    assert excinfo.value.message_dict["scope"] == [signoffs.SCOPE_MOVED]
    assert not SignoffDecision.objects.filter(role=role).exists()
    now = fresh(m).scope_hash
    decision = signoffs.decide(
        fresh(m),
        user=world.member,
        role=role,
        outcome=CHANGES,
        comment="Docs first",
        seen_scope_hash=now,
    )
    assert decision.scope_hash == fresh(m).scope_hash != seen


# --- Completion -----------------------------------------------------------------------------


def test_the_milestone_completes_when_every_role_approves(world, governed):
    m = world.milestone
    decide(m, governed["Tech lead"])
    decide(m, governed["Product owner"])
    assert fresh(m).status == MilestoneStatus.PLANNED
    assert not Activity.objects.filter(verb="completed").exists()
    decide(m, governed["Operations lead"])
    m = fresh(m)
    assert m.status == MilestoneStatus.COMPLETED
    assert m.completed_on == today()
    entry = Activity.objects.get(verb="completed", milestone=m)
    assert entry.actor == world.viewer
    assert entry.changes == {"status": ["planned", "completed"]}
    assert state(m).all_approved


def test_completion_with_exceptions_from_every_role(world, scoped):
    m, roles = scoped["m"], scoped["roles"]
    decide(m, roles["Product owner"], comment="Docs after launch", with_exceptions=True)
    decide(m, roles["Operations lead"], comment="Runbook next week", with_exceptions=True)
    m = fresh(m)
    assert m.status == MilestoneStatus.COMPLETED and m.completed_on == today()


def test_a_rejection_or_request_for_changes_blocks_completion(world, governed):
    m = world.milestone
    decide(m, governed["Tech lead"])
    decide(m, governed["Product owner"], outcome=REJECTED, comment="Wrong product")
    decide(m, governed["Operations lead"])
    assert fresh(m).status == MilestoneStatus.PLANNED
    assert [r.role.name for r in state(m).missing] == ["Product owner"]


def test_a_later_scope_change_reopens_a_completed_milestone(world, governed):
    m = world.milestone
    for role in governed.values():
        decide(m, role)
    assert fresh(m).status == MilestoneStatus.COMPLETED
    make_deliverable(m, world.member, title="Forgotten migration")
    m = fresh(m)
    assert m.status == MilestoneStatus.IN_PROGRESS
    assert m.completed_on is None
    entry = Activity.objects.get(verb="reopened", milestone=m)
    assert entry.changes == {"status": ["completed", "in_progress"]}
    assert all(r.is_stale for r in state(m).roles)
    assert SignoffRequest.objects.filter(reason=SignoffRequestReason.STALE).count() == 3


def test_a_rejection_after_completion_reopens_it(world, governed):
    m = world.milestone
    for role in governed.values():
        decide(m, role)
    decide(m, governed["Product owner"], outcome=REJECTED, comment="Customers hate it")
    m = fresh(m)
    assert m.status == MilestoneStatus.IN_PROGRESS and m.completed_on is None


def test_completing_by_hand_is_refused_on_a_governed_milestone(world, governed):
    m = fresh(world.milestone)
    decide(m, governed["Tech lead"])
    m = fresh(m)
    with pytest.raises(ValidationError) as excinfo:
        services.update_object(m, actor=world.admin, status=MilestoneStatus.COMPLETED)
    [message] = excinfo.value.message_dict["status"]
    assert "Product owner, Operations lead" in message
    assert "Tech lead" not in message
    assert m.status == MilestoneStatus.PLANNED  # the caller's object is left as it was
    assert fresh(m).status == MilestoneStatus.PLANNED
    assert fresh(m).completed_on is None


def test_completing_by_hand_is_allowed_while_no_role_has_a_holder(world):
    m = fresh(world.milestone)
    assert not state(m).is_governed and len(state(m).roles) == 3
    services.update_object(m, actor=world.admin, status=MilestoneStatus.COMPLETED)
    m = fresh(m)
    assert m.status == MilestoneStatus.COMPLETED and m.completed_on == today()


def test_a_role_without_holder_keeps_a_governed_milestone_open_until_dropped(world):
    m = world.milestone
    roles = roles_of(m)
    signoffs.set_holder(roles["Product owner"], actor=world.admin, holder=world.member)
    decide(m, roles["Product owner"])
    assert fresh(m).status == MilestoneStatus.PLANNED
    signoffs.drop_role(roles["Tech lead"], actor=world.admin)
    assert fresh(m).status == MilestoneStatus.PLANNED
    signoffs.drop_role(roles["Operations lead"], actor=world.admin)
    assert fresh(m).status == MilestoneStatus.COMPLETED


def test_deleting_a_milestone_with_decisions_is_refused(world, governed):
    m = fresh(world.milestone)
    other = make_milestone(world.plan, world.admin)
    hold(world, other)
    services.delete_object(other, actor=world.admin)  # roles but no decisions: fine
    decide(m, governed["Tech lead"])
    with pytest.raises(ValidationError, match="sign-off decisions"):
        services.delete_object(m, actor=world.admin)
    assert Milestone.objects.filter(pk=m.pk).exists()
    assert SignoffDecision.objects.filter(milestone=m).count() == 1


# --- The append-only chain ------------------------------------------------------------------


def test_verify_signoffs_passes_an_intact_chain(world, scoped):
    decide(scoped["m"], scoped["roles"]["Product owner"], CHANGES, "Docs first")
    out = StringIO()
    call_command("verify_signoffs", stdout=out)
    assert out.getvalue().strip() == "2 sign-off decision(s) checked; every chain is intact."
    assert signoffs.verify_chains() == (2, [])


def tamper(sql: str, params=()):
    """Change the decisions table behind the application's back (on PostgreSQL, with the
    append-only trigger disabled for the moment)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Run the test transaction's deferred foreign-key checks now: PostgreSQL will not
            # alter a table with trigger events pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "ALTER TABLE milestones_signoffdecision "
                "DISABLE TRIGGER signoff_decisions_append_only"
            )
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(
                "ALTER TABLE milestones_signoffdecision "
                "ENABLE TRIGGER signoff_decisions_append_only"
            )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def chain(world, governed):
    """Three decisions on world.milestone and one on another milestone."""
    m = world.milestone
    decisions = [
        decide(m, governed["Tech lead"], CHANGES, "More tests"),
        decide(m, governed["Product owner"], comment="Fine by me"),
        decide(m, governed["Operations lead"], REJECTED, "No runbook"),
    ]
    other = make_milestone(world.plan, world.admin)
    decisions.append(decide(other, hold(world, other)["Tech lead"]))
    assert signoffs.verify_chains() == (4, [])
    return decisions


def run_verify():
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_signoffs", stdout=out, stderr=err)
    return str(excinfo.value), err.getvalue()


def test_verify_signoffs_names_a_record_whose_comment_was_altered(chain):
    target = chain[1]
    tamper(
        "UPDATE milestones_signoffdecision SET comment = %s WHERE id = %s",
        ["Fine by me, and I never said otherwise", target.pk],
    )
    message, err = run_verify()
    assert "1 problem(s) in 4 sign-off decision(s)" in message
    assert f"ALTERED sign-off decision #{target.pk} " in err
    assert "record altered" in err
    for other in (chain[0], chain[2], chain[3]):
        assert f"#{other.pk} " not in err
    checked, problems = signoffs.verify_chains()
    assert checked == 4
    assert [(p.decision_id, p.sequence) for p in problems] == [(target.pk, 2)]


def test_verify_signoffs_detects_a_rewritten_outcome_even_with_its_own_hash_recomputed(chain):
    """Rewriting a record and its hash breaks the link from the next record."""
    target = chain[0]
    target.outcome = APPROVED
    target.comment = ""
    new_hash = signoffs.record_hash(target)
    tamper(
        "UPDATE milestones_signoffdecision SET outcome = %s, comment = %s, record_hash = %s "
        "WHERE id = %s",
        [APPROVED, "", new_hash, target.pk],
    )
    _, err = run_verify()
    assert f"#{chain[1].pk} " in err and "link to the previous decision" in err
    assert f"#{target.pk} " not in err


def test_verify_signoffs_detects_an_altered_scope_document(chain):
    target = chain[2]
    tamper(
        "UPDATE milestones_signoffdecision SET scope_document = %s WHERE id = %s",
        ['{"title":"something else"}', target.pk],
    )
    _, err = run_verify()
    assert f"#{target.pk} " in err and "scope altered" in err


def test_verify_signoffs_detects_a_deleted_middle_record(chain):
    middle, after = chain[1], chain[2]
    tamper("DELETE FROM milestones_signoffdecision WHERE id = %s", [middle.pk])
    _, err = run_verify()
    assert f"ALTERED sign-off decision #{after.pk} " in err
    assert "expected sequence 2" in err
    assert f"ALTERED sign-off decision #{middle.pk} " in err  # named from the activity log
    checked, problems = signoffs.verify_chains()
    assert checked == 3
    assert {p.decision_id for p in problems} == {after.pk, middle.pk}


def test_verify_signoffs_detects_a_deleted_last_record(chain):
    """The newest decision (say, a rejection) has no successor linking to it."""
    last = chain[2]
    tamper("DELETE FROM milestones_signoffdecision WHERE id = %s", [last.pk])
    message, err = run_verify()
    assert "1 problem(s) in 3 sign-off decision(s)" in message
    assert f"ALTERED sign-off decision #{last.pk} " in err
    assert "missing from the decisions table" in err


def test_verify_signoffs_detects_a_deleted_first_record(chain):
    tamper("DELETE FROM milestones_signoffdecision WHERE id = %s", [chain[0].pk])
    _, err = run_verify()
    assert f"#{chain[1].pk} " in err


@on_postgresql
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE milestones_signoffdecision SET comment = 'forged' WHERE id = %s",
        "UPDATE milestones_signoffdecision SET outcome = 'approved' WHERE id = %s",
        "DELETE FROM milestones_signoffdecision WHERE id = %s",
    ],
    ids=["update-comment", "update-outcome", "delete"],
)
def test_the_database_refuses_to_update_or_delete_a_decision(chain, sql):
    target = chain[0]
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [target.pk])
    assert issubclass(IntegrityError, DatabaseError)
    stored = SignoffDecision.objects.get(pk=target.pk)
    assert (stored.comment, stored.outcome) == ("More tests", CHANGES)
    assert signoffs.verify_chains() == (4, [])


@on_postgresql
def test_the_orm_cannot_update_or_delete_a_decision_either(chain):
    with pytest.raises(IntegrityError), transaction.atomic():
        SignoffDecision.objects.filter(pk=chain[0].pk).update(comment="forged")
    with pytest.raises(IntegrityError), transaction.atomic():
        chain[0].save()
    with pytest.raises(IntegrityError), transaction.atomic():
        SignoffDecision.objects.filter(pk=chain[3].pk)._raw_delete(connection.alias)
    assert SignoffDecision.objects.count() == 4


# --- Concurrency (PostgreSQL: real row locks, separate connections) ----------------------------


def _run_at_once(count: int, work) -> list:
    """Run `work(i)` in `count` threads released together; returns each result or exception."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as error:  # collected and asserted on below
            results[i] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_identical_approvals_record_one_decision():
    world = World()
    role = hold(world)["Product owner"]
    milestone = fresh(world.milestone)
    attempts = 50

    def approve(_):
        return signoffs.decide(
            Milestone.objects.get(pk=milestone.pk),
            user=world.member,
            role=SignoffRole.objects.get(pk=role.pk),
            outcome=APPROVED,
            comment="Ship it",
        )

    results = _run_at_once(attempts, approve)
    recorded = SignoffDecision.objects.filter(milestone=milestone).count()
    print(f"concurrency: {attempts} attempts, {recorded} decisions recorded")
    decisions = [r for r in results if isinstance(r, SignoffDecision)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    others = [r for r in results if not isinstance(r, SignoffDecision | ValidationError)]
    assert others == []
    assert recorded == 1 and len(decisions) == 1
    assert len(refused) == attempts - 1
    assert all("already recorded" in r.message_dict["outcome"][0] for r in refused)
    assert decisions[0].sequence == 1
    assert Activity.objects.filter(verb="decided").count() == 1
    assert signoffs.verify_chains() == (1, [])


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_three_holders_approving_at_once_make_one_intact_chain():
    world = World()
    roles = list(hold(world).values())
    milestone = fresh(world.milestone)

    def approve(i):
        role = SignoffRole.objects.select_related("holder").get(pk=roles[i].pk)
        return signoffs.decide(
            Milestone.objects.get(pk=milestone.pk), user=role.holder, role=role, outcome=APPROVED
        )

    results = _run_at_once(3, approve)
    assert all(isinstance(r, SignoffDecision) for r in results), results
    decisions = list(SignoffDecision.objects.filter(milestone=milestone).order_by("sequence"))
    assert [d.sequence for d in decisions] == [1, 2, 3]
    assert {d.role_id for d in decisions} == {r.pk for r in roles}
    assert decisions[0].previous_hash == ZERO_HASH
    assert [d.previous_hash for d in decisions[1:]] == [d.record_hash for d in decisions[:2]]
    assert signoffs.verify_chains() == (3, [])
    m = fresh(milestone)
    assert m.status == MilestoneStatus.COMPLETED and m.completed_on == today()
    assert Activity.objects.filter(verb="completed").count() == 1


# --- Health ---------------------------------------------------------------------------------


def signoff_reason(m, on):
    health.evaluate_team(m.team_id, on=on)
    m = fresh(m)
    return next((r for r in m.health_reasons if r["code"] == "signoffs_missing"), None)


def test_health_flags_missing_signoffs_close_to_the_target(world, governed):
    m = fresh(world.milestone)
    window = world.team.health_signoff_days
    assert window == 7
    close = m.target_date - datetime.timedelta(days=window)
    early = m.target_date - datetime.timedelta(days=window + 1)
    assert signoff_reason(m, early) is None
    reason = signoff_reason(m, close)
    assert reason["health"] == "at_risk"
    assert reason["link"] == "#signoffs"
    assert "Tech lead, Product owner, Operations lead" in reason["message"]

    decide(m, governed["Tech lead"])
    decide(m, governed["Product owner"], outcome=CHANGES, comment="Docs")
    reason = signoff_reason(m, close)
    assert reason["message"].endswith("Product owner, Operations lead.")
    assert "Tech lead" not in reason["message"]

    decide(m, governed["Product owner"])
    decide(m, governed["Operations lead"])
    assert fresh(m).status == MilestoneStatus.COMPLETED
    assert signoff_reason(m, close) is None


def test_health_counts_a_stale_approval_as_missing(world, governed):
    m = fresh(world.milestone)
    decide(m, governed["Tech lead"])
    close = m.target_date - datetime.timedelta(days=2)
    assert "Tech lead" not in signoff_reason(m, close)["message"]
    make_deliverable(m, world.member)
    assert "Tech lead" in signoff_reason(m, close)["message"]


def test_health_ignores_sign_off_on_ungoverned_milestones(world):
    m = fresh(world.milestone)
    assert signoff_reason(m, m.target_date - datetime.timedelta(days=1)) is None


def test_health_respects_the_team_window(world, governed):
    world.team.health_signoff_days = 30
    world.team.save()
    m = fresh(world.milestone)
    assert (m.target_date - today()).days == 20
    assert signoff_reason(m, today()) is not None


# --- Admin ----------------------------------------------------------------------------------


def test_the_admin_cannot_add_change_or_delete_decisions(world, governed, client, rf):
    decision = decide(world.milestone, governed["Tech lead"])
    root = make_user("root", is_staff=True, is_superuser=True)
    request = rf.get("/")
    request.user = root
    from django.contrib import admin

    for model_admin in (
        SignoffDecisionAdmin(SignoffDecision, admin.site),
        SignoffRoleAdmin(SignoffRole, admin.site),
    ):
        assert model_admin.has_add_permission(request) is False
        assert model_admin.has_change_permission(request, decision) is False
        assert model_admin.has_delete_permission(request, decision) is False

    client.force_login(root)
    change = reverse("admin:milestones_signoffdecision_change", args=[decision.pk])
    page = client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(change, {"comment": "forged", "outcome": "rejected"}).status_code == 403
    assert client.get(reverse("admin:milestones_signoffdecision_add")).status_code == 403
    delete = reverse("admin:milestones_signoffdecision_delete", args=[decision.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    stored = SignoffDecision.objects.get(pk=decision.pk)
    assert (stored.comment, stored.outcome) == ("", APPROVED)
    assert signoffs.verify_chains() == (1, [])


def test_a_team_admin_with_staff_access_cannot_edit_decisions_either(world, governed, client):
    decision = decide(world.milestone, governed["Tech lead"])
    staff = add_member(world.team, make_user("staffer", is_staff=True), Role.ADMIN)
    from django.contrib.auth.models import Permission

    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="milestones"))
    client.force_login(staff)
    change = reverse("admin:milestones_signoffdecision_change", args=[decision.pk])
    assert client.post(change, {"comment": "forged"}).status_code == 403
    assert client.post(
        reverse("admin:milestones_signoffdecision_changelist"),
        {"action": "delete_selected", "_selected_action": [decision.pk], "post": "yes"},
    ).status_code in (200, 302)
    assert SignoffDecision.objects.filter(pk=decision.pk).exists()


# --- The scope of every milestone of the team, kept up to date ---------------------------------


def test_new_milestones_get_a_scope_hash(world):
    m = make_milestone(make_plan(world.team, world.admin), world.admin, title="Fresh")
    assert fresh(m).scope_hash == signoffs.sha256(signoffs.scope_document(m))
    assert Deliverable.objects.count() == 0 and Criterion.objects.count() == 0
