"""Milepost's domain: plans, milestones and everything a milestone spec holds.

Rules that must hold whichever way data arrives (form, API, admin, import) live here, as
database constraints where the database can say them and in `clean()` where it cannot.
Multi-model workflows with side effects (activity, keys, locking) live in `services.py`.
"""

import datetime
import re
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from milestones.constraints import PythonCheckConstraints

KEY_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,7}-\d{1,6}$")
KEY_HELP = "Upper-case prefix, a dash and a number, e.g. MLS-001."


def today() -> datetime.date:
    return timezone.localdate()


def validate_key(value: str):
    if not KEY_PATTERN.match(value or ""):
        raise ValidationError(f"“{value}” is not a valid key. {KEY_HELP}")


def owner_outside_team(team_id, user_id) -> bool:
    """True when `user_id` is set but is not a member of team `team_id`."""
    from accounts.models import Membership

    if not (team_id and user_id):
        return False
    return not Membership.objects.filter(team_id=team_id, user_id=user_id).exists()


OWNER_NOT_MEMBER = "The owner must be a member of the team."


def subquery_count(queryset, outer_field: str) -> Coalesce:
    """COUNT(*) of `queryset` rows whose `outer_field` matches the outer row, as an expression."""
    counted = (
        queryset.filter(**{outer_field: OuterRef("pk")})
        .order_by()
        .values(outer_field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


class TeamScopedQuerySet(models.QuerySet):
    """Every domain object belongs to one team; this is how views reach them."""

    team_path = "team"

    def visible_to(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(**{f"{self.team_path}__memberships__user": user})

    def in_team(self, team):
        return self.filter(**{self.team_path: team})


# --- Choices --------------------------------------------------------------------------------


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    ARCHIVED = "archived", "Archived"


class MilestoneStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


CLOSED_STATUSES = (MilestoneStatus.COMPLETED, MilestoneStatus.CANCELLED)


class Priority(models.TextChoices):
    CRITICAL = "critical", "Critical"
    REQUIRED = "required", "Required"
    RECOMMENDED = "recommended", "Recommended"


class Health(models.TextChoices):
    ON_TRACK = "on_track", "On track"
    AT_RISK = "at_risk", "At risk"
    OFF_TRACK = "off_track", "Off track"


class DeliverableStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In progress"
    IN_REVIEW = "in_review", "In review"
    ACCEPTED = "accepted", "Accepted"


class CriterionCategory(models.TextChoices):
    TECHNICAL = "technical", "Technical"
    OPERATIONAL = "operational", "Operational"
    QUALITY = "quality", "Quality"
    DOCUMENTATION = "documentation", "Documentation"


class CriterionLevel(models.TextChoices):
    MUST = "must", "Must"
    SHOULD = "should", "Should"


class Comparator(models.TextChoices):
    LT = "<", "<"
    LTE = "<=", "≤"
    EQ = "=", "="
    GTE = ">=", "≥"
    GT = ">", ">"


class Level(models.TextChoices):
    """Likelihood and impact of a risk, and priority of a blocker."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


LEVEL_WEIGHT = {Level.LOW: 1, Level.MEDIUM: 2, Level.HIGH: 3}


class RiskStatus(models.TextChoices):
    OPEN = "open", "Open"
    MITIGATING = "mitigating", "Mitigating"
    OCCURRED = "occurred", "Occurred"
    CLOSED = "closed", "Closed"


def choices_constraint(field: str, choices, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


def percent_field(verbose_name: str, **kwargs):
    return models.PositiveSmallIntegerField(
        verbose_name,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        **kwargs,
    )


# --- Plan -----------------------------------------------------------------------------------


class PlanQuerySet(TeamScopedQuerySet):
    def open(self):
        return self.exclude(status=PlanStatus.ARCHIVED)


class OwnerOrLabel:
    """An item owned by a team member (`owner`) or by someone outside the team (`owner_label`)."""

    @property
    def owner_name(self) -> str:
        return self.owner.display_name if self.owner else self.owner_label


class Plan(PythonCheckConstraints, models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="plans")
    key = models.CharField(max_length=16, validators=[validate_key], help_text=KEY_HELP)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_plans",
    )
    start_date = models.DateField(null=True, blank=True)
    target_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Bumped by every change made through services.update_object (optimistic concurrency).
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "key"],
                name="plan_key_unique_per_team",
                violation_error_message="Another plan in this team already has this key.",
            ),
            models.CheckConstraint(
                condition=Q(target_date__isnull=True)
                | Q(start_date__isnull=True)
                | Q(target_date__gte=F("start_date")),
                name="plan_target_not_before_start",
                violation_error_message="The target date cannot be before the start date.",
            ),
            choices_constraint("status", PlanStatus, "plan_status_valid"),
        ]

    def __str__(self):
        return f"{self.key} {self.title}"

    def clean(self):
        errors = {}
        if self.start_date and self.target_date and self.target_date < self.start_date:
            errors["target_date"] = "The target date cannot be before the start date."
        if owner_outside_team(self.team_id, self.owner_id):
            errors["owner"] = OWNER_NOT_MEMBER
        if errors:
            raise ValidationError(errors)


class StakeholderFrequency(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    BIWEEKLY = "biweekly", "Every two weeks"
    MONTHLY = "monthly", "Monthly"
    ON_CHANGE = "on_change", "When something changes"
    AT_MILESTONES = "at_milestones", "At milestone completion"


class Stakeholder(PythonCheckConstraints, models.Model):
    """A row of a plan's communication table: who is told what, how, and how often."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="stakeholders")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    channel = models.CharField(max_length=80, blank=True, help_text="e.g. e-mail, weekly sync")
    frequency = models.CharField(
        max_length=16, choices=StakeholderFrequency.choices, default=StakeholderFrequency.WEEKLY
    )
    content = models.CharField(max_length=200, blank=True, help_text="What they are told")
    # What Milepost itself e-mails them (notifications/): to the member's or the plain address.
    gets_digest = models.BooleanField("weekly digest", default=True)
    gets_alerts = models.BooleanField("at-risk alerts", default=False)
    gets_completion = models.BooleanField("completion notices", default=True)
    position = models.PositiveIntegerField(default=0)

    # Bumped by every change made through services.update_object (optimistic concurrency).
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(email="") | ~Q(name=""),
                name="stakeholder_identified",
                violation_error_message="Name a member, an e-mail address or a person.",
            ),
            choices_constraint("frequency", StakeholderFrequency, "stakeholder_frequency_valid"),
        ]

    def __str__(self):
        return self.name or (self.user.display_name if self.user else self.email)

    @property
    def team_id(self):
        return self.plan.team_id


# --- Milestone ------------------------------------------------------------------------------


class MilestoneQuerySet(TeamScopedQuerySet):
    def open(self):
        return self.exclude(status__in=CLOSED_STATUSES)

    def overdue(self, on: datetime.date | None = None):
        return self.open().filter(target_date__lt=on or today())

    def due_within(self, days: int, on: datetime.date | None = None):
        start = on or today()
        return self.open().filter(
            target_date__gte=start, target_date__lte=start + datetime.timedelta(days=days)
        )

    def with_progress(self):
        """Annotate the counts behind `Milestone.progress` (four subqueries, whatever the size)."""
        must_criteria = Criterion.objects.filter(level=CriterionLevel.MUST)
        return self.annotate(
            must_total=subquery_count(must_criteria, "milestone"),
            must_met=subquery_count(must_criteria.filter(met=True), "milestone"),
            acceptance_total=subquery_count(Criterion.objects.all(), "deliverable__milestone"),
            acceptance_met=subquery_count(
                Criterion.objects.filter(met=True), "deliverable__milestone"
            ),
            deliverables_total=subquery_count(Deliverable.objects.all(), "milestone"),
            deliverables_accepted=subquery_count(
                Deliverable.objects.filter(status=DeliverableStatus.ACCEPTED), "milestone"
            ),
        )


class Milestone(PythonCheckConstraints, models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="milestones")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="milestones")
    key = models.CharField(max_length=16, validators=[validate_key], help_text=KEY_HELP)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_milestones",
    )
    owning_group = models.CharField(max_length=120, blank=True, help_text="e.g. Backend team")
    priority = models.CharField(max_length=12, choices=Priority.choices, default=Priority.REQUIRED)
    status = models.CharField(
        max_length=12, choices=MilestoneStatus.choices, default=MilestoneStatus.PLANNED
    )
    start_date = models.DateField(null=True, blank=True)
    target_date = models.DateField(null=True, blank=True)
    baseline_target_date = models.DateField(
        null=True,
        blank=True,
        help_text="The target first committed to; set once, so slips stay measurable.",
    )
    completed_on = models.DateField(null=True, blank=True)
    estimated_effort = models.CharField(max_length=60, blank=True, help_text="e.g. 3 weeks")
    position = models.PositiveIntegerField(default=0, help_text="Order within the plan")
    rollback_plan = models.TextField(blank=True)
    retro_went_well = models.TextField("what went well", blank=True)
    retro_went_badly = models.TextField("what went badly", blank=True)
    retro_actions = models.TextField("actions", blank=True)
    retro_learnings = models.TextField("learnings", blank=True)
    # Bumped by every change made through services.update_object; later used for If-Match.
    version = models.PositiveIntegerField(default=1, editable=False)
    # Computed by milestones.health, never typed in; read-only everywhere else.
    health = models.CharField(
        max_length=10, choices=Health.choices, default=Health.ON_TRACK, editable=False
    )
    health_reasons = models.JSONField(default=list, blank=True, editable=False)
    health_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    forecast_start = models.DateField(null=True, blank=True, editable=False)
    forecast_finish = models.DateField(null=True, blank=True, editable=False)
    slack_days = models.IntegerField(null=True, blank=True, editable=False)
    is_critical = models.BooleanField(default=False, editable=False)
    # sha256 of what sign-offs approve (milestones/signoffs.py); kept current by the services.
    scope_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MilestoneQuerySet.as_manager()

    class Meta:
        ordering = ["plan_id", "position", "pk"]
        indexes = [
            models.Index(fields=["team", "target_date"]),
            models.Index(fields=["plan", "position"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "key"],
                name="milestone_key_unique_per_team",
                violation_error_message="Another milestone in this team already has this key.",
            ),
            models.CheckConstraint(
                condition=Q(target_date__isnull=True)
                | Q(start_date__isnull=True)
                | Q(target_date__gte=F("start_date")),
                name="milestone_target_not_before_start",
                violation_error_message="The target date cannot be before the start date.",
            ),
            choices_constraint("status", MilestoneStatus, "milestone_status_valid"),
            choices_constraint("priority", Priority, "milestone_priority_valid"),
        ]

    def __str__(self):
        return f"{self.key} {self.title}"

    def clean(self):
        errors = {}
        if self.start_date and self.target_date and self.target_date < self.start_date:
            errors["target_date"] = "The target date cannot be before the start date."
        if self.plan_id and self.team_id and self.plan.team_id != self.team_id:
            errors["plan"] = "The plan belongs to another team."
        if owner_outside_team(self.team_id, self.owner_id):
            errors["owner"] = OWNER_NOT_MEMBER
        if errors:
            raise ValidationError(errors)

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    def is_overdue(self, on: datetime.date | None = None) -> bool:
        return bool(self.target_date and not self.is_closed and self.target_date < (on or today()))

    @property
    def slip_days(self) -> int | None:
        """Days the target has moved past the baseline (negative when pulled in)."""
        if not (self.target_date and self.baseline_target_date):
            return None
        return (self.target_date - self.baseline_target_date).days

    @property
    def forecast_slip_days(self) -> int | None:
        """Days the forecast finish lies past the baseline target (negative when ahead)."""
        if not (self.forecast_finish and self.baseline_target_date):
            return None
        return (self.forecast_finish - self.baseline_target_date).days

    @property
    def progress(self) -> int:
        """Percent complete, 0–100.

        The checkable items of a milestone are its must-level success criteria, its
        deliverables' acceptance criteria, and each deliverable itself (done when accepted).
        Progress is the share of those items that are met, rounded down; a completed
        milestone is 100 and a milestone with nothing to check is 0. Uses the counts from
        `MilestoneQuerySet.with_progress()` when present, else counts them in one query.
        """
        if self.status == MilestoneStatus.COMPLETED:
            return 100
        return progress_percent(self.status, self.progress_counts()) or 0

    def progress_counts(self) -> dict:
        names = (
            "must_total",
            "must_met",
            "acceptance_total",
            "acceptance_met",
            "deliverables_total",
            "deliverables_accepted",
        )
        if all(hasattr(self, name) for name in names):
            return {name: getattr(self, name) for name in names}
        annotated = Milestone.objects.with_progress().values(*names).get(pk=self.pk)
        return annotated


