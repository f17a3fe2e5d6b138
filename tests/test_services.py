"""Services write activity and keep the database whole; querysets and access helpers scope by
team; accounts log in by username or e-mail."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from accounts.models import Role, User
from milestones import access, services
from milestones.models import (
    Activity,
    Blocker,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    MilestoneStatus,
    Plan,
    Risk,
    today,
)
from tests.factories import (
    PASSWORD,
    add_member,
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_plan,
    make_risk,
    make_status_update,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db

D = datetime.date
ONE_WEEK = datetime.timedelta(days=7)


def latest_activity() -> Activity:
    return Activity.objects.order_by("-pk").first()


def activity_for(obj) -> list[tuple[str, dict]]:
    rows = Activity.objects.filter(object_type=obj._meta.model_name, object_id=obj.pk)
    return [(row.verb, row.changes) for row in rows.order_by("pk")]


# --- Activity on create ---------------------------------------------------------------------


def test_it_records_creating_a_plan(world):
    plan = make_plan(world.team, world.member, title="Second plan")
    row = latest_activity()
    assert (row.verb, row.object_type, row.object_id) == ("created", "plan", plan.pk)
    assert row.object_repr == "PLAN-002 Second plan"
    assert (row.actor, row.team, row.plan, row.milestone) == (world.member, world.team, plan, None)
    assert row.changes == {}


def test_it_records_creating_a_milestone(world):
    row = Activity.objects.get(object_type="milestone", object_id=world.milestone.pk)
    assert row.verb == "created"
    assert row.object_repr == "MLS-001 Export queue ready"
    assert (row.actor, row.team, row.plan, row.milestone) == (
        world.admin,
        world.team,
        world.plan,
        world.milestone,
    )
    assert row.changes == {}


@pytest.mark.parametrize("kind", ["deliverable", "risk", "blocker", "statusupdate"])
def test_it_records_creating_a_milestone_child(world, kind):
    maker = {
        "deliverable": make_deliverable,
        "risk": make_risk,
        "blocker": make_blocker,
        "statusupdate": make_status_update,
    }[kind]
    obj = maker(world.milestone, world.member)
    row = latest_activity()
    assert (row.verb, row.object_type, row.object_id) == ("created", kind, obj.pk)
    assert (row.actor, row.team, row.plan, row.milestone) == (
        world.member,
        world.team,
        world.plan,
        world.milestone,
    )


def test_it_files_each_kind_of_criterion_under_its_owner(world):
    deliverable = make_deliverable(world.milestone, world.member)
    expected = {
        "plan": (world.plan, None),
        "milestone": (world.plan, world.milestone),
        "deliverable": (world.plan, world.milestone),
    }
    owners = {"plan": world.plan, "milestone": world.milestone, "deliverable": deliverable}
    for owner_field, (plan, milestone) in expected.items():
        criterion = make_criterion(world.member, **{owner_field: owners[owner_field]})
        row = latest_activity()
        assert (row.object_type, row.object_id, row.verb) == ("criterion", criterion.pk, "created")
        assert (row.team, row.plan, row.milestone) == (world.team, plan, milestone), owner_field


def test_it_files_a_dependency_under_its_successor(world):
    successor = make_milestone(world.plan, world.admin)
    dependency = services.add_dependency(world.milestone, successor, actor=world.member)
    row = latest_activity()
    assert (row.object_type, row.object_id, row.object_repr) == (
        "dependency",
        dependency.pk,
        "MLS-001 → MLS-002",
    )
    assert (row.team, row.plan, row.milestone) == (world.team, world.plan, successor)


def test_it_records_no_actor_for_an_anonymous_or_missing_actor(world):
    make_risk(world.milestone, AnonymousUser())
    assert latest_activity().actor is None
    make_risk(world.milestone, None)
    assert latest_activity().actor is None


# --- Activity on update ---------------------------------------------------------------------


def test_it_records_an_update_with_before_and_after(world):
    old_title = world.milestone.title
    old_target = world.milestone.target_date
    new_target = old_target + datetime.timedelta(days=5)
    diff = services.update_object(
        world.milestone,
        actor=world.member,
        title="Export queue live",
        target_date=new_target,
        owner=world.member,
    )
    expected = {
        "title": [old_title, "Export queue live"],
        "target_date": [old_target.isoformat(), new_target.isoformat()],
        "owner": [None, "max"],
    }
    assert diff == expected
    row = latest_activity()
    assert (row.verb, row.object_type, row.object_id) == (
        "updated",
        "milestone",
        world.milestone.pk,
    )
    assert (row.actor, row.team, row.plan, row.milestone) == (
        world.member,
        world.team,
        world.plan,
        world.milestone,
    )
    assert row.changes == expected
    assert row.object_repr == "MLS-001 Export queue live"
    stored = Milestone.objects.get(pk=world.milestone.pk)
    assert (stored.title, stored.target_date, stored.owner) == (
        "Export queue live",
        new_target,
        world.member,
    )


def test_it_records_only_the_fields_that_changed(world):
    services.update_object(
        world.milestone,
        actor=world.member,
        title=world.milestone.title,
        status=MilestoneStatus.IN_PROGRESS,
    )
    assert latest_activity().changes == {"status": ["planned", "in_progress"]}


def test_it_records_decimal_changes_as_plain_numbers(world):
    criterion = make_criterion(
        world.member, milestone=world.milestone, target=Decimal("200"), comparator="<="
    )
    services.update_object(criterion, actor=world.member, actual=Decimal("180.5000"))
    row = latest_activity()
    assert (row.verb, row.object_type, row.milestone) == ("updated", "criterion", world.milestone)
    assert row.changes == {"actual": [None, "180.5"]}


def test_it_writes_nothing_when_nothing_changed(world):
    before = Activity.objects.count()
    updated_at = Milestone.objects.get(pk=world.milestone.pk).updated_at
    diff = services.update_object(
        world.milestone,
        actor=world.member,
        title=world.milestone.title,
        target_date=world.milestone.target_date,
    )
    assert diff == {}
    assert Activity.objects.count() == before
    assert Milestone.objects.get(pk=world.milestone.pk).updated_at == updated_at


def test_it_refuses_to_change_unknown_or_bookkeeping_fields(world):
    before = Activity.objects.count()
    for field in ["nonsense", "version", "team", "created_at"]:
        with pytest.raises(ValueError, match=field):
            services.update_object(world.milestone, actor=world.member, **{field: 7})
    assert Activity.objects.count() == before
    assert Milestone.objects.get(pk=world.milestone.pk).version == 1


def test_it_leaves_the_database_unchanged_when_an_update_is_invalid(world):
    stored_before = Milestone.objects.get(pk=world.milestone.pk)
    activity_before = Activity.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.update_object(
            world.milestone,
            actor=world.member,
            title="Half saved?",
            status=MilestoneStatus.COMPLETED,
            target_date=world.milestone.start_date - datetime.timedelta(days=1),
        )
    assert "target_date" in exc.value.message_dict
    stored = Milestone.objects.get(pk=world.milestone.pk)
    assert (stored.title, stored.status, stored.target_date, stored.completed_on) == (
        stored_before.title,
        MilestoneStatus.PLANNED,
        stored_before.target_date,
        None,
    )
    assert stored.version == 1
    assert Activity.objects.count() == activity_before


def test_it_leaves_the_database_unchanged_when_a_create_is_invalid(world):
    activity_before = Activity.objects.count()
    with pytest.raises(ValidationError):
        make_milestone(world.plan, world.admin, owner=world.outsider)
    assert Milestone.objects.count() == 1
    assert Activity.objects.count() == activity_before
    # The key counter advanced inside the failed transaction is rolled back with it.
    assert make_milestone(world.plan, world.admin).key == "MLS-002"


# --- Activity on delete ---------------------------------------------------------------------


def test_it_keeps_the_activity_row_of_a_deleted_object(world):
    risk = make_risk(world.milestone, world.member, title="Vendor late")
    risk_pk = risk.pk
    services.delete_object(risk, actor=world.admin)
    assert not Risk.objects.filter(pk=risk_pk).exists()
    row = Activity.objects.get(object_type="risk", object_id=risk_pk, verb="deleted")
    assert row.object_repr == "Vendor late"
    assert (row.actor, row.team, row.plan, row.milestone) == (
        world.admin,
        world.team,
        world.plan,
        world.milestone,
    )
    verbs = Activity.objects.filter(object_type="risk", object_id=risk_pk).values_list(
        "verb", flat=True
    )
    assert sorted(verbs) == ["created", "deleted"]


def test_it_keeps_a_deleted_milestones_history(world):
    milestone_pk = world.milestone.pk
    services.update_object(world.milestone, actor=world.member, title="Renamed")
    services.delete_object(world.milestone, actor=world.admin)
    assert not Milestone.objects.filter(pk=milestone_pk).exists()
    rows = Activity.objects.filter(object_type="milestone", object_id=milestone_pk).order_by("pk")
    assert [row.verb for row in rows] == ["created", "updated", "deleted"]
    assert all(row.milestone_id is None for row in rows)
    assert all(row.plan_id == world.plan.pk and row.team_id == world.team.pk for row in rows)
    assert rows[2].object_repr == "MLS-001 Renamed"
    assert rows[2].actor == world.admin


def test_it_keeps_a_deleted_plans_activity(world):
    plan = make_plan(world.team, world.member, title="Short-lived")
    plan_pk = plan.pk
    services.delete_object(plan, actor=world.member)
    assert not Plan.objects.filter(pk=plan_pk).exists()
    row = Activity.objects.get(object_type="plan", object_id=plan_pk, verb="deleted")
    assert (row.team, row.plan, row.milestone, row.object_repr) == (
        world.team,
        None,
        None,
        "PLAN-002 Short-lived",
    )


# --- Ticking criteria -----------------------------------------------------------------------


def test_it_records_who_ticked_a_criterion_and_when(world):
    criterion = make_criterion(world.member, milestone=world.milestone)
    before = timezone.now()
    services.set_criterion_checked(criterion, actor=world.admin, checked=True)
    after = timezone.now()
    stored = Criterion.objects.get(pk=criterion.pk)
    assert stored.checked is True
    assert stored.checked_by == world.admin
    assert before <= stored.checked_at <= after
    row = latest_activity()
    assert (row.verb, row.object_type, row.object_id, row.actor) == (
        "checked",
        "criterion",
        criterion.pk,
        world.admin,
    )
    assert row.milestone == world.milestone


def test_it_clears_who_and_when_when_a_criterion_is_unticked(world):
    criterion = make_criterion(world.member, milestone=world.milestone)
    services.set_criterion_checked(criterion, actor=world.admin, checked=True)
    services.set_criterion_checked(criterion, actor=world.member, checked=False)
    stored = Criterion.objects.get(pk=criterion.pk)
    assert (stored.checked, stored.checked_by, stored.checked_at) == (False, None, None)
    assert activity_for(criterion) == [("created", {}), ("checked", {}), ("unchecked", {})]
    assert latest_activity().actor == world.member


def test_it_writes_nothing_when_ticking_an_already_ticked_criterion(world):
    criterion = make_criterion(world.member, milestone=world.milestone)
    services.set_criterion_checked(criterion, actor=world.admin, checked=True)
    first_at = Criterion.objects.get(pk=criterion.pk).checked_at
    services.set_criterion_checked(criterion, actor=world.member, checked=True)
    stored = Criterion.objects.get(pk=criterion.pk)
    assert (stored.checked_by, stored.checked_at) == (world.admin, first_at)
    assert [verb for verb, _ in activity_for(criterion)] == ["created", "checked"]


# --- visible_to -----------------------------------------------------------------------------


@pytest.fixture
def two_teams(world):
    """For each model, one object in the world's team and one in the other team."""
    other_plan = make_plan(world.other_team, world.outsider)
    other_milestone = make_milestone(other_plan, world.outsider)
    return {
        Plan: (world.plan, other_plan),
        Milestone: (world.milestone, other_milestone),
        Risk: (make_risk(world.milestone), make_risk(other_milestone)),
        Blocker: (make_blocker(world.milestone), make_blocker(other_milestone)),
    }


