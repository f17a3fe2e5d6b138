"""Query-string filters for the API lists (django-filter).

Milestone filters reuse the dashboard's rules in milestones/filters.py (`filter_milestones`,
`sort_milestones`), so a plan key, a status or a text search selects the same milestones in
the browser and through the API. Unlike the dashboard, which ignores what it does not
understand, the API answers 400 naming the parameter: an integration should hear about a typo.
"""

import datetime

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from milestones import signoffs
from milestones.filters import SEARCH_MAX_LENGTH, SORTS, MilestoneFilters, filter_milestones
from milestones.filters import sort_milestones as dashboard_sort
from milestones.models import (
    KEY_PATTERN,
    Activity,
    Blocker,
    Criterion,
    CriterionCategory,
    CriterionLevel,
    Deliverable,
    DeliverableStatus,
    Dependency,
    Health,
    Level,
    Milestone,
    MilestoneStatus,
    Plan,
    PlanStatus,
    Priority,
    Risk,
    RiskStatus,
    SignoffDecision,
    SignoffOutcome,
    SignoffRole,
    StatusUpdate,
)

MAX_ID = 2**63 - 1
NO_OWNER = "none"


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.Filter):
    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


def validate_plan_key(value: str) -> None:
    if not KEY_PATTERN.match(value.strip().upper()):
        raise ValidationError(
            "“%(value)s” is not a plan key (e.g. PLAN-001).", params={"value": value[:40]}
        )


class StrictBooleanField(forms.Field):
    """true/false (or 1/0); anything else is an error rather than “no filter”."""

    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise ValidationError("Use true or false.") from None


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 moment, turned into UTC: PostgreSQL refuses offsets beyond ±15:59."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError:
            raise ValidationError("That moment is out of range.") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class MomentFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


@extend_schema_field(OpenApiTypes.BOOL)
class BooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField


class FilterSet(filters.FilterSet):
    """A parameter given with an empty value is an error for typed filters (dates, ids,
    choices, booleans), not silently “no filter”; free text may be empty."""

    def is_valid(self):
        valid = super().is_valid()
        for name, flt in self.filters.items():
            if isinstance(flt, filters.CharFilter) and not isinstance(flt, filters.ChoiceFilter):
                continue
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else []
            if any(not value.strip() for value in values):
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid


def owner_filter(field_name: str = "owner") -> filters.CharFilter:
    def by_username(queryset, name, value):
        if value.lower() == NO_OWNER:
            return queryset.filter(**{f"{field_name}__isnull": True})
        return queryset.filter(**{f"{field_name}__username__iexact": value})

    return filters.CharFilter(
        method=lambda qs, name, value: by_username(qs, name, value),
        max_length=150,
        help_text=f"Username, or `{NO_OWNER}` for nobody.",
    )


def search_filter(*fields: str) -> filters.CharFilter:
    def search(queryset, name, value):
        query = Q()
        for field in fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query)

    return filters.CharFilter(
        method=lambda qs, name, value: search(qs, name, value),
        max_length=SEARCH_MAX_LENGTH,
        help_text=f"Text found in {' or '.join(fields)}, case-insensitive.",
    )


MILESTONE_SORTS = [(name, name) for name in SORTS] + [(f"-{name}", f"-{name}") for name in SORTS]