def progress_percent(status: str, counts: dict) -> int | None:
    """The progress formula (see Milestone.progress) from `with_progress()` counts.

    None when the milestone has nothing to check, so callers choose their own fallback.
    """
    if status == MilestoneStatus.COMPLETED:
        return 100
    total = counts["must_total"] + counts["acceptance_total"] + counts["deliverables_total"]
    done = counts["must_met"] + counts["acceptance_met"] + counts["deliverables_accepted"]
    return (100 * done) // total if total else None


# --- Deliverables and criteria --------------------------------------------------------------


class Deliverable(OwnerOrLabel, PythonCheckConstraints, models.Model):
    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="deliverables")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_deliverables",
    )
    owner_label = models.CharField(
        max_length=120, blank=True, help_text="An owner who is not a member, e.g. Infra team"
    )
    status = models.CharField(
        max_length=12, choices=DeliverableStatus.choices, default=DeliverableStatus.PLANNED
    )
    target_date = models.DateField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Bumped by every change made through services.update_object (optimistic concurrency).
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["milestone_id", "position", "pk"]
        constraints = [choices_constraint("status", DeliverableStatus, "deliverable_status_valid")]

    def __str__(self):
        return self.title

    @property
    def team_id(self):
        return self.milestone.team_id

    def clean(self):
        if self.milestone_id and owner_outside_team(self.milestone.team_id, self.owner_id):
            raise ValidationError({"owner": OWNER_NOT_MEMBER})