@pytest.mark.parametrize("model", [Plan, Milestone, Risk, Blocker], ids=lambda m: m.__name__)
def test_it_shows_only_the_users_team_objects(world, two_teams, model):
    ours, theirs = two_teams[model]
    for user in (world.admin, world.member, world.viewer):
        assert list(model.objects.visible_to(user)) == [ours]
    assert list(model.objects.visible_to(world.outsider)) == [theirs]


@pytest.mark.parametrize("model", [Plan, Milestone, Risk, Blocker], ids=lambda m: m.__name__)
def test_it_shows_nothing_to_anonymous_users_or_users_without_a_team(world, two_teams, model):
    assert not model.objects.visible_to(AnonymousUser()).exists()
    assert not model.objects.visible_to(make_user()).exists()


@pytest.mark.parametrize("model", [Plan, Milestone, Risk, Blocker], ids=lambda m: m.__name__)
def test_it_shows_a_member_of_two_teams_both_without_duplicates(world, two_teams, model):
    add_member(world.other_team, world.member, Role.VIEWER)
    visible = list(model.objects.visible_to(world.member))
    assert sorted(obj.pk for obj in visible) == sorted(obj.pk for obj in two_teams[model])


# --- Access helpers -------------------------------------------------------------------------


@pytest.fixture
def lookups(world):
    """For each helper, a function (user, for_write) → object, and the object it should find."""
    milestone = world.milestone
    deliverable = make_deliverable(milestone, world.admin)
    risk = make_risk(milestone, world.admin)
    blocker = make_blocker(milestone, world.admin)
    update = make_status_update(milestone, world.admin)
    successor = make_milestone(world.plan, world.admin)
    dependency = services.add_dependency(milestone, successor, actor=world.admin)
    plan_criterion = make_criterion(world.admin, plan=world.plan)
    milestone_criterion = make_criterion(world.admin, milestone=milestone)
    acceptance_criterion = make_criterion(world.admin, deliverable=deliverable)
    slug = world.team.slug
    return {
        "plan": (lambda u, w: access.access_plan(u, slug, "PLAN-001", for_write=w), world.plan),
        "milestone": (
            lambda u, w: access.access_milestone(u, slug, "MLS-001", for_write=w),
            milestone,
        ),
        "deliverable": (
            lambda u, w: access.access_deliverable(u, deliverable.pk, for_write=w),
            deliverable,
        ),
        "risk": (lambda u, w: access.access_risk(u, risk.pk, for_write=w), risk),
        "blocker": (lambda u, w: access.access_blocker(u, blocker.pk, for_write=w), blocker),
        "status_update": (
            lambda u, w: access.access_status_update(u, update.pk, for_write=w),
            update,
        ),
        "dependency": (
            lambda u, w: access.access_dependency(u, dependency.pk, for_write=w),
            dependency,
        ),
        "plan_criterion": (
            lambda u, w: access.access_criterion(u, plan_criterion.pk, for_write=w),
            plan_criterion,
        ),
        "milestone_criterion": (
            lambda u, w: access.access_criterion(u, milestone_criterion.pk, for_write=w),
            milestone_criterion,
        ),
        "acceptance_criterion": (
            lambda u, w: access.access_criterion(u, acceptance_criterion.pk, for_write=w),
            acceptance_criterion,
        ),
    }