class MilestoneFilter(FilterSet):
    team = filters.CharFilter(field_name="team__slug", help_text="Team slug.")
    plan = filters.CharFilter(
        method="filter_plan",
        validators=[validate_plan_key],
        help_text="Plan key, e.g. PLAN-001 (case-insensitive).",
    )
    plan_id = IdFilter(field_name="plan_id", help_text="Plan id.")
    key = filters.CharFilter(field_name="key", lookup_expr="iexact", max_length=16)
    status = filters.MultipleChoiceFilter(
        choices=MilestoneStatus.choices, method="filter_status", help_text="Repeatable."
    )
    health = filters.MultipleChoiceFilter(
        choices=Health.choices, method="filter_health", help_text="Repeatable."
    )
    priority = filters.MultipleChoiceFilter(
        choices=Priority.choices, method="filter_priority", help_text="Repeatable."
    )
    owner = owner_filter()
    target_before = filters.DateFilter(
        field_name="target_date", lookup_expr="lte", help_text="Target date on or before."
    )
    target_after = filters.DateFilter(
        field_name="target_date", lookup_expr="gte", help_text="Target date on or after."
    )
    q = filters.CharFilter(
        method="filter_q",
        max_length=SEARCH_MAX_LENGTH,
        help_text="Text found in the key or the title, case-insensitive.",
    )
    ordering = filters.ChoiceFilter(
        choices=MILESTONE_SORTS,
        method="sort",
        help_text="target, key, title, status, health or priority; a leading - reverses. "
        "Default: open before closed, then soonest target.",
    )

    class Meta:
        model = Milestone
        fields = []

    # Each rule is the dashboard's (milestones.filters), applied to the team-scoped queryset.
    def filter_plan(self, queryset, name, value):
        return filter_milestones(queryset, MilestoneFilters(plan=value.strip().upper()))

    def filter_status(self, queryset, name, value):
        return filter_milestones(queryset, MilestoneFilters(status=tuple(value)))

    def filter_health(self, queryset, name, value):
        return filter_milestones(queryset, MilestoneFilters(health=tuple(value)))

    def filter_priority(self, queryset, name, value):
        return filter_milestones(queryset, MilestoneFilters(priority=tuple(value)))

    def filter_q(self, queryset, name, value):
        return filter_milestones(queryset, MilestoneFilters(q=value.strip()))

    def sort(self, queryset, name, value):
        return dashboard_sort(queryset, value)


def sort_milestones(queryset, value: str = ""):
    return dashboard_sort(queryset, value)


class PlanFilter(FilterSet):
    team = filters.CharFilter(field_name="team__slug", help_text="Team slug.")
    key = filters.CharFilter(field_name="key", lookup_expr="iexact", max_length=16)
    status = filters.MultipleChoiceFilter(choices=PlanStatus.choices, help_text="Repeatable.")
    owner = owner_filter()
    q = search_filter("key", "title")
    ordering = filters.OrderingFilter(
        fields=["key", "title", "start_date", "target_date", "created_at", "updated_at"]
    )

    class Meta:
        model = Plan
        fields = []


class DeliverableFilter(FilterSet):
    milestone = IdFilter(field_name="milestone_id", help_text="Milestone id.")
    status = filters.MultipleChoiceFilter(
        choices=DeliverableStatus.choices, help_text="Repeatable."
    )
    owner = owner_filter()
    ordering = filters.OrderingFilter(fields=["position", "target_date", "title", "updated_at"])

    class Meta:
        model = Deliverable
        fields = []


class CriterionFilter(FilterSet):
    plan = IdFilter(field_name="plan_id", help_text="Plan id (plan-level criteria).")
    milestone = IdFilter(
        method="filter_milestone",
        help_text="Milestone id: its success criteria and its deliverables' acceptance criteria.",
    )
    deliverable = IdFilter(field_name="deliverable_id", help_text="Deliverable id.")
    kind = filters.ChoiceFilter(
        choices=[("success", "success"), ("acceptance", "acceptance"), ("plan", "plan")],
        method="filter_kind",
    )
    met = BooleanFilter(field_name="met")
    level = filters.ChoiceFilter(choices=CriterionLevel.choices)
    category = filters.ChoiceFilter(choices=CriterionCategory.choices)

    class Meta:
        model = Criterion
        fields = []

    def filter_milestone(self, queryset, name, value):
        return queryset.filter(Q(milestone_id=value) | Q(deliverable__milestone_id=value))

    def filter_kind(self, queryset, name, value):
        owner = {"success": "milestone", "acceptance": "deliverable", "plan": "plan"}[value]
        return queryset.filter(**{f"{owner}__isnull": False})


