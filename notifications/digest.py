"""The weekly digest: one e-mail per recipient per ISO week, at the hour they chose.

Who gets one (`due_recipients`):
- a user with the digest on (NotificationPreferences.digest_enabled, on by default), an
  address and at least one team, once their local time (User.time_zone) has reached this ISO
  week's chosen weekday and hour (Monday 08:00 unless they chose otherwise);
- a stakeholder address without an account (a plan's Stakeholder row with gets_digest) that
  has not opted out, from Monday 08:00 in settings.TIME_ZONE.

"Once per week" is the outbox's unique constraint on (recipient, kind, dedupe key) with the
ISO week of the recipient's local date ("2026-W47") as the key: each recipient is queued in
its own short transaction, so a run that dies half-way keeps what it queued and the next run
queues only the rest. A recipient whose week is empty and who chose "send nothing" gets a
skipped row for the week instead, so they are not rebuilt every run.

What a digest holds (`build_digest`): for the open plans of the user's teams that they follow
(every one except those they muted, plus those where they are a stakeholder with
gets_digest), over the seven days up to now: what needs their action (sign-offs awaiting their
decision, and in-progress milestones they own whose status update is older than the team's
cadence; both across all their teams, muted plans included, since they are personal duties),
milestones off track and at risk with their reasons, due in the next 14 days, completed,
slipped (net forecast movement over the week), improved, and new blockers and risks. Each
section is one query whatever the number of plans, milestones or teams.
"""

import datetime
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, User, zone_of
from milestones import signoffs
from milestones.models import (
    Blocker,
    ForecastShift,
    Health,
    HealthTransition,
    Milestone,
    MilestoneStatus,
    Plan,
    PlanStatus,
    Risk,
    Stakeholder,
)
from milestones.updates_owed import overdue_updates
from notifications import outbox
from notifications.alerts import (
    Recipient,
    Rendered,
    milestone_url,
    plan_url,
    render_email,
    site_url,
)
from notifications.models import (
    EmailOptOut,
    EmptyDigest,
    Message,
    MessageKind,
    NotificationPreferences,
    recipient_key_for,
)

WEEK = datetime.timedelta(days=7)
DUE_SOON_DAYS = 14
# Lines shown per section; the rest is "and N more" with a link to the app.
SECTION_LIMIT = 20

SECTIONS = (
    ("needs_action", "Needs your action"),
    ("off_track", "Off track"),
    ("at_risk", "At risk"),
    ("due_soon", f"Due in the next {DUE_SOON_DAYS} days"),
    ("completed", "Completed this week"),
    ("slipped", "Slipped this week"),
    ("improved", "Improved this week"),
    ("new_blockers", "New blockers"),
    ("new_risks", "New risks"),
)

# How each section reads in the subject line: (one, many).
SUBJECT_WORDS = {
    "needs_action": ("{n} needs your action", "{n} need your action"),
    "off_track": ("{n} off track", "{n} off track"),
    "at_risk": ("{n} at risk", "{n} at risk"),
    "due_soon": ("{n} due soon", "{n} due soon"),
    "completed": ("{n} completed", "{n} completed"),
    "slipped": ("{n} slipped", "{n} slipped"),
    "improved": ("{n} improved", "{n} improved"),
    "new_blockers": ("{n} new blocker", "{n} new blockers"),
    "new_risks": ("{n} new risk", "{n} new risks"),
}
SUBJECT_PARTS = 3


