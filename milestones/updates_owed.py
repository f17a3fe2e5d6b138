"""Which status updates are owed: the one rule behind the dashboard's "Status updates I owe",
the hourly reminders and the digest's "needs your action".

An in-progress milestone owes an update once its latest status update, or its start when it
has none, is at least its team's `status_update_cadence_days` old. "Its start" is the start
date's midnight in the owner's time zone (creation time when there is no start date), so a
milestone that has just begun is not already behind.
"""

import datetime
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from accounts.models import zone_of
from milestones.models import Milestone, MilestoneStatus, StatusUpdate


@dataclass(frozen=True)
class OverdueUpdate:
    """An in-progress milestone whose owner owes a status update."""

    milestone: Milestone
    last_update_id: int | None
    last_update_at: datetime.datetime | None
    since: datetime.datetime  # the latest update, or the start when there is none
    periods: int  # whole cadences elapsed since then (1 or more)

    @property
    def days(self) -> int:
        return self.periods * self.milestone.team.status_update_cadence_days


def overdue_updates(milestones, now: datetime.datetime) -> list[OverdueUpdate]:
    """The milestones of `milestones` (a queryset) that owe a status update at `now`, most
    overdue first (the longest since their last update or start).

    One query whatever the number of milestones, teams or updates."""
    latest = StatusUpdate.objects.filter(milestone=OuterRef("pk")).order_by("-created_at", "-pk")
    rows = (
        milestones.filter(status=MilestoneStatus.IN_PROGRESS)
        .select_related("team", "plan__team", "owner")
        .annotate(
            last_update_id=Subquery(latest.values("pk")[:1]),
            last_update_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("target_date", "key")
    )
    overdue = []
    for milestone in rows:
        since = milestone.last_update_at or start_of(milestone)
        cadence = datetime.timedelta(days=milestone.team.status_update_cadence_days)
        periods = (now - since) // cadence
        if periods >= 1:
            overdue.append(
                OverdueUpdate(
                    milestone, milestone.last_update_id, milestone.last_update_at, since, periods
                )
            )
    overdue.sort(key=lambda item: item.since)  # stable: ties keep target date order
    return overdue


def start_of(milestone: Milestone) -> datetime.datetime:
    """When work began: the start date's midnight in the owner's time zone, else creation."""
    if milestone.start_date is None:
        return milestone.created_at
    zone = zone_of(milestone.owner.time_zone if milestone.owner else "")
    return datetime.datetime.combine(milestone.start_date, datetime.time.min, tzinfo=zone)