class RiskFilter(FilterSet):
    milestone = IdFilter(field_name="milestone_id", help_text="Milestone id.")
    status = filters.MultipleChoiceFilter(choices=RiskStatus.choices, help_text="Repeatable.")
    likelihood = filters.ChoiceFilter(choices=Level.choices)
    impact = filters.ChoiceFilter(choices=Level.choices)
    min_score = filters.NumberFilter(
        field_name="score", lookup_expr="gte", min_value=0, max_value=9, help_text="1–9."
    )
    owner = owner_filter()
    ordering = filters.OrderingFilter(fields=["position", "score", "updated_at"])

    class Meta:
        model = Risk
        fields = []


class BlockerFilter(FilterSet):
    milestone = IdFilter(field_name="milestone_id", help_text="Milestone id.")
    resolved = BooleanFilter(
        field_name="resolved_on", lookup_expr="isnull", exclude=True, help_text="true or false."
    )
    priority = filters.MultipleChoiceFilter(choices=Level.choices, help_text="Repeatable.")
    owner = owner_filter()
    ordering = filters.OrderingFilter(
        fields=["target_resolution_date", "raised_on", "resolved_on", "updated_at"]
    )

    class Meta:
        model = Blocker
        fields = []


class DependencyFilter(FilterSet):
    milestone = IdFilter(method="filter_milestone", help_text="Milestone id, on either side.")
    predecessor = IdFilter(field_name="predecessor_id")
    successor = IdFilter(field_name="successor_id")
    team = filters.CharFilter(field_name="team__slug", help_text="Team slug.")

    class Meta:
        model = Dependency
        fields = []

    def filter_milestone(self, queryset, name, value):
        return queryset.filter(Q(predecessor_id=value) | Q(successor_id=value))


class StatusUpdateFilter(FilterSet):
    milestone = IdFilter(field_name="milestone_id", help_text="Milestone id.")
    health = filters.MultipleChoiceFilter(choices=Health.choices, help_text="Repeatable.")
    author = owner_filter("author")
    since = MomentFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = StatusUpdate
        fields = []


class ActivityFilter(FilterSet):
    team = filters.CharFilter(field_name="team__slug", help_text="Team slug.")
    plan = IdFilter(field_name="plan_id", help_text="Plan id.")
    milestone = IdFilter(field_name="milestone_id", help_text="Milestone id.")
    actor = owner_filter("actor")
    verb = filters.CharFilter(field_name="verb", max_length=20, help_text="e.g. created, updated")
    object_type = filters.CharFilter(
        field_name="object_type", max_length=40, help_text="e.g. milestone, criterion"
    )
    since = MomentFilter(field_name="created_at", lookup_expr="gte")
    before = MomentFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Activity
        fields = []


class SignoffRoleFilter(FilterSet):
    milestone = IdFilter(field_name="milestone_id", help_text="Milestone id.")
    holder = owner_filter("holder")
    awaiting = BooleanFilter(
        method="filter_awaiting",
        help_text="true: only the roles awaiting your decision (you hold them, the milestone "
        "is open, and you have no current decision); false: all the others.",
    )

    class Meta:
        model = SignoffRole
        fields = []

    def filter_awaiting(self, queryset, name, value):
        awaiting = signoffs.awaiting_roles(self.request.user).values("pk")
        return queryset.filter(pk__in=awaiting) if value else queryset.exclude(pk__in=awaiting)


class SignoffDecisionFilter(FilterSet):
    milestone = IdFilter(field_name="milestone_id", help_text="Milestone id.")
    role = IdFilter(field_name="role_id", help_text="Sign-off role id.")
    outcome = filters.MultipleChoiceFilter(choices=SignoffOutcome.choices, help_text="Repeatable.")
    decided_by = owner_filter("decided_by")

    class Meta:
        model = SignoffDecision
        fields = []
