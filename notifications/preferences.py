"""What a recipient has asked to receive, and the two ways they change it: the preferences
page and the unsubscribe link in every e-mail.

A user's choices live on NotificationPreferences (one field per kind of e-mail); a plain
stakeholder address has no account, so leaving a kind of e-mail is an EmailOptOut row.
"""

import datetime
import zoneinfo
from dataclasses import dataclass
from functools import cache

from django.db import transaction
from django.utils import timezone

from accounts.models import User, zone_of
from notifications.models import (
    EmailOptOut,
    Message,
    MessageKind,
    NotificationPreferences,
    recipient_key_for,
)
from notifications.unsubscribe import read_token

# Each kind of e-mail a recipient can stop → the NotificationPreferences field that stops it.
# (Webhook-disabled notices go to team admins about their own endpoints: not optional.)
PREFERENCE_FIELD_FOR_KIND = {
    MessageKind.DIGEST: "digest_enabled",
    MessageKind.AT_RISK: "at_risk_alerts",
    MessageKind.SIGNOFF_REQUEST: "signoff_requests",
    MessageKind.SIGNOFF_DECISION: "signoff_decisions",
    MessageKind.UPDATE_REMINDER: "update_reminders",
    MessageKind.COMPLETION: "completion_notices",
}
ALERT_FIELDS = [field for kind, field in PREFERENCE_FIELD_FOR_KIND.items() if kind != "digest"]


@cache
def time_zone_names() -> list[str]:
    """Every IANA zone this Python knows (tzdata), sorted; what User.time_zone may hold."""
    return sorted(zoneinfo.available_timezones())


@dataclass(frozen=True)
class NextDigest:
    """When the user's next digest goes out, in their time zone. `due_now`: this week's hour
    has come and the digest is not queued yet, so the next run (every 15 min) sends it."""

    at: datetime.datetime
    due_now: bool = False


def next_digest(user, preferences: NotificationPreferences, now=None) -> NextDigest | None:
    """None when the digest is off. Follows notifications/digest.py's schedule: a week's
    digest is due from its weekday and hour until the week ends, once."""
    from notifications import digest  # digest imports this module (PREFERENCE_FIELD_FOR_KIND)

    if not preferences.digest_enabled:
        return None
    local_now = (now or timezone.now()).astimezone(zone_of(user.time_zone))
    weekday, hour = preferences.digest_weekday, preferences.digest_hour
    this_week = digest.scheduled_at(local_now, weekday, hour)
    if local_now < this_week:
        return NextDigest(this_week)
    queued = Message.objects.filter(
        kind=MessageKind.DIGEST,
        recipient_key=recipient_key_for(user),
        dedupe_key=digest.iso_week(local_now.date()),
    ).exists()
    if not queued:
        return NextDigest(local_now, due_now=True)
    return NextDigest(digest.scheduled_at(local_now + datetime.timedelta(days=7), weekday, hour))


@dataclass(frozen=True)
class Subscription:
    """One recipient's subscription to one kind of e-mail, as an unsubscribe link names it."""

    kind: str
    user: User | None = None
    email: str = ""

    @property
    def kind_label(self) -> str:
        return MessageKind(self.kind).label

    @property
    def address(self) -> str:
        return self.user.email if self.user else self.email

    @property
    def preference_field(self) -> str:
        return PREFERENCE_FIELD_FOR_KIND[self.kind]

    def is_active(self) -> bool:
        """Whether e-mails of this kind still go to the recipient."""
        if self.user is not None:
            preferences = NotificationPreferences.for_user(self.user)
            return getattr(preferences, self.preference_field)
        return not EmailOptOut.objects.filter(email=self.email, kind=self.kind).exists()


def subscription_from_token(token: str) -> Subscription | None:
    """The subscription an unsubscribe link stands for; None for a link that was altered,
    names a user who no longer exists, or a kind nobody can leave."""
    read = read_token(token)
    if read is None:
        return None
    recipient_key, kind = read
    if kind not in PREFERENCE_FIELD_FOR_KIND:
        return None
    scheme, _, value = recipient_key.partition(":")
    if scheme == "user" and value.isdigit():
        user = User.objects.filter(pk=int(value)).first()
        return Subscription(kind, user=user) if user else None
    if scheme == "email" and "@" in value:
        return Subscription(kind, email=value.strip().lower())
    return None


@transaction.atomic
def unsubscribe(subscription: Subscription) -> bool:
    """Stop this kind of e-mail to the recipient; True when it changed something. Running it
    twice (a mail client's one-click post and then the page's button) is harmless."""
    field = subscription.preference_field
    if subscription.user is not None:
        preferences, created = NotificationPreferences.objects.get_or_create(
            user=subscription.user, defaults={field: False}
        )
        if created:
            return True
        return bool(
            NotificationPreferences.objects.filter(pk=preferences.pk, **{field: True}).update(
                **{field: False}
            )
        )
    _, created = EmailOptOut.objects.get_or_create(email=subscription.email, kind=subscription.kind)
    return created


def apply_choices(user, preferences, *, mute=(), unmute=(), time_zone: str | None = None):
    """After the preferences row is saved: mute and unmute plans (by id) and move the user's
    time zone. The page and the API both save through here, so the rules stay in one place:
    plans the caller was not offered are neither muted nor unmuted (a mute of a plan in a team
    the user left is kept), and the time zone lives on the user."""
    preferences.muted_plans.remove(*unmute)
    preferences.muted_plans.add(*mute)
    if time_zone is not None and time_zone != user.time_zone:
        user.time_zone = time_zone
        user.save(update_fields=["time_zone"])
