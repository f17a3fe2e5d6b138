"""The outbox: every e-mail is a row before it is a Celery task (see notifications/outbox.py)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    # Recorded, never sent: an empty digest for someone who asked for none that week. The row
    # keeps the week's once-only key taken so later runs do not build it again.
    SKIPPED = "skipped", "Skipped"


class OutboxRow(models.Model):
    """What every outbox row has: a state machine that only a conditional update can advance.

    pending → sending (claimed by exactly one worker) → sent, or back to pending with a later
    `next_attempt_at` after a failed attempt, or failed once the attempts are used up.
    """

    state = models.CharField(
        max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Not before this time (retries wait here); the sweeper only looks at rows already due.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # When a task for the row was last handed to the broker (null: never reached it).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class MessageKind(models.TextChoices):
    DIGEST = "digest", "Weekly digest"
    AT_RISK = "at_risk", "At-risk alert"
    SIGNOFF_REQUEST = "signoff_request", "Sign-off request"
    SIGNOFF_DECISION = "signoff_decision", "Sign-off decision"
    UPDATE_REMINDER = "update_reminder", "Status update reminder"
    COMPLETION = "completion", "Completion notice"
    WEBHOOK_DISABLED = "webhook_disabled", "Webhook endpoint disabled"


class Message(OutboxRow):
    """One e-mail to one recipient, rendered when it is queued."""

    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    # A user, or a plain address (a stakeholder without an account).
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
    )
    recipient_email = models.EmailField()
    # "user:<id>" or "email:<address>": what the once-only constraint is keyed on.
    recipient_key = models.CharField(max_length=260)
    # e.g. the ISO week "2026-W47" for a digest, "transition:812" for an alert.
    dedupe_key = models.CharField(max_length=120)
    # The team whose admins see it in their delivery log (null: a digest across teams).
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subject = models.CharField(max_length=300)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient_key", "kind", "dedupe_key"], name="message_once_per_recipient"
            ),
            models.CheckConstraint(
                condition=Q(state__in=DeliveryState.values), name="message_state_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="message_due"),
            models.Index(fields=["team", "-created_at"], name="message_team_log"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient_email} ({self.state})"

    @property
    def message_id(self) -> str:
        """A Message-ID fixed per row: a resend after a worker died carries the same id, so
        mail clients that de-duplicate on it show one message."""
        domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(" >") or "milepost"
        return f"<milepost-message-{self.pk}@{domain}>"


def recipient_key_for(user=None, email: str = "") -> str:
    if user is not None:
        return f"user:{user.pk}"
    return f"email:{email.strip().lower()}"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class EmptyDigest(models.TextChoices):
    SHORT = "short", "Send a short note saying nothing needs attention"
    SKIP = "skip", "Send nothing"


class NotificationPreferences(models.Model):
    """What one user wants to receive. Users without a row get the field defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    digest_enabled = models.BooleanField("weekly digest", default=True)
    digest_weekday = models.PositiveSmallIntegerField(
        "digest day", choices=Weekday.choices, default=Weekday.MONDAY
    )
    digest_hour = models.PositiveSmallIntegerField(
        "digest hour", default=8, help_text="In your time zone, 0–23."
    )
    digest_when_empty = models.CharField(
        "when nothing needs attention",
        max_length=5,
        choices=EmptyDigest.choices,
        default=EmptyDigest.SHORT,
    )
    at_risk_alerts = models.BooleanField("at-risk alerts", default=True)
    signoff_requests = models.BooleanField("sign-off requests", default=True)
    signoff_decisions = models.BooleanField("decisions on my milestones", default=True)
    update_reminders = models.BooleanField("status update reminders", default=True)
    completion_notices = models.BooleanField("completion notices", default=True)
    # Plans left out of the digest; every other open plan of the user's teams is followed.
    muted_plans = models.ManyToManyField("milestones.Plan", blank=True, related_name="+")

    class Meta:
        verbose_name_plural = "notification preferences"
        constraints = [
            models.CheckConstraint(
                condition=Q(digest_hour__gte=0, digest_hour__lte=23), name="digest_hour_valid"
            ),
            models.CheckConstraint(
                condition=Q(digest_weekday__gte=0, digest_weekday__lte=6),
                name="digest_weekday_valid",
            ),
        ]

    def __str__(self):
        return f"Notification preferences of {self.user}"

    @classmethod
    def for_user(cls, user) -> "NotificationPreferences":
        """The user's saved preferences, or the defaults (unsaved) when they never chose."""
        try:
            return user.notification_preferences
        except cls.DoesNotExist:
            return cls(user=user)


class EmailOptOut(models.Model):
    """A plain address (a stakeholder without an account) that unsubscribed from a kind."""

    email = models.EmailField()
    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["email", "kind"], name="email_opt_out_once")]

    def __str__(self):
        return f"{self.email} opted out of {self.get_kind_display()}"
