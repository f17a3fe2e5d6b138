"""Model rules: each refusal, both in `full_clean` and in the database, and derived values."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from milestones import services
from milestones.models import (
    Criterion,
    Milestone,
    MilestoneStatus,
    Plan,
    Risk,
    StatusUpdate,
)
from tests.factories import (
    add_member,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_plan,
    make_risk,
    make_team,
)

pytestmark = pytest.mark.django_db


D = datetime.date
START = D(2030, 3, 10)
BEFORE_START = D(2030, 3, 9)


def refuses_in_db(callable_):
    """Run `callable_` in a savepoint and assert the database refuses it."""
    with pytest.raises(IntegrityError), transaction.atomic():
        callable_()


def field_errors(exc_info) -> dict:
    return exc_info.value.message_dict


# --- Dates ----------------------------------------------------------------------------------


def test_it_refuses_a_plan_target_date_before_its_start_date_in_full_clean(world):
    plan = Plan(
        team=world.team, key="PLAN-050", title="P", start_date=START, target_date=BEFORE_START
    )
    with pytest.raises(ValidationError) as exc:
        plan.full_clean()
    assert "target_date" in field_errors(exc)


def test_it_refuses_a_plan_target_date_before_its_start_date_through_services(world):
    with pytest.raises(ValidationError):
        make_plan(world.team, world.admin, start_date=START, target_date=BEFORE_START)
    assert Plan.objects.filter(team=world.team).count() == 1


def test_it_refuses_a_plan_target_date_before_its_start_date_on_save(world):
    plan = Plan(
        team=world.team, key="PLAN-050", title="P", start_date=START, target_date=BEFORE_START
    )
    refuses_in_db(plan.save)
    assert not Plan.objects.filter(key="PLAN-050").exists()


def test_it_refuses_a_plan_target_date_before_its_start_date_on_queryset_update(world):
    Plan.objects.filter(pk=world.plan.pk).update(start_date=START, target_date=START)
    refuses_in_db(lambda: Plan.objects.filter(pk=world.plan.pk).update(target_date=BEFORE_START))
    world.plan.refresh_from_db()
    assert world.plan.target_date == START


def test_it_accepts_a_plan_target_date_equal_to_start_or_with_one_date_missing(world):
    for start, target in [(START, START), (None, BEFORE_START), (START, None)]:
        plan = make_plan(world.team, world.admin, start_date=start, target_date=target)
        assert plan.pk


def test_it_refuses_a_milestone_target_date_before_its_start_date_in_full_clean(world):
    milestone = Milestone(
        team=world.team,
        plan=world.plan,
        key="MLS-050",
        title="M",
        start_date=START,
        target_date=BEFORE_START,
    )
    with pytest.raises(ValidationError) as exc:
        milestone.full_clean()
    assert "target_date" in field_errors(exc)


def test_it_refuses_a_milestone_target_date_before_its_start_date_on_save(world):
    world.milestone.start_date = START
    world.milestone.target_date = BEFORE_START
    refuses_in_db(world.milestone.save)
    assert Milestone.objects.get(pk=world.milestone.pk).target_date != BEFORE_START


def test_it_refuses_a_milestone_target_date_before_its_start_date_on_queryset_update(world):
    queryset = Milestone.objects.filter(pk=world.milestone.pk)
    refuses_in_db(lambda: queryset.update(start_date=START, target_date=BEFORE_START))
    assert queryset.get().start_date != START


def test_it_accepts_a_milestone_target_date_equal_to_its_start_date(world):
    milestone = make_milestone(world.plan, world.admin, start_date=START, target_date=START)
    assert milestone.target_date == START


# --- Percent ranges -------------------------------------------------------------------------


def _status_update(world, **fields):
    fields.setdefault("percent_complete", 50)
    fields.setdefault("confidence", 50)
    return StatusUpdate(milestone=world.milestone, author=world.member, narrative="n", **fields)


@pytest.mark.parametrize("field", ["percent_complete", "confidence"])
@pytest.mark.parametrize("value", [-1, 101, 250])
def test_it_refuses_a_percentage_outside_0_to_100_in_full_clean(world, field, value):
    update = _status_update(world, **{field: value})
    with pytest.raises(ValidationError) as exc:
        update.full_clean()
    assert field in field_errors(exc)


@pytest.mark.parametrize("field", ["percent_complete", "confidence"])
@pytest.mark.parametrize("value", [0, 100])
def test_it_accepts_the_percentage_bounds(world, field, value):
    update = services.post_status_update(
        world.milestone,
        actor=world.member,
        narrative="n",
        **{"percent_complete": 50, "confidence": 50, field: value},
    )
    update.refresh_from_db()
    assert getattr(update, field) == value


@pytest.mark.parametrize("field", ["percent_complete", "confidence"])
@pytest.mark.parametrize("value", [-1, 101])
def test_it_refuses_a_percentage_outside_0_to_100_in_the_database(world, field, value):
    refuses_in_db(_status_update(world, **{field: value}).save)
    assert not StatusUpdate.objects.exists()


@pytest.mark.parametrize("field", ["percent_complete", "confidence"])
def test_it_refuses_a_percentage_above_100_on_queryset_update(world, field):
    update = services.post_status_update(
        world.milestone, actor=world.member, narrative="n", percent_complete=40, confidence=60
    )
    refuses_in_db(lambda: StatusUpdate.objects.filter(pk=update.pk).update(**{field: 101}))
    update.refresh_from_db()
    assert (update.percent_complete, update.confidence) == (40, 60)


# --- Enumerations ---------------------------------------------------------------------------


def _enum_cases(world):
    """(instance saved through services, field, an unknown value that fits the column)."""
    deliverable = make_deliverable(world.milestone, world.member)
    criterion = make_criterion(world.member, milestone=world.milestone)
    return {
        "plan.status": (world.plan, "status", "bogus"),
        "milestone.status": (world.milestone, "status", "bogus"),
        "milestone.priority": (world.milestone, "priority", "urgent"),
        "deliverable.status": (deliverable, "status", "shipped"),
        "criterion.level": (criterion, "level", "could"),
        "criterion.category": (criterion, "category", "legal"),
        "criterion.comparator": (criterion, "comparator", "!="),
        "risk.likelihood": (make_risk(world.milestone, world.member), "likelihood", "extreme"),
        "risk.impact": (make_risk(world.milestone, world.member), "impact", "extreme"),
    }


ENUM_CASES = [
    "plan.status",
    "milestone.status",
    "milestone.priority",
    "deliverable.status",
    "criterion.level",
    "criterion.category",
    "criterion.comparator",
    "risk.likelihood",
    "risk.impact",
]


@pytest.mark.parametrize("case", ENUM_CASES)
def test_it_refuses_an_unknown_enum_value_in_full_clean(world, case):
    obj, field, value = _enum_cases(world)[case]
    if field == "comparator":
        obj.target = Decimal("1")  # a comparator needs a target; only the value is wrong
    setattr(obj, field, value)
    with pytest.raises(ValidationError) as exc:
        obj.full_clean()
    assert field in field_errors(exc)


@pytest.mark.parametrize("case", ENUM_CASES)
def test_it_refuses_an_unknown_enum_value_through_update_object(world, case):
    obj, field, value = _enum_cases(world)[case]
    with pytest.raises(ValidationError):
        services.update_object(obj, actor=world.member, **{field: value})
    assert getattr(type(obj).objects.get(pk=obj.pk), field) != value


@pytest.mark.parametrize("case", ENUM_CASES)
def test_it_refuses_an_unknown_enum_value_in_the_database(world, case):
    obj, field, value = _enum_cases(world)[case]
    extra = {"target": Decimal("1")} if field == "comparator" else {}
    queryset = type(obj).objects.filter(pk=obj.pk)
    refuses_in_db(lambda: queryset.update(**{field: value}, **extra))
    assert getattr(queryset.get(), field) != value


def test_it_refuses_an_unknown_milestone_status_on_save(world):
    world.milestone.status = "bogus"
    refuses_in_db(world.milestone.save)


# --- Criteria -------------------------------------------------------------------------------


def test_it_refuses_a_measured_criterion_without_a_comparator_in_full_clean(world):
    criterion = Criterion(milestone=world.milestone, text="p95", target=Decimal("200"))
    with pytest.raises(ValidationError) as exc:
        criterion.full_clean()
    assert "comparator" in field_errors(exc)


def test_it_refuses_a_measured_criterion_without_a_comparator_in_the_database(world):
    criterion = Criterion(milestone=world.milestone, text="p95", target=Decimal("200"))
    refuses_in_db(criterion.save)
    assert not Criterion.objects.exists()


def test_it_refuses_a_comparator_without_a_target(world):
    criterion = Criterion(milestone=world.milestone, text="p95", comparator="<=")
    with pytest.raises(ValidationError) as exc:
        criterion.full_clean()
    assert "target" in field_errors(exc)


def test_it_refuses_an_actual_value_without_a_target(world):
    criterion = Criterion(milestone=world.milestone, text="p95", actual=Decimal("3"))
    with pytest.raises(ValidationError) as exc:
        criterion.full_clean()
    assert "actual" in field_errors(exc)


def _owner_combinations(world):
    deliverable = make_deliverable(world.milestone, world.member)
    return {
        "none": {},
        "plan+milestone": {"plan": world.plan, "milestone": world.milestone},
        "milestone+deliverable": {"milestone": world.milestone, "deliverable": deliverable},
        "plan+deliverable": {"plan": world.plan, "deliverable": deliverable},
        "all three": {"plan": world.plan, "milestone": world.milestone, "deliverable": deliverable},
    }


OWNER_CASES = ["none", "plan+milestone", "milestone+deliverable", "plan+deliverable", "all three"]


@pytest.mark.parametrize("case", OWNER_CASES)
def test_it_refuses_a_criterion_without_exactly_one_owner_in_full_clean(world, case):
    criterion = Criterion(text="owned?", **_owner_combinations(world)[case])
    with pytest.raises(ValidationError) as exc:
        criterion.full_clean()
    assert "exactly one plan, milestone or deliverable" in str(exc.value)


@pytest.mark.parametrize("case", OWNER_CASES)
def test_it_refuses_a_criterion_without_exactly_one_owner_in_the_database(world, case):
    criterion = Criterion(text="owned?", **_owner_combinations(world)[case])
    refuses_in_db(criterion.save)
    assert not Criterion.objects.filter(text="owned?").exists()


def test_it_accepts_a_criterion_on_each_single_owner(world):
    deliverable = make_deliverable(world.milestone, world.member)
    kinds = []
    for owner in [
        {"plan": world.plan},
        {"milestone": world.milestone},
        {"deliverable": deliverable},
    ]:
        kinds.append(make_criterion(world.member, **owner).kind)
    assert kinds == ["plan", "success", "acceptance"]


@pytest.mark.parametrize(
    ("comparator", "target", "actual", "expected"),
    [
        ("<", "10", "9.9999", True),
        ("<", "10", "10", False),
        ("<", "10", "11", False),
        ("<=", "10", "9", True),
        ("<=", "10", "10", True),
        ("<=", "10", "10.0001", False),
        ("=", "10", "10.0000", True),
        ("=", "10", "10.0001", False),
        ("=", "10", "9.9999", False),
        (">=", "10", "10", True),
        (">=", "10", "11", True),
        (">=", "10", "9.9999", False),
        (">", "10", "10.0001", True),
        (">", "10", "10", False),
        (">", "10", "9", False),
        (">", "-5", "-4", True),
        ("<", "0.5", "-1", True),
        ("<", "10", None, False),
        ("<=", "10", None, False),
        ("=", "10", None, False),
        (">=", "10", None, False),
        (">", "10", None, False),
    ],
)
def test_it_derives_met_from_the_comparator(world, comparator, target, actual, expected):
    criterion = make_criterion(
        world.member,
        milestone=world.milestone,
        target=Decimal(target),
        comparator=comparator,
        actual=None if actual is None else Decimal(actual),
        checked=True,  # ticking must not matter for a measured criterion
    )
    assert criterion.evaluate_met() is expected
    stored = Criterion.objects.get(pk=criterion.pk)
    assert stored.met is expected
    assert Criterion.objects.filter(pk=criterion.pk, met=expected).exists()


def test_it_recomputes_met_when_the_actual_value_changes(world):
    criterion = make_criterion(
        world.member, milestone=world.milestone, target=Decimal("99.9"), comparator=">="
    )
    assert Criterion.objects.get(pk=criterion.pk).met is False
    services.update_object(criterion, actor=world.member, actual=Decimal("99.95"))
    assert Criterion.objects.get(pk=criterion.pk).met is True
    services.update_object(criterion, actor=world.member, actual=Decimal("99.8"))
    assert Criterion.objects.get(pk=criterion.pk).met is False


@pytest.mark.parametrize("checked", [True, False])
def test_it_derives_met_from_checked_for_an_unmeasured_criterion(world, checked):
    criterion = make_criterion(world.member, milestone=world.milestone, checked=checked)
    assert criterion.evaluate_met() is checked
    assert Criterion.objects.get(pk=criterion.pk).met is checked


def test_it_follows_ticking_for_an_unmeasured_criterion(world):
    criterion = make_criterion(world.member, milestone=world.milestone)
    services.set_criterion_checked(criterion, actor=world.member, checked=True)
    assert Criterion.objects.get(pk=criterion.pk).met is True
    services.set_criterion_checked(criterion, actor=world.member, checked=False)
    assert Criterion.objects.get(pk=criterion.pk).met is False


# --- Risk score -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("likelihood", "impact", "score"),
    [
        ("low", "low", 1),
        ("low", "medium", 2),
        ("low", "high", 3),
        ("medium", "low", 2),
        ("medium", "medium", 4),
        ("medium", "high", 6),
        ("high", "low", 3),
        ("high", "medium", 6),
        ("high", "high", 9),
    ],
)
def test_it_scores_a_risk_as_likelihood_times_impact(world, likelihood, impact, score):
    risk = make_risk(world.milestone, world.member, likelihood=likelihood, impact=impact)
    assert Risk.objects.get(pk=risk.pk).score == score
    assert risk.compute_score() == score
    assert Risk.objects.filter(score=score, pk=risk.pk).exists()


def test_it_rescores_a_risk_when_its_likelihood_changes(world):
    risk = make_risk(world.milestone, world.member, likelihood="low", impact="high")
    assert Risk.objects.get(pk=risk.pk).score == 3
    services.update_object(risk, actor=world.member, likelihood="high")
    assert Risk.objects.get(pk=risk.pk).score == 9


# --- Keys -----------------------------------------------------------------------------------


def test_it_generates_milestone_keys_in_sequence_per_team(world):
    second = make_milestone(world.plan, world.admin)
    third = make_milestone(world.plan, world.admin)
    assert [world.milestone.key, second.key, third.key] == ["MLS-001", "MLS-002", "MLS-003"]


def test_it_starts_a_second_team_at_001(world):
    plan = make_plan(world.other_team, world.outsider)
    first = make_milestone(plan, world.outsider)
    second = make_milestone(plan, world.outsider)
    assert (first.key, second.key) == ("MLS-001", "MLS-002")
    assert plan.key == world.plan.key == "PLAN-001"


def test_it_uses_the_team_key_prefix(db):
    team = make_team("Operations", milestone_key_prefix="OPS")
    plan = make_plan(team)
    assert [make_milestone(plan).key, make_milestone(plan).key] == ["OPS-001", "OPS-002"]


def test_it_accepts_an_explicit_key(world):
    milestone = make_milestone(world.plan, world.admin, key="MLS-042")
    assert Milestone.objects.get(pk=milestone.pk).key == "MLS-042"


def test_it_skips_an_explicitly_taken_key_when_generating(world):
    make_milestone(world.plan, world.admin, key="MLS-002")
    assert make_milestone(world.plan, world.admin).key == "MLS-003"


def test_it_refuses_a_duplicate_key_within_a_team(world):
    with pytest.raises(ValidationError) as exc:
        make_milestone(world.plan, world.admin, key="MLS-001")
    assert "already has this key" in str(exc.value)
    assert Milestone.objects.filter(team=world.team).count() == 1


def test_it_refuses_a_duplicate_key_within_a_team_in_the_database(world):
    other = make_milestone(world.plan, world.admin)
    refuses_in_db(lambda: Milestone.objects.filter(pk=other.pk).update(key="MLS-001"))


def test_it_allows_the_same_key_in_another_team(world):
    plan = make_plan(world.other_team, world.outsider)
    milestone = make_milestone(plan, world.outsider, key="MLS-001")
    assert milestone.key == world.milestone.key


@pytest.mark.parametrize(
    "key",
    ["mls-001", "MLS001", "MLS-", "-001", "1MLS-001", "ABCDEFGHI-1", "MLS-1234567", "MLS 001"],
)
def test_it_refuses_a_malformed_key(world, key):
    with pytest.raises(ValidationError) as exc:
        make_milestone(world.plan, world.admin, key=key)
    assert "key" in field_errors(exc)
    assert not Milestone.objects.filter(key=key).exists()


# --- Baseline, version, completion ----------------------------------------------------------


def test_it_sets_the_baseline_from_the_target_on_creation(world):
    target = D(2030, 6, 1)
    milestone = make_milestone(world.plan, world.admin, start_date=START, target_date=target)
    assert Milestone.objects.get(pk=milestone.pk).baseline_target_date == target


def test_it_keeps_the_baseline_when_the_target_moves(world):
    milestone = make_milestone(world.plan, world.admin, start_date=START, target_date=D(2030, 6, 1))
    services.update_object(milestone, actor=world.admin, target_date=D(2030, 6, 15))
    stored = Milestone.objects.get(pk=milestone.pk)
    assert stored.target_date == D(2030, 6, 15)
    assert stored.baseline_target_date == D(2030, 6, 1)
    assert stored.slip_days == 14


def test_it_bumps_the_version_on_each_change(world):
    assert world.milestone.version == 1
    services.update_object(world.milestone, actor=world.member, title="Renamed")
    assert world.milestone.version == 2
    services.update_object(world.milestone, actor=world.member, summary="More")
    assert world.milestone.version == 3
    assert Milestone.objects.get(pk=world.milestone.pk).version == 3


def test_it_leaves_the_version_alone_when_nothing_changed(world):
    diff = services.update_object(world.milestone, actor=world.member, title=world.milestone.title)
    assert diff == {}
    assert world.milestone.version == 1
    assert Milestone.objects.get(pk=world.milestone.pk).version == 1


def test_it_sets_completed_on_when_completed_and_clears_it_when_reopened(world):
    services.update_object(world.milestone, actor=world.member, status=MilestoneStatus.COMPLETED)
    stored = Milestone.objects.get(pk=world.milestone.pk)
    assert stored.completed_on == timezone.localdate()
    services.update_object(world.milestone, actor=world.member, status=MilestoneStatus.IN_PROGRESS)
    assert Milestone.objects.get(pk=world.milestone.pk).completed_on is None


def test_it_does_not_set_completed_on_for_other_statuses(world):
    services.update_object(world.milestone, actor=world.member, status=MilestoneStatus.CANCELLED)
    assert Milestone.objects.get(pk=world.milestone.pk).completed_on is None


# --- Overdue and due soon -------------------------------------------------------------------


ON = D(2030, 5, 15)


def _dated(world, target, status=MilestoneStatus.PLANNED):
    milestone = make_milestone(
        world.plan, world.admin, start_date=D(2030, 1, 1), target_date=target
    )
    if status != MilestoneStatus.PLANNED:
        services.update_object(milestone, actor=world.admin, status=status)
    return milestone


def test_it_marks_a_milestone_overdue_only_after_its_target_date(world):
    milestone = _dated(world, ON)
    assert milestone.is_overdue(on=ON) is False
    assert milestone.is_overdue(on=ON + datetime.timedelta(days=1)) is True
    assert milestone.is_overdue(on=ON - datetime.timedelta(days=1)) is False


def test_it_never_marks_a_milestone_without_a_target_overdue(world):
    milestone = make_milestone(world.plan, world.admin, start_date=None, target_date=None)
    assert milestone.is_overdue(on=ON) is False
    assert milestone not in Milestone.objects.overdue(on=ON)


@pytest.mark.parametrize("status", [MilestoneStatus.COMPLETED, MilestoneStatus.CANCELLED])
def test_it_never_marks_a_closed_milestone_overdue(world, status):
    milestone = _dated(world, D(2030, 2, 1), status)
    assert milestone.is_overdue(on=ON) is False
    assert not Milestone.objects.overdue(on=ON).filter(pk=milestone.pk).exists()


def test_it_lists_overdue_milestones(world):
    late = _dated(world, ON - datetime.timedelta(days=1))
    in_progress_late = _dated(world, D(2030, 2, 1), MilestoneStatus.IN_PROGRESS)
    _dated(world, ON)
    _dated(world, D(2030, 2, 1), MilestoneStatus.COMPLETED)
    _dated(world, D(2030, 2, 1), MilestoneStatus.CANCELLED)
    overdue = set(Milestone.objects.filter(plan=world.plan).overdue(on=ON))
    # world.milestone's target is near today, long before 2030.
    assert overdue == {late, in_progress_late, world.milestone}
    assert Milestone.objects.filter(pk=world.milestone.pk).overdue(on=D(2000, 1, 1)).count() == 0


def test_it_lists_milestones_due_within_a_number_of_days(world):
    today_ = _dated(world, ON)
    last_day = _dated(world, ON + datetime.timedelta(days=7))
    _dated(world, ON + datetime.timedelta(days=8))
    _dated(world, ON - datetime.timedelta(days=1))
    _dated(world, ON + datetime.timedelta(days=3), MilestoneStatus.COMPLETED)
    _dated(world, ON + datetime.timedelta(days=3), MilestoneStatus.CANCELLED)
    due = set(Milestone.objects.due_within(7, on=ON))
    assert due == {today_, last_day}
    assert set(Milestone.objects.due_within(0, on=ON)) == {today_}


# --- Progress -------------------------------------------------------------------------------


def _progress_both_ways(milestone) -> tuple[int, int]:
    plain = Milestone.objects.get(pk=milestone.pk).progress
    annotated = Milestone.objects.with_progress().get(pk=milestone.pk).progress
    return plain, annotated


def test_it_reports_zero_progress_when_there_is_nothing_to_check(world):
    assert _progress_both_ways(world.milestone) == (0, 0)


def test_it_reports_full_progress_for_a_completed_milestone(world):
    make_criterion(world.member, milestone=world.milestone)  # unmet, still 100 when completed
    services.update_object(world.milestone, actor=world.member, status=MilestoneStatus.COMPLETED)
    assert _progress_both_ways(world.milestone) == (100, 100)


def test_it_reports_zero_progress_for_a_completed_milestone_reopened(world):
    services.update_object(world.milestone, actor=world.member, status=MilestoneStatus.COMPLETED)
    services.update_object(world.milestone, actor=world.member, status=MilestoneStatus.IN_PROGRESS)
    assert _progress_both_ways(world.milestone) == (0, 0)


def test_it_computes_progress_from_must_criteria_acceptance_criteria_and_deliverables(world):
    milestone, member = world.milestone, world.member
    # Must-level success criteria: 2, one met.
    make_criterion(member, milestone=milestone, level="must", checked=True)
    make_criterion(member, milestone=milestone, level="must")
    # Should-level success criteria and plan criteria are not items.
    make_criterion(member, milestone=milestone, level="should", checked=True)
    make_criterion(member, milestone=milestone, level="should")
    make_criterion(member, plan=world.plan, checked=True)
    # Deliverables: 2, one accepted. Acceptance criteria (any level): 3, two met.
    accepted = make_deliverable(milestone, member, status="accepted")
    open_ = make_deliverable(milestone, member, status="in_review")
    make_criterion(member, deliverable=accepted, checked=True)
    make_criterion(
        member, deliverable=accepted, target=Decimal("5"), comparator="<", actual=Decimal("9")
    )
    make_criterion(member, deliverable=open_, level="should", checked=True)
    # Another milestone's items must not leak in.
    other = make_milestone(world.plan, member)
    make_criterion(member, milestone=other, checked=True)
    make_deliverable(other, member, status="accepted")

    counts = Milestone.objects.get(pk=milestone.pk).progress_counts()
    assert counts == {
        "must_total": 2,
        "must_met": 1,
        "acceptance_total": 3,
        "acceptance_met": 2,
        "deliverables_total": 2,
        "deliverables_accepted": 1,
    }
    # 4 of 7 items done: 57.14…, rounded down.
    assert _progress_both_ways(milestone) == (57, 57)
    assert _progress_both_ways(other) == (100, 100)


def test_it_counts_a_measured_must_criterion_by_its_actual_value(world):
    criterion = make_criterion(
        world.member, milestone=world.milestone, target=Decimal("3"), comparator="<="
    )
    make_criterion(world.member, milestone=world.milestone, checked=True)
    make_criterion(world.member, milestone=world.milestone)
    assert _progress_both_ways(world.milestone) == (33, 33)
    services.update_object(criterion, actor=world.member, actual=Decimal("2"))
    assert _progress_both_ways(world.milestone) == (66, 66)


def test_it_agrees_on_progress_across_a_list_with_and_without_annotations(world):
    make_criterion(world.member, milestone=world.milestone, checked=True)
    second = make_milestone(world.plan, world.member)
    make_deliverable(second, world.member)
    make_deliverable(second, world.member, status="planned")
    third = make_milestone(world.plan, world.member)
    make_deliverable(third, world.member, status="accepted")
    make_criterion(world.member, milestone=third)
    make_criterion(world.member, milestone=third, checked=True)
    ids = [world.milestone.pk, second.pk, third.pk]
    plain = {m.pk: m.progress for m in Milestone.objects.filter(pk__in=ids)}
    annotated = {m.pk: m.progress for m in Milestone.objects.with_progress().filter(pk__in=ids)}
    assert plain == annotated == {world.milestone.pk: 100, second.pk: 0, third.pk: 66}


# --- Milestone.clean ------------------------------------------------------------------------


def test_it_refuses_a_plan_of_another_team(world):
    foreign_plan = make_plan(world.other_team, world.outsider)
    milestone = Milestone(team=world.team, plan=foreign_plan, key="MLS-050", title="M")
    with pytest.raises(ValidationError) as exc:
        milestone.full_clean()
    assert field_errors(exc)["plan"] == ["The plan belongs to another team."]


def test_it_refuses_a_plan_of_another_team_through_services(world):
    foreign_plan = make_plan(world.other_team, world.outsider)
    with pytest.raises(ValidationError):
        services.create_object(
            Milestone(team=world.team, plan=foreign_plan, title="M"), actor=world.admin
        )
    assert not Milestone.objects.filter(plan=foreign_plan).exists()


def test_it_refuses_an_owner_who_is_not_a_team_member(world):
    with pytest.raises(ValidationError) as exc:
        make_milestone(world.plan, world.admin, owner=world.outsider)
    assert field_errors(exc)["owner"] == ["The owner must be a member of the team."]


def test_it_refuses_moving_ownership_to_a_non_member(world):
    with pytest.raises(ValidationError):
        services.update_object(world.milestone, actor=world.admin, owner=world.outsider)
    assert Milestone.objects.get(pk=world.milestone.pk).owner_id is None


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_it_accepts_any_team_member_as_owner(world, role):
    owner = getattr(world, role)
    assert make_milestone(world.plan, world.admin, owner=owner).owner == owner


def test_it_accepts_a_member_added_later_as_owner(world):
    newcomer = add_member(world.team)
    services.update_object(world.milestone, actor=world.admin, owner=newcomer)
    assert Milestone.objects.get(pk=world.milestone.pk).owner == newcomer