# Whether a criterion is met, as a database expression, so lists and counts agree with the
# detail view: a measured criterion is met when its actual value satisfies its target; any
# other criterion is met when someone ticked it.
CRITERION_MET = Case(
    When(target__isnull=True, then=F("checked")),
    When(actual__isnull=True, then=Value(False)),
    When(comparator=Comparator.LT, actual__lt=F("target"), then=Value(True)),
    When(comparator=Comparator.LTE, actual__lte=F("target"), then=Value(True)),
    When(comparator=Comparator.EQ, actual=F("target"), then=Value(True)),
    When(comparator=Comparator.GTE, actual__gte=F("target"), then=Value(True)),
    When(comparator=Comparator.GT, actual__gt=F("target"), then=Value(True)),
    default=Value(False),
    output_field=models.BooleanField(),
)


class Criterion(PythonCheckConstraints, models.Model):
    """A checkable statement.

    On a milestone it is a success criterion (with a category and a must/should level), on a
    deliverable an acceptance criterion, on a plan a plan-level success criterion. Exactly one
    of the three owners is set.
    """

    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.CASCADE, related_name="criteria"
    )
    milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.CASCADE, related_name="criteria"
    )
    deliverable = models.ForeignKey(
        Deliverable, null=True, blank=True, on_delete=models.CASCADE, related_name="criteria"
    )
    text = models.CharField(max_length=300)
    description = models.TextField(
        blank=True, help_text="Detail: how it is measured, what counts (markdown)"
    )
    category = models.CharField(
        max_length=16, choices=CriterionCategory.choices, default=CriterionCategory.TECHNICAL
    )
    level = models.CharField(
        max_length=8, choices=CriterionLevel.choices, default=CriterionLevel.MUST
    )
    target = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    comparator = models.CharField(max_length=2, choices=Comparator.choices, blank=True)
    unit = models.CharField(max_length=30, blank=True)
    actual = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    checked = models.BooleanField(default=False)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    met = models.GeneratedField(
        expression=CRITERION_MET, output_field=models.BooleanField(), db_persist=True
    )
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Bumped by every change made through services.update_object (optimistic concurrency).
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name_plural = "criteria"
        indexes = [models.Index(fields=["milestone", "level"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(plan__isnull=False, milestone__isnull=True, deliverable__isnull=True)
                    | Q(plan__isnull=True, milestone__isnull=False, deliverable__isnull=True)
                    | Q(plan__isnull=True, milestone__isnull=True, deliverable__isnull=False)
                ),
                name="criterion_has_one_owner",
                violation_error_message="A criterion belongs to exactly one plan, milestone "
                "or deliverable.",
            ),
            models.CheckConstraint(
                condition=Q(target__isnull=True) | ~Q(comparator=""),
                name="criterion_measured_has_comparator",
                violation_error_message="A measured criterion needs a comparator.",
            ),
            choices_constraint("category", CriterionCategory, "criterion_category_valid"),
            choices_constraint("level", CriterionLevel, "criterion_level_valid"),
            models.CheckConstraint(
                condition=Q(comparator__in=["", *Comparator.values]),
                name="criterion_comparator_valid",
            ),
        ]

    def __str__(self):
        return self.text

    def clean(self):
        errors = {}
        owners = [self.plan_id, self.milestone_id, self.deliverable_id]
        if sum(owner is not None for owner in owners) != 1:
            errors["__all__"] = "A criterion belongs to exactly one plan, milestone or deliverable."
        if self.target is not None and not self.comparator:
            errors["comparator"] = "A measured criterion needs a comparator, e.g. >=."
        if self.comparator and self.target is None:
            errors["target"] = "Give the target value the comparator applies to."
        if self.actual is not None and self.target is None:
            errors["actual"] = "An actual value only makes sense with a target."
        if errors:
            raise ValidationError(errors)

    @property
    def is_measured(self) -> bool:
        return self.target is not None

    @property
    def kind(self) -> str:
        if self.deliverable_id:
            return "acceptance"
        return "plan" if self.plan_id else "success"

    def evaluate_met(self) -> bool:
        """The same rule as CRITERION_MET, in Python, for an unsaved or edited instance."""
        if self.target is None:
            return self.checked
        if self.actual is None:
            return False
        actual, target = Decimal(self.actual), Decimal(self.target)
        return {
            Comparator.LT: actual < target,
            Comparator.LTE: actual <= target,
            Comparator.EQ: actual == target,
            Comparator.GTE: actual >= target,
            Comparator.GT: actual > target,
        }.get(self.comparator, False)

    def describe_measure(self) -> str:
        if not self.is_measured:
            return ""
        actual = "not measured yet" if self.actual is None else f"{self.actual.normalize():f}"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.comparator} {self.target.normalize():f}{unit} (actual: {actual})"