def iso_week(day: datetime.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Line:
    """One entry of a section: what it is, where to look, and what to know about it."""

    label: str
    url: str
    plan: str = ""
    detail: str = ""
    notes: list = field(default_factory=list)


@dataclass
class Section:
    slug: str
    title: str
    lines: list

    @property
    def shown(self) -> list:
        return self.lines[:SECTION_LIMIT]

    @property
    def more(self) -> int:
        return max(len(self.lines) - SECTION_LIMIT, 0)


@dataclass
class Digest:
    """What one recipient is told this week. `user` is None for a plain stakeholder address."""

    user: User | None
    email: str
    zone: datetime.tzinfo
    now: datetime.datetime
    plans: list
    needs_action: list = field(default_factory=list)
    off_track: list = field(default_factory=list)
    at_risk: list = field(default_factory=list)
    due_soon: list = field(default_factory=list)
    completed: list = field(default_factory=list)
    slipped: list = field(default_factory=list)
    improved: list = field(default_factory=list)
    new_blockers: list = field(default_factory=list)
    new_risks: list = field(default_factory=list)

    @property
    def local_now(self) -> datetime.datetime:
        return self.now.astimezone(self.zone)

    @property
    def week(self) -> str:
        """The ISO week of the recipient's local date: the digest's once-only key."""
        return iso_week(self.local_now.date())

    @property
    def recipient_key(self) -> str:
        return recipient_key_for(self.user, self.email)

    @property
    def address(self) -> str:
        return self.user.email if self.user is not None else self.email

    @property
    def sections(self) -> list[Section]:
        return [Section(slug, title, getattr(self, slug)) for slug, title in SECTIONS]

    @property
    def counts(self) -> dict[str, int]:
        return {slug: len(getattr(self, slug)) for slug, _ in SECTIONS}

    @property
    def is_empty(self) -> bool:
        return not any(self.counts.values())


# --- Building -------------------------------------------------------------------------------


def followed_plans(user, plans=None):
    """Open plans of the user's teams that they follow: all but the muted ones, and muted
    ones where they are a stakeholder with gets_digest. `plans` narrows it down."""
    muted = NotificationPreferences.muted_plans.through.objects.filter(
        notificationpreferences__user=user
    ).values("plan_id")
    as_stakeholder = Stakeholder.objects.filter(user=user, gets_digest=True).values("plan_id")
    followed = (
        Plan.objects.open()
        .filter(team__memberships__user=user)
        .filter(~Q(pk__in=muted) | Q(pk__in=as_stakeholder))
    )
    if plans is not None:
        followed = followed.filter(pk__in=plans.values("pk"))
    return followed


def build_digest(user, *, now=None, plans=None, shared: dict | None = None) -> Digest:
    """The digest for `user` over the week up to `now`, in their time zone (ten queries,
    whatever the size of their teams). `plans` (a queryset) narrows it to those plans, e.g.
    for a team admin previewing what a member gets from one team. `shared` (a dict kept for
    one run) lets recipients who follow the same plans on the same local date share the
    plan sections instead of querying them again: three queries each after the first."""
    now = now or timezone.now()
    digest = Digest(
        user=user,
        email=user.email,
        zone=zone_of(user.time_zone),
        now=now,
        plans=list(
            followed_plans(user, plans).select_related("team").order_by("team__name", "title")
        ),
    )
    digest.needs_action = _awaiting_signoffs(user, plans) + _updates_owed(user, plans, now)
    _fill_sections(digest, shared)
    return digest


def build_stakeholder_digest(email: str, *, now=None, shared: dict | None = None) -> Digest:
    """The digest for a plain address that is a gets_digest stakeholder of open plans (there
    is nothing for them to act on), in settings.TIME_ZONE."""
    now = now or timezone.now()
    rows = Stakeholder.objects.filter(
        user__isnull=True, email__iexact=email.strip(), gets_digest=True
    )
    plans = (
        Plan.objects.open()
        .filter(pk__in=rows.values("plan_id"))
        .select_related("team")
        .order_by("team__name", "title")
    )
    digest = Digest(
        user=None, email=email.strip().lower(), zone=zone_of(""), now=now, plans=list(plans)
    )
    _fill_sections(digest, shared)
    return digest


def _in_plans(queryset, plans, path: str = "milestone__plan"):
    return queryset if plans is None else queryset.filter(**{f"{path}__in": plans.values("pk")})


def _awaiting_signoffs(user, plans) -> list[Line]:
    roles = _in_plans(signoffs.awaiting_roles(user), plans).select_related(
        "milestone__team", "milestone__plan"
    )
    lines = []
    for role in roles.order_by("milestone__target_date", "milestone__key", "position"):
        m = role.milestone
        why = "the scope changed since your decision" if role.latest_scope else "awaiting you"
        lines.append(
            Line(
                label=f"{m.key} {m.title}",
                url=site_url("my_signoffs"),
                plan=_plan_label(m.plan),
                detail=f"your sign-off as {role.name}: {why}; target {_day(m.target_date)}",
            )
        )
    return lines


def _updates_owed(user, plans, now) -> list[Line]:
    mine = Milestone.objects.filter(owner=user, team__memberships__user=user).exclude(
        plan__status=PlanStatus.ARCHIVED
    )
    lines = []
    for item in overdue_updates(_in_plans(mine, plans, "plan"), now):
        m = item.milestone
        days = (now - item.since).days
        since = (
            f"last status update {days} days ago"
            if item.last_update_id
            else f"started {days} days ago with no status update yet"
        )
        lines.append(
            Line(
                label=f"{m.key} {m.title}",
                url=milestone_url(m, "#updates"),
                plan=_plan_label(m.plan),
                detail=(
                    f"{since}; the team asks for one every {m.team.status_update_cadence_days} days"
                ),
            )
        )
    return lines


# The sections that depend only on the plans and the date, not on who reads them.
PLAN_SECTIONS = (
    "off_track",
    "at_risk",
    "due_soon",
    "completed",
    "slipped",
    "improved",
    "new_blockers",
    "new_risks",
)


def _fill_sections(digest: Digest, shared: dict | None = None) -> None:
    plan_ids = [plan.pk for plan in digest.plans]
    if not plan_ids:
        return
    today = digest.local_now.date()
    memo_key = (tuple(sorted(plan_ids)), today, digest.now)
    if shared is not None and memo_key in shared:
        for name, lines in shared[memo_key].items():
            setattr(digest, name, lines)
        return
    _query_sections(digest, plan_ids, today)
    if shared is not None:
        shared[memo_key] = {name: getattr(digest, name) for name in PLAN_SECTIONS}


def _query_sections(digest: Digest, plan_ids: list, today: datetime.date) -> None:
    week_start = digest.now - WEEK
    in_week = {"created_at__gt": week_start, "created_at__lte": digest.now}
    milestones = Milestone.objects.filter(plan_id__in=plan_ids).select_related(
        "team", "plan", "owner"
    )

    for m in (
        milestones.open()
        .filter(health__in=[Health.OFF_TRACK, Health.AT_RISK])
        .order_by("target_date", "key")
    ):
        line = _milestone_line(m, f"owner {_owner(m)}; target {_day(m.target_date)}")
        line.notes = [reason.get("message", "") for reason in m.health_reasons or []]
        (digest.off_track if m.health == Health.OFF_TRACK else digest.at_risk).append(line)

    for m in milestones.due_within(DUE_SOON_DAYS, on=today).order_by("target_date", "key"):
        days = (m.target_date - today).days
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        detail = f"due {_day(m.target_date)} ({when}); {m.get_health_display().lower()}"
        digest.due_soon.append(_milestone_line(m, f"{detail}; owner {_owner(m)}"))

    completed = milestones.filter(
        status=MilestoneStatus.COMPLETED,
        completed_on__gt=today - WEEK,
        completed_on__lte=today,
    ).order_by("completed_on", "key")
    for m in completed:
        digest.completed.append(_milestone_line(m, f"completed {_day(m.completed_on)}"))

    shifts: dict[int, list] = {}
    for shift in (
        ForecastShift.objects.filter(milestone__plan_id__in=plan_ids, **in_week)
        .select_related("milestone__team", "milestone__plan")
        .order_by("created_at", "pk")
    ):
        shifts.setdefault(shift.milestone_id, []).append(shift)
    for history in shifts.values():
        first, last = history[0], history[-1]
        if not (first.previous_finish and last.new_finish):
            continue
        moved = (last.new_finish - first.previous_finish).days
        if moved > 0:
            detail = (
                f"forecast finish {moved} day{'s' if moved != 1 else ''} later, now "
                f"{_day(last.new_finish)}"
            )
            line = _milestone_line(last.milestone, detail)
            line.notes = [last.cause] if last.cause else []
            digest.slipped.append(line)

    better = Q(from_health=Health.OFF_TRACK, to_health__in=[Health.AT_RISK, Health.ON_TRACK]) | Q(
        from_health=Health.AT_RISK, to_health=Health.ON_TRACK
    )
    improved = {}
    for transition in (
        HealthTransition.objects.filter(milestone__plan_id__in=plan_ids, **in_week)
        .filter(better)
        .select_related("milestone__team", "milestone__plan")
        .order_by("created_at", "pk")
    ):
        improved[transition.milestone_id] = transition  # the latest improvement wins
    for transition in improved.values():
        m = transition.milestone
        detail = (
            f"{transition.get_from_health_display().lower()} → "
            f"{transition.get_to_health_display().lower()}"
        )
        if m.health != transition.to_health:
            detail += f" (now {m.get_health_display().lower()})"
        digest.improved.append(_milestone_line(m, detail))

    for blocker in (
        Blocker.objects.filter(milestone__plan_id__in=plan_ids, **in_week)
        .select_related("milestone__team", "milestone__plan", "owner")
        .order_by("created_at", "pk")
    ):
        m = blocker.milestone
        parts = [f"on {m.key} {m.title}", f"{blocker.get_priority_display().lower()} priority"]
        if blocker.resolved_on:
            parts.append(f"already resolved {_day(blocker.resolved_on)}")
        elif blocker.target_resolution_date:
            parts.append(f"to be resolved by {_day(blocker.target_resolution_date)}")
        digest.new_blockers.append(
            Line(
                label=blocker.title,
                url=milestone_url(m, f"#blocker-{blocker.pk}"),
                plan=_plan_label(m.plan),
                detail="; ".join(parts),
            )
        )

    for risk in (
        Risk.objects.filter(milestone__plan_id__in=plan_ids, **in_week)
        .select_related("milestone__team", "milestone__plan")
        .order_by("-score", "created_at", "pk")
    ):
        m = risk.milestone
        mitigation = "mitigation planned" if risk.mitigation else "no mitigation yet"
        digest.new_risks.append(
            Line(
                label=risk.title,
                url=milestone_url(m, f"#risk-{risk.pk}"),
                plan=_plan_label(m.plan),
                detail=(
                    f"on {m.key} {m.title}; score {risk.score} (likelihood "
                    f"{risk.get_likelihood_display().lower()}, impact "
                    f"{risk.get_impact_display().lower()}); {mitigation}"
                ),
            )
        )


def _milestone_line(m: Milestone, detail: str) -> Line:
    return Line(
        label=f"{m.key} {m.title}", url=milestone_url(m), plan=_plan_label(m.plan), detail=detail
    )


def _plan_label(plan: Plan) -> str:
    return f"{plan.key} {plan.title}"


def _owner(m: Milestone) -> str:
    return m.owner.display_name if m.owner else "nobody"


def _day(value) -> str:
    return f"{value:%-d %b %Y}" if value else "not set"


# --- Rendering ------------------------------------------------------------------------------


def digest_subject(digest: Digest) -> str:
    if digest.is_empty:
        return "Milepost weekly: nothing needs you this week"
    parts = [
        SUBJECT_WORDS[slug][count != 1].format(n=count)
        for slug, count in digest.counts.items()
        if count
    ]
    return "Milepost weekly: " + ", ".join(parts[:SUBJECT_PARTS])


def render_digest(digest: Digest) -> Rendered:
    if digest.user is not None:
        recipient = Recipient(user=digest.user, why="you follow these plans on Milepost")
    else:
        recipient = Recipient(
            email=digest.email, why="you are listed as a stakeholder of these plans"
        )
    context = {
        "digest": digest,
        "recipient": recipient,
        "sections": [section for section in digest.sections if section.lines],
        "plans": [{"label": _plan_label(plan), "url": plan_url(plan)} for plan in digest.plans],
        "week_ending": digest.local_now.date(),
        "time_zone": str(digest.zone),
        "home_url": site_url("home"),
    }
    return render_email(
        "digest",
        context,
        subject=digest_subject(digest),
        recipient_key=digest.recipient_key,
        kind=MessageKind.DIGEST,
        has_account=digest.user is not None,
    )


# --- Who is due, and queueing ---------------------------------------------------------------


@dataclass(frozen=True)
class DueRecipient:
    week: str
    user: User | None = None
    email: str = ""
    when_empty: str = EmptyDigest.SHORT

    @property
    def key(self) -> str:
        return recipient_key_for(self.user, self.email)

    @property
    def address(self) -> str:
        return self.user.email if self.user is not None else self.email


@dataclass(frozen=True)
class DigestRecord:
    """What a run did (or, in a dry run, would do) for one recipient."""

    recipient: str
    subject: str
    counts: dict
    queued: bool
    note: str = ""


def scheduled_at(local_now: datetime.datetime, weekday: int, hour: int) -> datetime.datetime:
    """This ISO week's chosen weekday and hour, in the time zone of `local_now`."""
    monday = local_now.date() - datetime.timedelta(days=local_now.weekday())
    day = monday + datetime.timedelta(days=weekday)
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=local_now.tzinfo)


