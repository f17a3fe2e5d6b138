"""The shape every milestone template has, built-in or saved by a team.

A *blueprint* is what a new milestone is made from: a name and summary, a duration in days,
deliverables with their acceptance criteria, success criteria (category, level, optional
measure) and the names of the sign-off roles. Built-in templates are blueprints written in
Python (`builtin.py`); team templates store the same thing as JSON (`MilestoneTemplate.content`)
and are read back through `parse_content`, so both kinds obey one set of rules.

Stored JSON form (`Blueprint.content()`):

    {"deliverables": [{"title", "description",
                       "acceptance_criteria": [criterion, ...]}],
     "success_criteria": [criterion, ...],
     "signoff_roles": ["Tech lead", ...]}

    criterion = {"text", "category", "level", "comparator", "target", "unit"}

`target` is a decimal written as a string ("" when the criterion is not measured).
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from milestones.models import (
    Comparator,
    Criterion,
    CriterionCategory,
    CriterionLevel,
    Deliverable,
    SignoffRole,
)

MIN_DURATION_DAYS = 1
MAX_DURATION_DAYS = 365
# The duration a saved template gets when its milestone has no start or no target date.
DEFAULT_DURATION_DAYS = 14

# Limits of the rows a blueprint becomes, read from the models so they cannot drift apart.
DELIVERABLE_TITLE_MAX = Deliverable._meta.get_field("title").max_length
CRITERION_TEXT_MAX = Criterion._meta.get_field("text").max_length
CRITERION_UNIT_MAX = Criterion._meta.get_field("unit").max_length
ROLE_NAME_MAX = SignoffRole._meta.get_field("name").max_length


class Group:
    """Where a template is listed."""

    PHASE = "phase"
    SPRINT = "sprint"
    TEAM = "team"

    LABELS = {PHASE: "Project phases", SPRINT: "Sprint shapes", TEAM: "Team templates"}


@dataclass(frozen=True)
class CriterionBlueprint:
    text: str
    category: str = CriterionCategory.TECHNICAL
    level: str = CriterionLevel.MUST
    comparator: str = ""
    target: Decimal | None = None
    unit: str = ""

    @property
    def is_measured(self) -> bool:
        return self.target is not None

    def describe_measure(self) -> str:
        if not self.is_measured:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.comparator} {self.target.normalize():f}{unit}"

    def model_fields(self) -> dict:
        """Keyword arguments for a new `Criterion` (owner and position added by the caller)."""
        return {
            "text": self.text,
            "category": self.category,
            "level": self.level,
            "comparator": self.comparator,
            "target": self.target,
            "unit": self.unit,
        }

    def content(self) -> dict:
        return {
            "text": self.text,
            "category": str(self.category),
            "level": str(self.level),
            "comparator": str(self.comparator),
            "target": "" if self.target is None else f"{self.target.normalize():f}",
            "unit": self.unit,
        }


@dataclass(frozen=True)
class DeliverableBlueprint:
    title: str
    description: str = ""
    acceptance_criteria: tuple[CriterionBlueprint, ...] = ()

    def content(self) -> dict:
        return {
            "title": self.title,
            "description": self.description,
            "acceptance_criteria": [c.content() for c in self.acceptance_criteria],
        }


@dataclass(frozen=True)
class Blueprint:
    """A template, whichever kind. `ref` names it in URLs: a slug for a built-in template,
    the row id (digits only) for a team template."""

    ref: str
    name: str
    summary: str
    duration_days: int
    deliverables: tuple[DeliverableBlueprint, ...]
    success_criteria: tuple[CriterionBlueprint, ...]
    signoff_roles: tuple[str, ...]
    group: str = Group.TEAM

    @property
    def is_builtin(self) -> bool:
        return self.group != Group.TEAM

    @property
    def acceptance_criteria_count(self) -> int:
        return sum(len(d.acceptance_criteria) for d in self.deliverables)

    @property
    def must_criteria(self) -> tuple[CriterionBlueprint, ...]:
        return tuple(c for c in self.success_criteria if c.level == CriterionLevel.MUST)

    @property
    def duration_label(self) -> str:
        days = self.duration_days
        if days % 7 == 0:
            weeks = days // 7
            return f"{weeks} week{'s' if weeks != 1 else ''}"
        return f"{days} day{'s' if days != 1 else ''}"

    def content(self) -> dict:
        return {
            "deliverables": [d.content() for d in self.deliverables],
            "success_criteria": [c.content() for c in self.success_criteria],
            "signoff_roles": list(self.signoff_roles),
        }


# --- Reading stored content -----------------------------------------------------------------


def _text(value, where: str, limit: int, *, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{where} must be text.")
    value = value.strip()
    if required and not value:
        raise ValidationError(f"{where} is empty.")
    if limit and len(value) > limit:
        raise ValidationError(f"{where} is longer than {limit} characters.")
    return value


def _choice(value, choices, where: str, default: str) -> str:
    if value in (None, ""):
        return default
    if value not in choices.values:
        allowed = ", ".join(choices.values)
        raise ValidationError(f"{where} is “{value}”; it must be one of {allowed}.")
    return value


def parse_criterion(data, where: str) -> CriterionBlueprint:
    if not isinstance(data, dict):
        raise ValidationError(f"{where} must be an object with a text.")
    text = _text(data.get("text"), f"The text of {where}", CRITERION_TEXT_MAX)
    category = _choice(
        data.get("category"), CriterionCategory, f"The category of {where}", "technical"
    )
    level = _choice(data.get("level"), CriterionLevel, f"The level of {where}", "must")
    comparator = data.get("comparator") or ""
    if comparator and comparator not in Comparator.values:
        raise ValidationError(f"The comparator of {where} is “{comparator}”.")
    raw_target = data.get("target")
    target = None
    if raw_target not in (None, ""):
        try:
            target = Decimal(str(raw_target))
        except InvalidOperation:
            raise ValidationError(f"The target of {where} is not a number.") from None
        if not target.is_finite():
            raise ValidationError(f"The target of {where} is not a number.")
    if (target is None) != (not comparator):
        raise ValidationError(f"{where} needs both a comparator and a target, or neither.")
    unit = _text(data.get("unit"), f"The unit of {where}", CRITERION_UNIT_MAX, required=False)
    return CriterionBlueprint(text, category, level, comparator, target, unit)


def _list(data, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValidationError(f"“{key}” must be a list.")
    return value


def parse_content(data) -> tuple[tuple, tuple, tuple]:
    """(deliverables, success criteria, role names) from stored JSON, or ValidationError
    naming the first thing wrong."""
    if not isinstance(data, dict):
        raise ValidationError("The template content must be an object.")
    deliverables = []
    for number, item in enumerate(_list(data, "deliverables"), 1):
        where = f"deliverable {number}"
        if not isinstance(item, dict):
            raise ValidationError(f"{where.capitalize()} must be an object with a title.")
        title = _text(item.get("title"), f"The title of {where}", DELIVERABLE_TITLE_MAX)
        description = _text(
            item.get("description"), f"The description of {where}", 0, required=False
        )
        criteria = tuple(
            parse_criterion(c, f"acceptance criterion {n} of {where}")
            for n, c in enumerate(_list(item, "acceptance_criteria"), 1)
        )
        deliverables.append(DeliverableBlueprint(title, description, criteria))
    success = tuple(
        parse_criterion(c, f"success criterion {n}")
        for n, c in enumerate(_list(data, "success_criteria"), 1)
    )
    roles = tuple(
        _text(name, f"Sign-off role {n}", ROLE_NAME_MAX)
        for n, name in enumerate(_list(data, "signoff_roles"), 1)
    )
    if len({name.casefold() for name in roles}) != len(roles):
        raise ValidationError("Each sign-off role may appear only once.")
    return tuple(deliverables), success, roles


def check_duration(days) -> None:
    if not isinstance(days, int) or not MIN_DURATION_DAYS <= days <= MAX_DURATION_DAYS:
        raise ValidationError(
            f"The duration must be between {MIN_DURATION_DAYS} and {MAX_DURATION_DAYS} days."
        )