# --- Risks, blockers, dependencies, status updates ------------------------------------------


def _level_weight(field: str) -> Case:
    return Case(
        *(When(**{field: level}, then=Value(weight)) for level, weight in LEVEL_WEIGHT.items()),
        default=Value(0),
        output_field=IntegerField(),
    )


UNRESOLVED_RISK = Q(status__in=[RiskStatus.OPEN, RiskStatus.MITIGATING])
UNRESOLVED_BLOCKER = Q(resolved_on__isnull=True)


class RiskQuerySet(TeamScopedQuerySet):
    team_path = "milestone__team"

    def unresolved(self):
        return self.filter(UNRESOLVED_RISK)


class Risk(OwnerOrLabel, PythonCheckConstraints, models.Model):
    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="risks")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    likelihood = models.CharField(max_length=8, choices=Level.choices, default=Level.MEDIUM)
    impact = models.CharField(max_length=8, choices=Level.choices, default=Level.MEDIUM)
    # Likelihood × impact on a 1–3 scale each, so 1 (low/low) to 9 (high/high).
    score = models.GeneratedField(
        expression=_level_weight("likelihood") * _level_weight("impact"),
        output_field=IntegerField(),
        db_persist=True,
    )
    mitigation = models.TextField(blank=True)
    fallback = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_label = models.CharField(
        max_length=120, blank=True, help_text="An owner who is not a member, e.g. a vendor"
    )
    status = models.CharField(max_length=12, choices=RiskStatus.choices, default=RiskStatus.OPEN)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Bumped by every change made through services.update_object (optimistic concurrency).
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = RiskQuerySet.as_manager()

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            choices_constraint("likelihood", Level, "risk_likelihood_valid"),
            choices_constraint("impact", Level, "risk_impact_valid"),
            choices_constraint("status", RiskStatus, "risk_status_valid"),
        ]

    def __str__(self):
        return self.title

    @property
    def team_id(self):
        return self.milestone.team_id

    def compute_score(self) -> int:
        return LEVEL_WEIGHT.get(self.likelihood, 0) * LEVEL_WEIGHT.get(self.impact, 0)

    def clean(self):
        if self.milestone_id and owner_outside_team(self.milestone.team_id, self.owner_id):
            raise ValidationError({"owner": OWNER_NOT_MEMBER})