ACCESS_KINDS = [
    "plan",
    "milestone",
    "deliverable",
    "risk",
    "blocker",
    "status_update",
    "dependency",
    "plan_criterion",
    "milestone_criterion",
    "acceptance_criterion",
]


@pytest.mark.parametrize("kind", ACCESS_KINDS)
@pytest.mark.parametrize("for_write", [False, True])
def test_it_hides_another_teams_object_from_an_outsider(world, lookups, kind, for_write):
    get, _ = lookups[kind]
    with pytest.raises(Http404):
        get(world.outsider, for_write)


@pytest.mark.parametrize("kind", ACCESS_KINDS)
def test_it_hides_objects_from_anonymous_users(lookups, kind):
    get, _ = lookups[kind]
    with pytest.raises(Http404):
        get(AnonymousUser(), False)


@pytest.mark.parametrize("kind", ACCESS_KINDS)
def test_it_refuses_a_viewer_write_access(world, lookups, kind):
    get, _ = lookups[kind]
    with pytest.raises(PermissionDenied):
        get(world.viewer, True)


@pytest.mark.parametrize("kind", ACCESS_KINDS)
def test_it_lets_a_viewer_read(world, lookups, kind):
    get, expected = lookups[kind]
    assert get(world.viewer, False) == expected


@pytest.mark.parametrize("kind", ACCESS_KINDS)
@pytest.mark.parametrize("role", ["member", "admin"])
def test_it_lets_members_and_admins_write(world, lookups, kind, role):
    get, expected = lookups[kind]
    assert get(getattr(world, role), True) == expected


