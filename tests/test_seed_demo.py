"""`manage.py seed_demo`: the Demo team, its plans in every state, and idempotence."""

import datetime
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Membership, Role, Team, User
from milestones import services
from milestones.models import (
    Activity,
    Blocker,
    Criterion,
    CriterionCategory,
    CriterionLevel,
    DeliverableStatus,
    Dependency,
    Level,
    Milestone,
    MilestoneStatus,
    Plan,
    Risk,
    Stakeholder,
    StatusUpdate,
    today,
)
from tests.factories import make_team, make_user

DEMO_ROLES = {
    "alice": Role.ADMIN,
    "bob": Role.MEMBER,
    "priya": Role.MEMBER,
    "omar": Role.MEMBER,
    "vera": Role.VIEWER,
}


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict:
    return {
        model._meta.label: model._default_manager.count()
        for app in ("accounts", "milestones")
        for model in apps.get_app_config(app).get_models()
    }


def elapsed(milestone, on=None) -> float:
    """Share of the milestone's scheduled time that has passed."""
    span = (milestone.target_date - milestone.start_date).days
    return ((on or today()) - milestone.start_date).days / span


@pytest.fixture
def demo(db):
    output = seed()
    team = Team.objects.get(slug="demo")
    team.output = output
    return team


def test_creates_the_demo_users_with_their_roles_and_password(demo):
    memberships = Membership.objects.filter(team=demo).select_related("user")
    assert {m.user.username: m.role for m in memberships} == DEMO_ROLES
    for membership in memberships:
        user = membership.user
        assert user.check_password("milepost-demo")
        assert user.email == f"{user.username}@milepost.example"
        assert user.first_name and user.last_name
    assert User.objects.get_by_login("priya@milepost.example").username == "priya"
    assert demo.name == "Demo"
    assert "alice" in demo.output and "milepost-demo" in demo.output


def test_plans_and_milestones_cover_every_status(demo):
    plans = Plan.objects.in_team(demo)
    milestones = Milestone.objects.in_team(demo)
    assert 2 <= plans.count() <= 3
    assert 13 <= milestones.count() <= 17
    assert all(plan.milestones.count() >= 3 for plan in plans)
    assert set(milestones.values_list("status", flat=True)) == set(MilestoneStatus.values)
    assert milestones.filter(status=MilestoneStatus.CANCELLED).count() == 1
    assert sorted(plans.values_list("key", flat=True)) == ["PLAN-001", "PLAN-002", "PLAN-003"]
    assert milestones.filter(key="MLS-001").exists()
    assert not milestones.filter(owner=None).exists()
    assert not milestones.filter(owning_group="").exists()
    assert not milestones.filter(estimated_effort="").exists()


def test_completed_milestones_are_really_done(demo):
    completed = Milestone.objects.in_team(demo).filter(status=MilestoneStatus.COMPLETED)
    assert completed.count() >= 2
    for milestone in completed:
        assert milestone.completed_on and milestone.completed_on < today()
        assert not milestone.criteria.filter(level=CriterionLevel.MUST, met=False).exists()
        assert not Criterion.objects.filter(deliverable__milestone=milestone, met=False).exists()
        assert milestone.deliverables.exists()
        assert not milestone.deliverables.exclude(status=DeliverableStatus.ACCEPTED).exists()
        assert milestone.retro_went_well and milestone.retro_went_badly
        assert milestone.retro_actions and milestone.retro_learnings
        assert milestone.rollback_plan
    still_open = Milestone.objects.in_team(demo).exclude(status=MilestoneStatus.COMPLETED)
    assert not still_open.exclude(completed_on=None).exists()


def test_schedule_states_hold_relative_to_today(demo):
    milestones = Milestone.objects.in_team(demo).with_progress()
    in_progress = milestones.filter(status=MilestoneStatus.IN_PROGRESS)
    assert Milestone.objects.in_team(demo).overdue().exists()
    assert Blocker.objects.in_team(demo).past_target().exists()
    assert Blocker.objects.in_team(demo).filter(resolved_on__isnull=False).exists()
    behind = [
        m for m in in_progress if not m.is_overdue() and elapsed(m) >= 0.75 and m.progress <= 25
    ]
    on_track = [
        m
        for m in in_progress
        if not m.is_overdue()
        and not m.blockers.filter(resolved_on=None).exists()
        and m.progress >= 100 * elapsed(m) - 10
    ]
    assert behind and on_track
    planned = milestones.filter(status=MilestoneStatus.PLANNED)
    assert planned.exists()
    assert all(m.start_date > today() for m in planned)
    slipped = [m for m in milestones if m.slip_days]
    assert slipped and all(m.baseline_target_date < m.target_date for m in slipped)