class BlockerQuerySet(TeamScopedQuerySet):
    team_path = "milestone__team"

    def unresolved(self):
        return self.filter(UNRESOLVED_BLOCKER)

    def past_target(self, on: datetime.date | None = None):
        return self.unresolved().filter(target_resolution_date__lt=on or today())


class Blocker(OwnerOrLabel, PythonCheckConstraints, models.Model):
    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="blockers")
    title = models.CharField("what blocks", max_length=200)
    description = models.TextField(blank=True, help_text="The issue: what is blocked, and why")
    impact = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_label = models.CharField(
        max_length=120, blank=True, help_text="An owner who is not a member, e.g. Legal team"
    )
    next_action = models.CharField(max_length=300, blank=True)
    priority = models.CharField(max_length=8, choices=Level.choices, default=Level.MEDIUM)
    target_resolution_date = models.DateField(null=True, blank=True)
    raised_on = models.DateField(default=today)
    resolved_on = models.DateField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Bumped by every change made through services.update_object (optimistic concurrency).
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = BlockerQuerySet.as_manager()

    class Meta:
        ordering = ["resolved_on", "target_resolution_date", "pk"]
        constraints = [
            choices_constraint("priority", Level, "blocker_priority_valid"),
            models.CheckConstraint(
                condition=Q(resolved_on__isnull=True) | Q(resolved_on__gte=F("raised_on")),
                name="blocker_resolved_after_raised",
                violation_error_message="A blocker cannot be resolved before it was raised.",
            ),
        ]

    def __str__(self):
        return self.title

    @property
    def team_id(self):
        return self.milestone.team_id

    @property
    def is_resolved(self) -> bool:
        return self.resolved_on is not None

    def clean(self):
        errors = {}
        if self.resolved_on and self.raised_on and self.resolved_on < self.raised_on:
            errors["resolved_on"] = "A blocker cannot be resolved before it was raised."
        if self.milestone_id and owner_outside_team(self.milestone.team_id, self.owner_id):
            errors["owner"] = OWNER_NOT_MEMBER
        if errors:
            raise ValidationError(errors)