def test_it_answers_404_for_a_key_that_does_not_exist(world):
    with pytest.raises(Http404):
        access.access_milestone(world.member, world.team.slug, "MLS-999")


def test_it_answers_404_for_an_own_key_under_another_teams_slug(world):
    add_member(world.other_team, world.member, Role.MEMBER)
    with pytest.raises(Http404):
        access.access_milestone(world.member, world.other_team.slug, "MLS-001")


def test_it_checks_the_role_in_the_objects_own_team(world):
    """A user who can write in one team but only read in another is a viewer there."""
    add_member(world.other_team, world.viewer, Role.ADMIN)
    other_plan = make_plan(world.other_team, world.outsider)
    other_milestone = make_milestone(other_plan, world.outsider)
    risk = make_risk(world.milestone)
    other_risk = make_risk(other_milestone)
    assert access.access_risk(world.viewer, other_risk.pk, for_write=True) == other_risk
    with pytest.raises(PermissionDenied):
        access.access_risk(world.viewer, risk.pk, for_write=True)


def test_it_hides_a_dependency_of_another_team(world):
    plan = make_plan(world.other_team, world.outsider)
    a, b = make_milestone(plan, world.outsider), make_milestone(plan, world.outsider)
    dependency = services.add_dependency(a, b, actor=world.outsider)
    with pytest.raises(Http404):
        access.access_dependency(world.member, dependency.pk)
    assert Dependency.objects.filter(pk=dependency.pk).exists()


