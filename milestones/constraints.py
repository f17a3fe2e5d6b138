"""Check constraints validated in Python, without a query each.

Django validates a `CheckConstraint` in `full_clean` by asking the database
(`SELECT 1 WHERE <condition>`): one query per constraint per object. The domain models carry
several (choices, date order, ranges), so creating a criterion cost five such queries, and they
were four fifths of a large spec import. Our conditions are simple comparisons of the object's
own fields, which `holds` evaluates in memory with SQL's three-valued logic (a comparison with
NULL is unknown, and an unknown condition passes, as it does in a CHECK). Anything it does not
understand (a join, a function, another lookup) goes to the database as before, and the
database still enforces every constraint on write.
"""

import operator

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, router
from django.db.models import F, Q

UNKNOWN = None  # SQL's NULL truth value
CANNOT = object()  # a condition this module does not evaluate: ask the database

COMPARISONS = {
    "exact": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


class Unsupported(Exception):
    pass


def _value_of(instance, name: str):
    """The instance's value for field `name` (a foreign key by its id), as the database sees it."""
    if "__" in name:
        raise Unsupported(name)
    try:
        field = instance._meta.get_field(name)
    except FieldDoesNotExist as error:
        raise Unsupported(name) from error
    if not getattr(field, "concrete", False) or field.many_to_many or field.generated:
        raise Unsupported(name)  # a generated column has no value before the row is saved
    return field, getattr(instance, field.attname)


def _compare(instance, lookup: str, expected):
    name, __, kind = lookup.rpartition("__")
    if kind not in (*COMPARISONS, "in", "isnull"):
        name, kind = lookup, "exact"
    field, value = _value_of(instance, name)
    if isinstance(expected, F):
        expected = _value_of(instance, expected.name)[1]
    elif hasattr(expected, "resolve_expression"):
        raise Unsupported(lookup)
    if kind == "isnull":
        return (value is None) == bool(expected)
    if kind == "exact" and expected is None:  # Q(x=None) means IS NULL
        return value is None
    if value is None or expected is None:
        return UNKNOWN
    if isinstance(field, models.ForeignKey) and isinstance(expected, models.Model):
        expected = expected.pk
    try:
        if kind == "in":
            return value in expected
        return COMPARISONS[kind](value, expected)
    except TypeError as error:  # e.g. a date compared with a string: let the database judge
        raise Unsupported(lookup) from error


def _holds(condition: Q, instance):
    results = []
    for child in condition.children:
        if isinstance(child, Q):
            results.append(_holds(child, instance))
        elif isinstance(child, tuple):
            results.append(_compare(instance, *child))
        else:
            raise Unsupported(child)
    if condition.connector == Q.AND:
        verdict = False if False in results else (UNKNOWN if UNKNOWN in results else True)
    elif condition.connector == Q.OR:
        verdict = True if True in results else (UNKNOWN if UNKNOWN in results else False)
    else:
        raise Unsupported(condition.connector)
    if condition.negated:
        verdict = UNKNOWN if verdict is UNKNOWN else not verdict
    return verdict


def holds(condition: Q, instance):
    """True or False, or UNKNOWN (passes, as NULL does in a CHECK); CANNOT when the
    condition is beyond this module."""
    try:
        return _holds(condition, instance)
    except Unsupported:
        return CANNOT


def _fields_of(condition: Q) -> set[str]:
    names = set()
    for child in condition.children:
        if isinstance(child, Q):
            names |= _fields_of(child)
        elif isinstance(child, tuple):
            names.add(child[0].split("__")[0])
            if isinstance(child[1], F):
                names.add(child[1].name.split("__")[0])
    return names


class PythonCheckConstraints:
    """Model mixin: `full_clean` checks CheckConstraints in memory where it can (see above).

    Otherwise `Model.validate_constraints`: a check that names an excluded field is skipped, a
    violation raises the constraint's message and code, other constraints ask the database."""

    def validate_constraints(self, exclude=None):
        exclude = set(exclude or ())
        using = router.db_for_write(self.__class__, instance=self)
        errors = {}
        for model_class, constraints in self.get_constraints():
            for constraint in constraints:
                try:
                    _validate(constraint, model_class, self, exclude, using)
                except ValidationError as error:
                    if getattr(error, "code", None) == "unique" and len(constraint.fields) == 1:
                        errors.setdefault(constraint.fields[0], []).append(error)
                    else:
                        errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)


def _validate(constraint, model_class, instance, exclude: set, using) -> None:
    if isinstance(constraint, models.CheckConstraint):
        verdict = holds(constraint.condition, instance)
        if verdict is not CANNOT:
            if verdict is False and not _fields_of(constraint.condition) & exclude:
                raise ValidationError(
                    constraint.get_violation_error_message(), code=constraint.violation_error_code
                )
            return
    constraint.validate(model_class, instance, exclude=exclude, using=using)