def test_criteria_risks_and_updates(demo):
    success = Criterion.objects.filter(milestone__team=demo)
    assert set(success.values_list("category", flat=True)) == set(CriterionCategory.values)
    assert set(success.values_list("level", flat=True)) == set(CriterionLevel.values)
    measured = Criterion.objects.filter(milestone__team=demo, target__isnull=False)
    assert measured.filter(met=True, actual__isnull=False).exists()
    assert measured.filter(met=False, actual__isnull=False).exists()
    assert measured.filter(actual__isnull=True).exists()
    assert measured.filter(comparator=">=", unit="jobs/s", met=True).exists()
    acceptance = Criterion.objects.filter(deliverable__milestone__team=demo)
    assert acceptance.filter(checked=True).exists() and acceptance.filter(checked=False).exists()
    ticked = Criterion.objects.filter(checked=True)
    assert not ticked.filter(checked_by=None).exists()
    assert not ticked.filter(checked_at=None).exists()
    assert Criterion.objects.filter(plan__team=demo).exists()

    risks = Risk.objects.in_team(demo)
    assert risks.filter(likelihood=Level.HIGH, impact=Level.HIGH, mitigation="").exists()
    assert risks.exclude(mitigation="").exists()

    updates = StatusUpdate.objects.filter(milestone__team=demo)
    assert updates.filter(created_at__lt=timezone.now() - datetime.timedelta(days=7)).exists()
    assert len(set(updates.values_list("health", flat=True))) == 3
    assert updates.filter(next_update_on__gt=today()).exists()
    assert not updates.filter(author__username="vera").exists()


def test_dependencies_and_stakeholders(demo):
    links = Dependency.objects.in_team(demo).select_related("predecessor", "successor")
    assert any(link.predecessor.plan_id != link.successor.plan_id for link in links)
    assert any(link.lag_days > 0 for link in links)
    following = {}  # a chain a → b → c within one plan
    for link in links:
        if link.predecessor.plan_id == link.successor.plan_id:
            following.setdefault(link.predecessor_id, set()).add(link.successor_id)
    assert any(following.get(b) for successors in following.values() for b in successors)

    stakeholders = Stakeholder.objects.filter(plan__team=demo)
    assert stakeholders.filter(user__isnull=False).exists()
    assert stakeholders.filter(user=None, name="").exclude(email="").exists()


def test_every_write_is_logged_with_a_demo_author(demo):
    activity = Activity.objects.in_team(demo)
    writers = {name for name, role in DEMO_ROLES.items() if role != Role.VIEWER}
    assert set(activity.values_list("actor__username", flat=True)) <= writers
    created = activity.filter(verb="created")
    for milestone in Milestone.objects.in_team(demo):
        assert created.filter(milestone=milestone, object_type="milestone").exists()
    for plan in Plan.objects.in_team(demo):
        assert created.filter(plan=plan, object_type="plan").exists()
    assert activity.filter(verb="checked").exists()
    assert activity.filter(object_type="dependency").count() == Dependency.objects.count()
    closed = activity.filter(object_type="milestone", verb="updated")
    assert {a.changes["status"][1] for a in closed} == {"completed", "cancelled"}


def test_second_run_changes_nothing(demo):
    before = row_counts()
    passwords = dict(User.objects.values_list("username", "password"))
    output = seed()
    assert "already" in output
    assert row_counts() == before
    assert dict(User.objects.values_list("username", "password")) == passwords
    assert seed("--if-empty") and row_counts() == before


def test_if_empty_does_nothing_when_another_team_exists(db):
    make_team("Rocket")
    before = row_counts()
    output = seed("--if-empty")
    assert "already has teams" in output
    assert row_counts() == before
    assert not Team.objects.filter(slug="demo").exists()


def test_if_empty_seeds_an_empty_database(db):
    seed("--if-empty")
    assert Team.objects.get(slug="demo").milestones.count() >= 13


def test_refuses_to_adopt_existing_users(db):
    make_user("Alice")
    before = row_counts()
    with pytest.raises(CommandError, match="Alice"):
        seed()
    assert row_counts() == before


def test_a_failure_half_way_leaves_nothing_behind(db, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("link refused")

    monkeypatch.setattr(services, "add_dependency", broken)  # the last step of the seed
    before = row_counts()
    with pytest.raises(RuntimeError):
        seed()
    assert row_counts() == before


def test_dates_follow_the_day_it_runs(db, monkeypatch):
    later = timezone.localdate() + datetime.timedelta(days=1000)
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: later)
    assert today() == later
    seed()
    team = Team.objects.get(slug="demo")
    overdue = Milestone.objects.in_team(team).overdue()
    assert overdue.exists() and all(m.target_date > later - datetime.timedelta(60) for m in overdue)
    assert Blocker.objects.in_team(team).past_target().exists()
    planned = Milestone.objects.in_team(team).filter(status=MilestoneStatus.PLANNED)
    assert all(m.start_date > later for m in planned)