# --- Accounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login",
    ["ada", "ADA", "Ada", "  ada ", "ada@example.com", "ADA@Example.COM", " Ada@example.com"],
)
def test_it_logs_in_with_username_or_email_in_any_case(world, login):
    assert authenticate(None, username=login, password=PASSWORD) == world.admin


@pytest.mark.parametrize("login", ["ada", "ada@example.com"])
def test_it_refuses_a_wrong_password(world, login):
    assert authenticate(None, username=login, password="wrong") is None
    assert authenticate(None, username=login, password=PASSWORD.upper()) is None
    assert authenticate(None, username=login, password="") is None


@pytest.mark.parametrize("login", ["nobody", "nobody@example.com", "", "ada@"])
def test_it_refuses_an_unknown_login(world, login):
    assert authenticate(None, username=login, password=PASSWORD) is None


def test_it_refuses_an_inactive_user(world):
    User.objects.filter(pk=world.admin.pk).update(is_active=False)
    assert authenticate(None, username="ada", password=PASSWORD) is None


def test_it_does_not_confuse_one_users_email_with_anothers_username(db):
    first = make_user("first", email="second@example.com")
    second = make_user("second", email="someone@example.com")
    assert authenticate(None, username="second@example.com", password=PASSWORD) == first
    assert authenticate(None, username="second", password=PASSWORD) == second


