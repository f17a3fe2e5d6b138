"""Webhook endpoints a team registers, and the deliveries made to them (outbox rows).

A delivery is a row first, like every e-mail (notifications/outbox.py): it is created in the
transaction of the change it reports, published to Celery after commit, claimed by exactly one
worker and retried with backoff until it is sent or its attempts are used up.
"""

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifications.models import DeliveryState, OutboxRow
from webhooks.addresses import RefusedURL, check_url


class EventType(models.TextChoices):
    MILESTONE_CREATED = "milestone.created", "Milestone created"
    MILESTONE_UPDATED = "milestone.updated", "Milestone updated"
    MILESTONE_HEALTH_CHANGED = "milestone.health_changed", "Milestone health changed"
    MILESTONE_COMPLETED = "milestone.completed", "Milestone completed"
    SIGNOFF_DECIDED = "signoff.decided", "Sign-off decided"
    DELIVERABLE_UPDATED = "deliverable.updated", "Deliverable created or updated"
    BLOCKER_RAISED = "blocker.raised", "Blocker raised"
    BLOCKER_RESOLVED = "blocker.resolved", "Blocker resolved"
    # Sent on request from the endpoint's page; never subscribed to.
    PING = "ping", "Ping (test)"


SUBSCRIBABLE_EVENTS = [choice for choice in EventType if choice != EventType.PING]
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def validate_event_types(value):
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event.")
    unknown = [name for name in value if name not in SUBSCRIBABLE_EVENTS]
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(map(str, unknown))}.")
    if len(set(value)) != len(value):
        raise ValidationError("Each event type may appear only once.")


class WebhookEndpointQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def of_team(self, team):
        return self.filter(team=team)


class WebhookEndpoint(models.Model):
    """A URL of a team's that is told about the events it subscribed to, signed with `secret`.

    `secret` is kept in clear because every delivery is signed with it; the pages show it only
    right after it was made (creation or rotation).
    """

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(
        max_length=120, blank=True, help_text="Optional, e.g. “CI bot” or “Chat channel”."
    )
    url = models.URLField(
        "URL",
        max_length=500,
        help_text="Milepost POSTs JSON here. http:// or https:// only.",
    )
    secret = models.CharField(max_length=80, default=new_secret, editable=False)
    event_types = models.JSONField(
        "events", default=list, validators=[validate_event_types], blank=False
    )
    is_active = models.BooleanField("active", default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # True when Milepost disabled it after repeated failure (the page shows a notice).
    disabled_automatically = models.BooleanField(default=False)
    # Deliveries in a row that failed for good; reset by every successful one.
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["team", "is_active"], name="webhook_endpoint_team")]

    def __str__(self):
        return self.name or self.url

    def clean(self):
        if self.url:
            try:
                check_url(self.url)
            except RefusedURL as refusal:
                raise ValidationError({"url": str(refusal)}) from None

    def subscribes_to(self, event_type: str) -> bool:
        return event_type in self.event_types

    def event_type_labels(self) -> list[str]:
        return [EventType(name).label for name in self.event_types if name in EventType.values]


class WebhookDelivery(OutboxRow):
    """One event for one endpoint: the exact JSON text that is signed and sent.

    Unique per endpoint and event id; a redelivery of a row that was already sent is a new row
    pointing at it (`redelivery_of`) with the same event id and body, so the log keeps both.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    body = models.TextField()
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"],
                condition=Q(redelivery_of__isnull=True),
                name="webhook_delivery_once_per_event",
            ),
            models.CheckConstraint(
                condition=Q(state__in=DeliveryState.values), name="webhook_delivery_state_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_log"),
        ]

    def __str__(self):
        return f"{self.event_type} to {self.endpoint_id} ({self.state})"

    @property
    def can_redeliver(self) -> bool:
        return self.state in (DeliveryState.SENT, DeliveryState.FAILED)
