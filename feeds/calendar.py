"""A feed's iCalendar document, built with `icalendar`.

Each milestone with a target date becomes an all-day event on that date; an open milestone
whose forecast finish differs from its target gets a second all-day event on the forecast.

Calendar apps match events by UID, so the UIDs come from the objects themselves
(`milestone-<pk>-target@<host>`, `milestone-<pk>-forecast@<host>`, host from SITE_URL), never
from the feed or its secret: the same milestone is the same event in every feed, and moving a
date or regenerating a feed's address updates events instead of duplicating them. SEQUENCE
follows the milestone's `version` (bumped by every edit), plus the number of forecast moves for
the forecast event; LAST-MODIFIED and DTSTAMP are when the milestone or its computed forecast
last changed. A user's own feed adds their awaited sign-offs (`signoff-<role pk>@<host>`) on
the milestones' target dates.

The whole feed costs a fixed number of queries, whatever its size.
"""

import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event, vDuration

from feeds.models import FeedKind, FeedToken
from milestones import signoffs
from milestones.models import ForecastShift, Milestone, MilestoneStatus, subquery_count

REFRESH = datetime.timedelta(hours=1)
ONE_DAY = datetime.timedelta(days=1)


def uid_host() -> str:
    """The domain part of every UID: the public host name, stable across requests."""
    return urlsplit(settings.SITE_URL).hostname or "milepost"


def milestones_for(feed: FeedToken):
    """The milestones a feed shows, as its user may see them now (one query)."""
    milestones = (
        Milestone.objects.filter(target_date__isnull=False)
        .select_related("team", "plan", "owner")
        .annotate(forecast_moves=subquery_count(ForecastShift.objects.all(), "milestone"))
        .order_by("target_date", "pk")
    )
    if feed.kind == FeedKind.PLAN:
        return milestones.filter(plan_id=feed.plan_id)
    if feed.kind == FeedKind.TEAM:
        return milestones.filter(team_id=feed.team_id)
    # My milestones: the ones I own, in the teams I still belong to.
    return milestones.filter(owner_id=feed.user_id).visible_to(feed.user)


def signoff_deadline_events(feed: FeedToken, *, host: str, links: "MilestoneLinks") -> list[Event]:
    """The user feed's sign-off deadlines: each sign-off role the user holds and still has to
    decide (`milestones.signoffs.awaiting_roles`, the rule the My sign-offs page uses), as an
    all-day event on its milestone's target date. One query, whatever the count.

    Once the holder decides, the role is no longer awaited and its event leaves the feed; when
    the scope changes afterwards it is awaited again and comes back with the same UID.
    """
    roles = (
        signoffs.awaiting_roles(feed.user)
        .filter(milestone__target_date__isnull=False)
        .select_related("milestone__team", "milestone__plan")
        .order_by("milestone__target_date", "pk")
    )
    events = []
    for role in roles:
        milestone = role.milestone
        url = f"{links.url(milestone)}#signoffs"
        modified = _utc(max(role.updated_at, milestone.updated_at))
        where = f"{milestone.plan.key} {milestone.plan.title}, {milestone.team.name}"
        description = [
            f"You hold the {role.name} sign-off of {milestone.key} {milestone.title} ({where})"
            " and your decision is awaited.",
            f"Target: {_day(milestone.target_date)}",
            url,
        ]
        properties = {
            "created": _utc(role.created_at),
            "last-modified": modified,
            "dtstamp": modified,
            "url": url,
            "transp": "TRANSPARENT",
            "status": "CONFIRMED",
            "description": "\n".join(description),
        }
        events.append(
            _event(
                uid=f"signoff-{role.pk}@{host}",
                day=milestone.target_date,
                summary=f"Sign-off due: {role.name} for {milestone.key} {milestone.title}",
                category="Sign-off",
                # The role (its holder) or the milestone (its date) may change the event.
                sequence=(role.version - 1) + (milestone.version - 1),
                **properties,
            )
        )
    return events


def build_calendar(feed: FeedToken) -> Calendar:
    host = uid_host()
    links = MilestoneLinks()
    events = []
    for milestone in milestones_for(feed):
        events.extend(milestone_events(milestone, host=host, url=links.url(milestone)))
    if feed.kind == FeedKind.USER:
        events.extend(signoff_deadline_events(feed, host=host, links=links))
    calendar = Calendar.new(
        prodid="-//Milepost//Milepost calendar feed//EN",
        uid=f"feed-{feed.pk}@{host}",
        name=f"Milepost · {feed.title}",
        description=_feed_description(feed),
        refresh_interval=REFRESH,
        calscale="GREGORIAN",
        subcomponents=events,
    )
    calendar.add("x-published-ttl", vDuration(REFRESH))
    return calendar


