"""Which outbox messages a team's admins may see: the delivery log, its failed-delivery notice
on the dashboard, and the Django admin all read them through `team_messages`.

A team's log holds its own messages (Message.team) and the weekly digests (which span teams,
so their team is null) of its members and of its plans' stakeholders, with or without an
account. Another team's alerts never appear, even when they went to one of this team's
members.
"""

import datetime

from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Membership
from milestones.models import Stakeholder
from notifications.models import DeliveryState, Message, MessageKind

# The dashboard tells team admins about failures this recent.
FAILED_NOTICE_DAYS = 7

# The log's state filter: query-string value → (label, states it shows).
STATE_FILTERS = {
    "all": ("All", ()),
    "failed": ("Failed", (DeliveryState.FAILED,)),
    "pending": ("Pending", (DeliveryState.PENDING, DeliveryState.SENDING)),
    "sent": ("Sent", (DeliveryState.SENT,)),
}


def team_messages(team_ids):
    """Messages visible in the delivery log of the teams `team_ids` (ids, or a values()
    queryset of ids), newest first."""
    member_ids = Membership.objects.filter(team__in=team_ids).values("user_id")
    stakeholders = Stakeholder.objects.filter(plan__team__in=team_ids)
    stakeholder_users = stakeholders.filter(user__isnull=False).values("user_id")
    stakeholder_addresses = (
        stakeholders.exclude(email="").annotate(address=Lower("email")).values("address")
    )
    # Digests span teams (team is null): each team sees those of its members and stakeholders.
    digests = Q(team__isnull=True, kind=MessageKind.DIGEST) & (
        Q(recipient_user__in=member_ids)
        | Q(recipient_user__in=stakeholder_users)
        | Q(address__in=stakeholder_addresses)
    )
    return (
        Message.objects.alias(address=Lower("recipient_email"))
        .filter(Q(team__in=team_ids) | digests)
        .order_by("-created_at", "-pk")
    )


def in_state(messages, state_filter: str):
    """`messages` narrowed to a STATE_FILTERS entry (unknown names show everything)."""
    states = STATE_FILTERS.get(state_filter, STATE_FILTERS["all"])[1]
    return messages.filter(state__in=states) if states else messages


def recently_failed_count(team, now=None) -> int:
    """How many of the team's messages failed for good in the last FAILED_NOTICE_DAYS (one
    COUNT query)."""
    since = (now or timezone.now()) - datetime.timedelta(days=FAILED_NOTICE_DAYS)
    return (
        team_messages([team.pk])
        .filter(state=DeliveryState.FAILED, finished_at__gte=since)
        .order_by()
        .count()
    )
