"""What a spec document holds that Milepost's domain models have no field for, and uploads
waiting for their preview to be confirmed.

Kept here, keyed by the domain object, so an export gives back what an import took in.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class SpecSection(models.Model):
    """A section of an imported document with no field of its own ("Timeline & Dependencies",
    "Acceptance Procedures"…), kept as markdown on its milestone or plan."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey(
        "milestones.Plan",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="spec_sections",
    )
    milestone = models.ForeignKey(
        "milestones.Milestone",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="spec_sections",
    )
    heading = models.CharField(max_length=200)
    # Markdown; the section's own sub-headings start at ###.
    body = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(plan__isnull=True, milestone__isnull=False)
                | Q(plan__isnull=False, milestone__isnull=True),
                name="spec_section_one_owner",
                violation_error_message="A section belongs to one milestone or one plan.",
            )
        ]

    def __str__(self):
        return self.heading


class SpecUpload(models.Model):
    """A document uploaded for import, kept until its preview is confirmed (or a day passes)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    shape = models.CharField(max_length=10, blank=True)
    plan = models.ForeignKey(
        "milestones.Plan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.filename or str(self.id)