class MilestoneLinks:
    """Absolute links to milestone pages, reversing the URL once per team (feeds are long)."""

    def __init__(self):
        self.site = settings.SITE_URL.rstrip("/")
        self.prefixes = {}

    def url(self, milestone: Milestone) -> str:
        slug = milestone.team.slug
        if slug not in self.prefixes:
            path = reverse("milestone", kwargs={"team": slug, "key": "KEY"})
            self.prefixes[slug] = self.site + path.removesuffix("KEY/")
        return f"{self.prefixes[slug]}{milestone.key}/"


def _feed_description(feed: FeedToken) -> str:
    what = {
        FeedKind.USER: "Milestones you own",
        FeedKind.TEAM: f"Every milestone of team {feed.team.name if feed.team else ''}",
        FeedKind.PLAN: f"The milestones of {feed.plan.key} {feed.plan.title}" if feed.plan else "",
    }[feed.kind]
    return f"{what}: target dates, and forecast finishes where they differ. From Milepost."


def milestone_events(milestone: Milestone, *, host: str, url: str) -> list[Event]:
    """The target-date event, and the forecast event when the forecast differs."""
    target = milestone.target_date
    forecast = _differing_forecast(milestone)
    name = f"{milestone.key} {milestone.title}"
    if milestone.status == MilestoneStatus.COMPLETED:
        summary = f"✓ {name} — completed"
    elif milestone.status == MilestoneStatus.CANCELLED:
        summary = f"{name} — cancelled"
    elif forecast:
        summary = f"{name} — target (forecast {_day(forecast)}, {_lateness(forecast, target)})"
    else:
        summary = f"{name} — target"
    modified = _utc(max(filter(None, [milestone.updated_at, milestone.health_evaluated_at])))
    common = {
        "created": _utc(milestone.created_at),
        "last-modified": modified,
        "dtstamp": modified,
        "url": url,
        "transp": "TRANSPARENT",
        "status": "CANCELLED" if milestone.status == MilestoneStatus.CANCELLED else "CONFIRMED",
        "description": _description(milestone, forecast, url),
    }
    events = [
        _event(
            uid=f"milestone-{milestone.pk}-target@{host}",
            day=target,
            summary=summary,
            sequence=milestone.version - 1,
            category="Milestone target",
            **common,
        )
    ]
    if forecast:
        events.append(
            _event(
                uid=f"milestone-{milestone.pk}-forecast@{host}",
                day=forecast,
                summary=f"{name} — forecast finish ({_lateness(forecast, target)}; "
                f"target {_day(target)})",
                sequence=milestone.version - 1 + getattr(milestone, "forecast_moves", 0),
                category="Milestone forecast",
                **common,
            )
        )
    return events


def _event(*, uid: str, day: datetime.date, summary: str, category: str, **properties) -> Event:
    """An all-day event (DTEND is the next day, exclusive). Event() and add() rather than
    Event.new(), which validates every property again: a third faster on long feeds."""
    event = Event()
    event.add("uid", uid)
    event.add("dtstart", day)
    event.add("dtend", day + ONE_DAY)
    event.add("summary", summary)
    event.add("categories", [category])
    for name, value in properties.items():
        event.add(name, value)
    return event


def _differing_forecast(milestone: Milestone) -> datetime.date | None:
    """The forecast finish of an open milestone, when it is not its target date."""
    if milestone.is_closed or not milestone.forecast_finish:
        return None
    if milestone.forecast_finish == milestone.target_date:
        return None
    return milestone.forecast_finish


def _description(milestone: Milestone, forecast: datetime.date | None, url: str) -> str:
    lines = [
        f"Plan: {milestone.plan.key} {milestone.plan.title} ({milestone.team.name})",
        f"Status: {milestone.get_status_display()}",
    ]
    if milestone.status == MilestoneStatus.COMPLETED and milestone.completed_on:
        lines.append(f"Completed on {_day(milestone.completed_on)}")
    if not milestone.is_closed:
        health = milestone.get_health_display()
        reasons = "; ".join(r.get("message", "") for r in milestone.health_reasons or [])
        lines.append(f"Health: {health}" + (f" — {reasons}" if reasons else ""))
    lines.append(f"Owner: {milestone.owner.display_name if milestone.owner else 'nobody yet'}")
    target_line = f"Target: {_day(milestone.target_date)}"
    baseline = milestone.baseline_target_date
    if baseline and baseline != milestone.target_date:
        target_line += f" (first committed: {_day(baseline)})"
    lines.append(target_line)
    if forecast:
        lateness = _lateness(forecast, milestone.target_date)
        lines.append(f"Forecast finish: {_day(forecast)} ({lateness} against the target)")
    lines.append(url)
    return "\n".join(lines)


def _day(value: datetime.date) -> str:
    return f"{value:%a %-d %b %Y}"


def _lateness(forecast: datetime.date, target: datetime.date) -> str:
    days = (forecast - target).days
    n = abs(days)
    return f"{n} day{'' if n == 1 else 's'} {'late' if days > 0 else 'early'}"


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value.astimezone(datetime.UTC) if timezone.is_aware(value) else value