class DependencyQuerySet(TeamScopedQuerySet):
    pass


class Dependency(PythonCheckConstraints, models.Model):
    """`predecessor` must finish before `successor` starts, `lag_days` later at the earliest."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    predecessor = models.ForeignKey(
        Milestone, on_delete=models.CASCADE, related_name="successor_links"
    )
    successor = models.ForeignKey(
        Milestone, on_delete=models.CASCADE, related_name="predecessor_links"
    )
    lag_days = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(365)], help_text="Days between the two"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DependencyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "dependencies"
        constraints = [
            models.UniqueConstraint(
                fields=["predecessor", "successor"],
                name="dependency_unique",
                violation_error_message="This dependency already exists.",
            ),
            models.CheckConstraint(
                condition=~Q(predecessor=F("successor")),
                name="dependency_not_self",
                violation_error_message="A milestone cannot depend on itself.",
            ),
        ]

    def __str__(self):
        return f"{self.predecessor.key} → {self.successor.key}"

    def clean(self):
        if not (self.predecessor_id and self.successor_id):
            return
        if self.predecessor_id == self.successor_id:
            raise ValidationError({"predecessor": "A milestone cannot depend on itself."})
        if self.predecessor.team_id != self.successor.team_id:
            raise ValidationError(
                {"predecessor": "Dependencies can only link milestones of the same team."}
            )
        if self.team_id and self.team_id != self.successor.team_id:
            raise ValidationError({"successor": "The milestones belong to another team."})
        cycle = self.find_cycle()
        if cycle:
            path = " → ".join(cycle)
            raise ValidationError({"predecessor": f"This dependency would create a cycle: {path}."})

    def find_cycle(self) -> list[str] | None:
        """The keys along the cycle this link would close, or None.

        Adding predecessor → successor closes a cycle when the successor already leads to the
        predecessor. One query loads the team's links; the search runs in memory.
        """
        links = (
            Dependency.objects.filter(successor__team_id=self.successor.team_id)
            .exclude(pk=self.pk)
            .values_list("predecessor_id", "successor_id")
        )
        following = defaultdict(list)
        for before, after in links:
            following[before].append(after)
        start, goal = self.successor_id, self.predecessor_id
        parents = {start: None}
        stack = [start]
        while stack:
            node = stack.pop()
            if node == goal:
                chain = []
                while node is not None:
                    chain.append(node)
                    node = parents[node]
                chain.reverse()  # successor … predecessor
                ids = [goal, *chain]  # predecessor → successor → … → predecessor
                keys = dict(Milestone.objects.filter(pk__in=ids).values_list("pk", "key"))
                return [keys[pk] for pk in ids]
            for nxt in following.get(node, ()):
                if nxt not in parents:
                    parents[nxt] = node
                    stack.append(nxt)
        return None


class StatusUpdate(PythonCheckConstraints, models.Model):
    milestone = models.ForeignKey(
        Milestone, on_delete=models.CASCADE, related_name="status_updates"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    health = models.CharField(max_length=10, choices=Health.choices, default=Health.ON_TRACK)
    percent_complete = percent_field("percent complete")
    confidence = percent_field("confidence", help_text="How sure the author is, 0–100")
    narrative = models.TextField()
    next_update_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        get_latest_by = "created_at"
        indexes = [models.Index(fields=["milestone", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(percent_complete__gte=0, percent_complete__lte=100),
                name="status_percent_in_range",
                violation_error_message="Percent complete must be between 0 and 100.",
            ),
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=100),
                name="status_confidence_in_range",
                violation_error_message="Confidence must be between 0 and 100.",
            ),
            choices_constraint("health", Health, "status_health_valid"),
        ]

    def __str__(self):
        return f"{self.milestone.key} update {self.created_at:%Y-%m-%d}"

    @property
    def team_id(self):
        return self.milestone.team_id


# --- Health history -------------------------------------------------------------------------


class HealthTransition(models.Model):
    """A change of a milestone's computed health; recorded once per actual change."""

    milestone = models.ForeignKey(
        Milestone, on_delete=models.CASCADE, related_name="health_transitions"
    )
    from_health = models.CharField(max_length=10, choices=Health.choices)
    to_health = models.CharField(max_length=10, choices=Health.choices)
    reasons = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["milestone", "-created_at"])]

    def __str__(self):
        return f"{self.milestone.key}: {self.from_health} → {self.to_health}"

    @property
    def is_worse(self) -> bool:
        return HEALTH_SEVERITY[self.to_health] > HEALTH_SEVERITY[self.from_health]


