"""Team templates: a milestone's shape saved by a team for reuse.

A template is a snapshot, not a live link: it keeps what a new milestone should start with
(duration, deliverables with acceptance criteria, success criteria, sign-off role names) and
nothing that belongs to one run of the work (dates, owners, status, health, ticks, actual
values). Its content is the JSON form of a `Blueprint`, checked by the same parser that reads
it back, so a stored template is always usable.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from milestone_templates.blueprints import (
    MAX_DURATION_DAYS,
    MIN_DURATION_DAYS,
    Blueprint,
    Group,
    parse_content,
)


def empty_content() -> dict:
    return {"deliverables": [], "success_criteria": [], "signoff_roles": []}


class MilestoneTemplateQuerySet(models.QuerySet):
    def in_team(self, team):
        return self.filter(team=team)


class MilestoneTemplate(models.Model):
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.CASCADE, related_name="milestone_templates"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(
        blank=True, help_text="What the template is for; new milestones start with it as summary."
    )
    duration_days = models.PositiveSmallIntegerField(
        "duration (days)",
        validators=[MinValueValidator(MIN_DURATION_DAYS), MaxValueValidator(MAX_DURATION_DAYS)],
        help_text="A milestone made from it ends this many days after its start.",
    )
    content = models.JSONField(default=empty_content, blank=True)
    saved_from = models.CharField(
        max_length=16, blank=True, help_text="Key of the milestone it was saved from"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MilestoneTemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = "team template"
        constraints = [
            models.UniqueConstraint(
                "team",
                Lower("name"),
                name="milestone_template_name_unique_per_team",
                violation_error_message="Your team already has a template with this name.",
            ),
            models.CheckConstraint(
                condition=Q(duration_days__gte=MIN_DURATION_DAYS)
                & Q(duration_days__lte=MAX_DURATION_DAYS),
                name="milestone_template_duration_in_range",
                violation_error_message=(
                    f"The duration must be between {MIN_DURATION_DAYS} and "
                    f"{MAX_DURATION_DAYS} days."
                ),
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        self.name = (self.name or "").strip()
        errors = {}
        if not self.name:
            errors["name"] = "Give the template a name, e.g. “Service launch”."
        try:
            parse_content(self.content)
        except ValidationError as error:
            errors["content"] = error.messages
        if errors:
            raise ValidationError(errors)

    def blueprint(self) -> Blueprint:
        deliverables, success_criteria, roles = parse_content(self.content)
        return Blueprint(
            ref=str(self.pk),
            name=self.name,
            summary=self.description,
            duration_days=self.duration_days,
            deliverables=deliverables,
            success_criteria=success_criteria,
            signoff_roles=roles,
            group=Group.TEAM,
        )
