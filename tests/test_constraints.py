"""Check constraints evaluated in Python (milestones/constraints.py) agree with the database."""

import datetime
import itertools
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from milestones.constraints import CANNOT, UNKNOWN, PythonCheckConstraints, _fields_of, holds
from milestones.models import Criterion, Milestone
from tests.factories import make_blocker, make_deliverable

pytestmark = pytest.mark.django_db

CHECKED_MODELS = [model for model in apps.get_models() if issubclass(model, PythonCheckConstraints)]
CHECKS = [
    (model, constraint)
    for model in CHECKED_MODELS
    for constraint in model._meta.constraints
    if isinstance(constraint, models.CheckConstraint)
]


def candidates(field) -> list:
    """Values worth trying for `field`, awkward ones included (NULL, out of range, unknown)."""
    values = [None] if field.null else []
    if field.choices:
        return [*values, "", "bogus", *(value for value, _ in field.flatchoices)]
    if isinstance(field, models.ForeignKey):
        return [*values, 1, 2]
    if isinstance(field, models.BooleanField):
        return [*values, True, False]
    if isinstance(field, models.DateField):
        day = datetime.date(2026, 3, 10)
        return [*values, day - datetime.timedelta(days=1), day, day + datetime.timedelta(days=1)]
    if isinstance(field, models.DecimalField):
        return [*values, Decimal("0"), Decimal("2.5")]
    if isinstance(field, models.IntegerField):
        return [*values, -1, 0, 50, 100, 101]
    if isinstance(field, models.CharField | models.TextField | models.EmailField):
        return [*values, "", "x"]
    raise AssertionError(f"no candidates for {field!r}")


def combinations(model, constraint):
    fields = [model._meta.get_field(name) for name in sorted(_fields_of(constraint.condition))]
    for values in itertools.product(*(candidates(field) for field in fields)):
        instance = model()
        for field, value in zip(fields, values, strict=True):
            setattr(instance, field.attname, value)
        yield instance


@pytest.mark.parametrize(
    ("model", "constraint"), CHECKS, ids=[constraint.name for _, constraint in CHECKS]
)
def test_python_and_the_database_agree_on_every_check_constraint(model, constraint):
    tried = 0
    for instance in combinations(model, constraint):
        verdict = holds(constraint.condition, instance)
        assert verdict is not CANNOT, f"{constraint.name} is not evaluated in Python"
        against = instance._get_field_expression_map(meta=model._meta)
        in_database = Q(constraint.condition).check(against)
        assert (verdict is not False) == in_database, (constraint.name, instance.__dict__)
        tried += 1
    assert tried >= 2


def test_the_domain_models_check_in_python():
    names = {constraint.name for _, constraint in CHECKS}
    assert {
        "plan_target_not_before_start",
        "milestone_target_not_before_start",
        "criterion_measured_has_comparator",
        "blocker_resolved_after_raised",
        "dependency_not_self",
        "status_percent_in_range",
    } <= names


def test_three_valued_logic_like_a_check():
    milestone = Milestone(start_date=None, target_date=datetime.date(2026, 1, 1))
    assert holds(Q(target_date__gte=models.F("start_date")), milestone) is UNKNOWN
    assert holds(~Q(target_date__gte=models.F("start_date")), milestone) is UNKNOWN
    assert holds(Q(start_date=None), milestone) is True
    assert holds(Q(plan__key="x"), milestone) is CANNOT  # a join: the database decides
    assert holds(Q(met=True), Criterion(text="x")) is CANNOT  # generated when saved


def test_full_clean_reports_a_violation_with_the_constraints_message(world):
    milestone = Milestone(
        team=world.team,
        plan=world.plan,
        key="MLS-900",
        title="Backwards",
        start_date=datetime.date(2026, 5, 2),
        target_date=datetime.date(2026, 5, 1),
    )
    with pytest.raises(ValidationError) as raised:
        milestone.full_clean()
    assert any("start" in message.lower() for message in raised.value.messages)


def test_a_new_criterion_is_validated_without_check_queries(world):
    deliverable = make_deliverable(world.milestone, world.admin)
    criterion = Criterion(deliverable=deliverable, text="Holds", level="must")
    with CaptureQueriesContext(connection) as queries:
        criterion.full_clean()
    checks = [q["sql"] for q in queries if '"_check"' in q["sql"]]
    assert checks == []


def test_a_blocker_resolved_before_it_was_raised_is_refused_without_a_query(world):
    blocker = make_blocker(world.milestone, world.admin)
    blocker.resolved_on = blocker.raised_on - datetime.timedelta(days=1)
    with CaptureQueriesContext(connection) as queries, pytest.raises(ValidationError) as raised:
        blocker.full_clean()
    assert raised.value.messages == ["A blocker cannot be resolved before it was raised."]
    assert not [q["sql"] for q in queries if '"_check"' in q["sql"]]