def _week_if_due(now, zone, weekday: int, hour: int) -> str | None:
    local_now = now.astimezone(zone)
    if local_now < scheduled_at(local_now, weekday, hour):
        return None
    return iso_week(local_now.date())


def due_recipients(now=None) -> list[DueRecipient]:
    """Everyone whose digest for this week is due and not yet queued (four queries)."""
    now = now or timezone.now()
    users = (
        User.objects.filter(is_active=True, pk__in=Membership.objects.values("user_id"))
        .exclude(email="")
        .select_related("notification_preferences")
        .order_by("pk")
    )
    due, user_addresses = [], set()
    for user in users:
        user_addresses.add(user.email.strip().lower())
        preferences = NotificationPreferences.for_user(user)
        if not preferences.digest_enabled:
            continue
        week = _week_if_due(
            now, zone_of(user.time_zone), preferences.digest_weekday, preferences.digest_hour
        )
        if week:
            due.append(DueRecipient(week, user=user, when_empty=preferences.digest_when_empty))

    defaults = NotificationPreferences()
    site_week = _week_if_due(now, zone_of(""), defaults.digest_weekday, defaults.digest_hour)
    if site_week:
        addresses = Stakeholder.objects.filter(user__isnull=True, gets_digest=True).exclude(
            Q(email="") | Q(plan__status=PlanStatus.ARCHIVED)
        )
        opted_out = {
            email.lower()
            for email in EmailOptOut.objects.filter(kind=MessageKind.DIGEST).values_list(
                "email", flat=True
            )
        }
        plain = {email.strip().lower() for email in addresses.values_list("email", flat=True)}
        # An address that belongs to an account is that user's, with their own preferences.
        for email in sorted(plain - opted_out - user_addresses):
            due.append(DueRecipient(site_week, email=email))

    weeks = {recipient.week for recipient in due}
    queued = set(
        Message.objects.filter(kind=MessageKind.DIGEST, dedupe_key__in=weeks).values_list(
            "recipient_key", "dedupe_key"
        )
    )
    return [r for r in due if (r.key, r.week) not in queued]