def test_it_refuses_an_email_that_differs_only_in_case_in_the_database(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_user("ada2", email="ADA@example.com")
    assert not User.objects.filter(username="ada2").exists()


def test_it_refuses_an_email_that_differs_only_in_case_in_full_clean(world):
    user = User(username="ada2", email="Ada@Example.com")
    user.set_password(PASSWORD)
    with pytest.raises(ValidationError) as exc:
        user.full_clean()
    assert "A user with this e-mail address already exists." in exc.value.messages


def test_it_refuses_a_username_that_differs_only_in_case(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_user("ADA", email="another@example.com")


def test_it_allows_several_users_without_an_email(db):
    make_user("nomail1", email="")
    make_user("nomail2", email="")
    assert User.objects.filter(email="").count() == 2


def test_a_team_without_a_slug_gets_one_from_its_name(db):
    assert make_team("Data Platform").slug == "data-platform"


# --- Rules added after review ---------------------------------------------------------------


def test_a_milestone_created_as_completed_gets_its_completion_date(world):
    milestone = make_milestone(world.plan, world.member, status="completed")
    assert milestone.completed_on == today()


def test_a_milestone_created_open_has_no_completion_date(world):
    milestone = make_milestone(world.plan, world.member, completed_on=today())
    assert milestone.completed_on is None


def test_the_baseline_is_filled_the_first_time_a_target_is_given(world):
    milestone = make_milestone(world.plan, world.member, start_date=None, target_date=None)
    assert milestone.baseline_target_date is None
    target = today() + datetime.timedelta(days=30)
    services.update_object(milestone, actor=world.member, target_date=target)
    milestone.refresh_from_db()
    assert milestone.baseline_target_date == target
    services.update_object(milestone, actor=world.member, target_date=target + ONE_WEEK)
    milestone.refresh_from_db()
    assert milestone.baseline_target_date == target
    assert milestone.slip_days == 7


def test_the_baseline_cannot_be_rewritten(world):
    original = world.milestone.baseline_target_date
    with pytest.raises(ValidationError) as refused:
        services.update_object(
            world.milestone, actor=world.member, baseline_target_date=original + ONE_WEEK
        )
    assert "baseline_target_date" in refused.value.message_dict
    world.milestone.refresh_from_db()
    assert world.milestone.baseline_target_date == original


def test_a_refused_update_leaves_the_object_in_memory_unchanged(world):
    milestone = world.milestone
    title, start = milestone.title, milestone.start_date
    with pytest.raises(ValidationError):
        services.update_object(
            milestone,
            actor=world.member,
            title="Renamed",
            target_date=start - ONE_WEEK,
            status="completed",
        )
    assert milestone.title == title
    assert milestone.completed_on is None
    assert milestone.status == "planned"


def test_ticking_a_measured_criterion_is_refused(world):
    criterion = make_criterion(
        world.member, milestone=world.milestone, target=Decimal("10"), comparator=">="
    )
    with pytest.raises(ValidationError) as refused:
        services.set_criterion_checked(criterion, actor=world.member, checked=True)
    assert "actual value" in str(refused.value)
    criterion.refresh_from_db()
    assert criterion.checked is False


@pytest.mark.parametrize("kind", ["plan", "deliverable", "risk", "blocker"])
def test_an_owner_from_another_team_is_refused(world, kind):
    build = {
        "plan": lambda: Plan(team=world.team, key="PLAN-900", title="P", owner=world.outsider),
        "deliverable": lambda: Deliverable(
            milestone=world.milestone, title="D", owner=world.outsider
        ),
        "risk": lambda: Risk(milestone=world.milestone, title="R", owner=world.outsider),
        "blocker": lambda: Blocker(milestone=world.milestone, title="B", owner=world.outsider),
    }[kind]
    with pytest.raises(ValidationError) as refused:
        services.create_object(build(), actor=world.member)
    assert refused.value.message_dict["owner"] == ["The owner must be a member of the team."]


def test_a_username_with_an_at_sign_can_still_log_in_by_username(db):
    from accounts.backends import UsernameOrEmailBackend

    user = make_user("ops@team", email="someone@example.com")
    backend = UsernameOrEmailBackend()
    assert backend.authenticate(None, username="ops@team", password=PASSWORD) == user
    assert backend.authenticate(None, username="someone@example.com", password=PASSWORD) == user
