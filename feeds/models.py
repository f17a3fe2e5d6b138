"""Calendar feed subscriptions: a secret address per user, plan or team.

A feed's address carries a random token. Only its SHA-256 hash is stored, so the address is
shown once (when the feed is made or regenerated) and a copy of the database does not give
anyone a working calendar link. The token stands for its user: the feed shows what that user
may see *when the calendar app asks*, so leaving a team silences that team's feeds.
"""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

# How often a feed's `last_used_at` is written (calendar apps poll every few minutes to hours).
LAST_USED_RESOLUTION = datetime.timedelta(minutes=15)


def hash_secret(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_secret() -> tuple[str, str]:
    """A fresh url-safe token and its hash."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_secret(raw)


class FeedKind(models.TextChoices):
    USER = "user", "My milestones"
    PLAN = "plan", "Plan"
    TEAM = "team", "Team"


class FeedTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def for_url(self, raw: str) -> "FeedToken | None":
        """The active feed whose address carries `raw`, with `member` saying whether its user
        still belongs to its team (one query); None for an unknown or revoked token."""
        from accounts.models import Membership

        if not raw or len(raw) > 100:
            return None
        still_member = Membership.objects.filter(user=OuterRef("user"), team=OuterRef("team"))
        return (
            self.active()
            .filter(secret_hash=hash_secret(raw), user__is_active=True)
            .select_related("user", "team", "plan")
            .annotate(member=Exists(still_member))
            .first()
        )


class FeedToken(models.Model):
    """One subscribable calendar: `kind` says what it holds.

    - user: milestones the user owns, in every team they belong to (and, once sign-offs
      land, the sign-offs they hold); `team` and `plan` are empty.
    - team: every milestone of `team`.
    - plan: every milestone of `plan`; `team` is the plan's team.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feed_tokens"
    )
    kind = models.CharField(max_length=8, choices=FeedKind.choices)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    plan = models.ForeignKey(
        "milestones.Plan", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    regenerated_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = FeedTokenQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = "calendar feed"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=FeedKind.USER, team__isnull=True, plan__isnull=True)
                | Q(kind=FeedKind.TEAM, team__isnull=False, plan__isnull=True)
                | Q(kind=FeedKind.PLAN, team__isnull=False, plan__isnull=False),
                name="feed_kind_matches_target",
                violation_error_message="A feed is for the user, for a team, or for a plan.",
            ),
            models.UniqueConstraint(
                "user",
                "kind",
                Coalesce("team", 0),
                Coalesce("plan", 0),
                condition=Q(revoked_at__isnull=True),
                name="feed_one_active_per_target",
                violation_error_message="You already have this feed.",
            ),
        ]

    def __str__(self):
        return f"{self.title} ({self.user})"

    @property
    def title(self) -> str:
        if self.kind == FeedKind.PLAN:
            return f"{self.plan.key} {self.plan.title} ({self.team.name})"
        if self.kind == FeedKind.TEAM:
            return f"Team {self.team.name}"
        return "My milestones"

    @property
    def filename(self) -> str:
        if self.kind == FeedKind.PLAN:
            return f"milepost-{self.team.slug}-{self.plan.key.lower()}.ics"
        if self.kind == FeedKind.TEAM:
            return f"milepost-{self.team.slug}.ics"
        return f"milepost-{self.user.username.lower()}.ics"

    @staticmethod
    def path_for(raw: str) -> str:
        return reverse("feeds:ics", kwargs={"token": raw})

    @classmethod
    def create_for(cls, user, *, kind: str, team=None, plan=None) -> tuple["FeedToken", str]:
        """A new feed and its raw token (shown once). The caller checks the user may see
        `team`/`plan`; the unique constraint refuses a second active feed for the same thing."""
        if plan is not None:
            team = plan.team
        raw, digest = new_secret()
        feed = cls(user=user, kind=kind, team=team, plan=plan, secret_hash=digest)
        feed.full_clean(exclude=["secret_hash"])
        feed.save()
        return feed, raw

    def regenerate(self) -> str | None:
        """Give the feed a new secret: the old address stops working at once. Returns the new
        raw token, or None when the feed was revoked meanwhile."""
        raw, digest = new_secret()
        now = timezone.now()
        changed = (
            FeedToken.objects.active()
            .filter(pk=self.pk)
            .update(secret_hash=digest, regenerated_at=now, last_used_at=None)
        )
        if not changed:
            return None
        self.secret_hash, self.regenerated_at, self.last_used_at = digest, now, None
        return raw

    def revoke(self) -> bool:
        """Stop the feed for good. False when it was already revoked."""
        now = timezone.now()
        changed = FeedToken.objects.active().filter(pk=self.pk).update(revoked_at=now)
        if changed:
            self.revoked_at = now
        return bool(changed)

    def note_use(self) -> None:
        """Record that a calendar app fetched the feed (at most one write per resolution)."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION:
            FeedToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