def queue_due_digests(*, now=None, user=None, dry_run=False) -> list[DigestRecord]:
    """Queue this week's digest for everyone due (or for `user` alone, whatever the hour);
    each recipient in a transaction of their own. `dry_run` builds them and writes nothing."""
    now = now or timezone.now()
    if user is None:
        recipients = due_recipients(now)
    else:
        forced = _forced(user, now)
        if isinstance(forced, DigestRecord):
            return [forced]
        recipients = [forced]
    shared = {}  # plan sections already built in this run (see build_digest)
    return [_queue_one(r, now, dry_run=dry_run, shared=shared) for r in recipients]


def _forced(user, now) -> DueRecipient | DigestRecord:
    preferences = NotificationPreferences.for_user(user)
    week = iso_week(now.astimezone(zone_of(user.time_zone)).date())
    refusal = ""
    if not user.email:
        refusal = "no e-mail address"
    elif not preferences.digest_enabled:
        refusal = "the weekly digest is turned off in their preferences"
    elif not Membership.objects.filter(user=user).exists():
        refusal = "not a member of any team"
    elif Message.objects.filter(
        kind=MessageKind.DIGEST, recipient_key=recipient_key_for(user), dedupe_key=week
    ).exists():
        refusal = f"already queued for {week}"
    if refusal:
        return DigestRecord(user.email or user.username, "", {}, queued=False, note=refusal)
    return DueRecipient(week, user=user, when_empty=preferences.digest_when_empty)