HEALTH_SEVERITY = {Health.ON_TRACK: 0, Health.AT_RISK: 1, Health.OFF_TRACK: 2}


class ForecastShift(models.Model):
    """The forecast finish of a milestone moved; `cause` says why, in words."""

    milestone = models.ForeignKey(
        Milestone, on_delete=models.CASCADE, related_name="forecast_shifts"
    )
    previous_finish = models.DateField(null=True)
    new_finish = models.DateField(null=True)
    cause = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["milestone", "-created_at"])]

    def __str__(self):
        return f"{self.milestone.key}: {self.previous_finish} → {self.new_finish}"

    @property
    def moved_days(self) -> int | None:
        if not (self.previous_finish and self.new_finish):
            return None
        return (self.new_finish - self.previous_finish).days


# --- Activity -------------------------------------------------------------------------------


class ActivityQuerySet(TeamScopedQuerySet):
    pass


class Activity(models.Model):
    """Who changed what, when, from what to what. Written by services, never edited."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="activity")
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="activity"
    )
    milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.SET_NULL, related_name="activity"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=20)
    object_type = models.CharField(max_length=40)
    object_id = models.PositiveBigIntegerField(null=True)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "activity"
        indexes = [
            models.Index(fields=["team", "-created_at"]),
            models.Index(fields=["milestone", "-created_at"]),
        ]

    def __str__(self):
        return f"{self.actor or 'Milepost'} {self.verb} {self.object_type} {self.object_repr}"

    def describe(self) -> str:
        who = self.actor.display_name if self.actor else "Milepost"
        return f"{who} {self.verb} {self.object_label} “{self.object_repr}”"

    @property
    def object_label(self) -> str:
        """“status update” rather than the model name “statusupdate”."""
        from django.apps import apps

        for app_label in ("milestones", "accounts"):
            try:
                return str(apps.get_model(app_label, self.object_type)._meta.verbose_name)
            except LookupError:
                continue
        return self.object_type.replace("_", " ")


# --- Sign-offs ------------------------------------------------------------------------------
# The rules (who may decide, staleness, completion, the hash chain) live in milestones/signoffs.py.

ZERO_HASH = "0" * 64


class SignoffOutcome(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"


class SignoffRoleQuerySet(models.QuerySet):
    def active(self):
        return self.filter(removed_at__isnull=True)


class SignoffRole(models.Model):
    """A role that must sign a milestone off, and the team member who holds it.

    A role with decisions is never deleted (the decisions point at it); dropping it sets
    `removed_at`, so the history keeps its name.
    """

    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="signoff_roles")
    name = models.CharField(max_length=60)
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="signoff_roles",
    )
    position = models.PositiveIntegerField(default=0)
    removed_at = models.DateTimeField(null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SignoffRoleQuerySet.as_manager()

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = "sign-off role"
        constraints = [
            models.UniqueConstraint(
                fields=["milestone", "name"],
                condition=Q(removed_at__isnull=True),
                name="signoff_role_name_unique",
                violation_error_message="This milestone already has a sign-off role of that name.",
            )
        ]

    def __str__(self):
        return self.name

    def clean(self):
        self.name = (self.name or "").strip()
        if not self.name:
            raise ValidationError({"name": "Give the role a name, e.g. Product owner."})
        if self.holder_id and owner_outside_team(self.milestone.team_id, self.holder_id):
            raise ValidationError({"holder": "The holder must be a member of the team."})

    @property
    def team_id(self):
        return self.milestone.team_id


class SignoffDecision(PythonCheckConstraints, models.Model):
    """One decision by a role's holder: append-only, bound to the scope it was made on.

    Never updated or deleted: the admin and API offer no way to, and on PostgreSQL a trigger
    (migration 0004) refuses UPDATE and DELETE. `record_hash` covers every field and the
    previous decision's hash on the same milestone, so `manage.py verify_signoffs` can show
    that nothing was altered or removed from the middle of a chain.
    """

    milestone = models.ForeignKey(
        Milestone, on_delete=models.PROTECT, related_name="signoff_decisions"
    )
    role = models.ForeignKey(SignoffRole, on_delete=models.PROTECT, related_name="decisions")
    role_name = models.CharField(max_length=60)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signoff_decisions"
    )
    decided_by_name = models.CharField(max_length=150)
    outcome = models.CharField(max_length=20, choices=SignoffOutcome.choices)
    with_exceptions = models.BooleanField(default=False)
    comment = models.TextField(blank=True)
    scope_document = models.TextField()
    scope_hash = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    previous_hash = models.CharField(max_length=64)
    record_hash = models.CharField(max_length=64, unique=True)
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["milestone_id", "sequence"]
        verbose_name = "sign-off decision"
        constraints = [
            models.UniqueConstraint(
                fields=["milestone", "sequence"], name="signoff_decision_sequence_unique"
            ),
            choices_constraint("outcome", SignoffOutcome, "signoff_outcome_valid"),
            models.CheckConstraint(
                condition=Q(with_exceptions=False) | Q(outcome="approved"),
                name="signoff_exceptions_only_on_approval",
            ),
        ]

    def __str__(self):
        return f"{self.role_name}: {self.get_outcome_display()} by {self.decided_by_name}"

    @property
    def team_id(self):
        return self.milestone.team_id


class SignoffRequestReason(models.TextChoices):
    ASSIGNED = "assigned", "Holder assigned"
    STALE = "stale", "Scope changed since the last decision"


class SignoffRequest(models.Model):
    """A holder is asked to decide on a scope. The e-mail is an outbox row
    (notifications.Message, kind signoff_request), which records whether and when it went out.

    Unique per role, holder and scope, so however often the same scope is reached the holder
    is asked once.
    """

    role = models.ForeignKey(SignoffRole, on_delete=models.CASCADE, related_name="requests")
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signoff_requests"
    )
    reason = models.CharField(max_length=10, choices=SignoffRequestReason.choices)
    scope_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["role", "holder", "scope_hash"], name="signoff_request_once_per_scope"
            )
        ]

    def __str__(self):
        return f"{self.holder} asked to sign off {self.role}"