def _queue_one(recipient: DueRecipient, now, *, dry_run: bool, shared: dict) -> DigestRecord:
    with transaction.atomic():
        if recipient.user is not None:
            digest = build_digest(recipient.user, now=now, shared=shared)
        else:
            digest = build_stakeholder_digest(recipient.email, now=now, shared=shared)
        if digest.is_empty and recipient.when_empty == EmptyDigest.SKIP:
            note = "nothing to report; they chose to get nothing then"
            if not dry_run:
                outbox.queue_message(
                    kind=MessageKind.DIGEST,
                    dedupe_key=recipient.week,
                    subject=f"Weekly digest {recipient.week} not sent: {note}",
                    text=f"Nothing to report in {recipient.week}; {note}.",
                    user=recipient.user,
                    email=recipient.email,
                    send=False,
                )
            return DigestRecord(recipient.address, "", digest.counts, queued=False, note=note)
        rendered = render_digest(digest)
        if dry_run:
            return DigestRecord(recipient.address, rendered.subject, digest.counts, queued=False)
        message = outbox.queue_message(
            kind=MessageKind.DIGEST,
            dedupe_key=recipient.week,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            user=recipient.user,
            email=recipient.email,
            team=None,
            headers=rendered.headers,
        )
    note = "" if message else f"already queued for {recipient.week}"
    return DigestRecord(recipient.address, rendered.subject, digest.counts, bool(message), note)
