"""Event e-mails: at-risk alerts, sign-off requests and decisions, completion notices and
status update reminders. `notifications/events.py` calls these inside the domain's
transactions; every message goes through `outbox.queue_message`, so a rolled-back change
mails nobody and a repeated event mails nobody twice (each kind has its dedupe key).

Who may receive anything, for every kind: a user who is active, has an address, is still a
member of the milestone's team and has not turned the kind off in their preferences; or a
plain stakeholder address that has not opted out of the kind. The same person reached by two
routes (owner and stakeholder) gets one message.

The rendering helpers at the top (`render_email`, `Rendered`, links) are shared with the
weekly digest (notifications/digest.py).
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, zone_of
from milestones.models import (
    Health,
    HealthTransition,
    Milestone,
    PlanStatus,
    SignoffDecision,
    SignoffRequest,
    SignoffRequestReason,
    Stakeholder,
)
from milestones.updates_owed import OverdueUpdate, overdue_updates
from notifications import outbox, unsubscribe
from notifications.models import (
    EmailOptOut,
    Message,
    MessageKind,
    NotificationPreferences,
    recipient_key_for,
)
from notifications.preferences import PREFERENCE_FIELD_FOR_KIND

# What the unsubscribe link in each kind of message stops, in the footer's words.
STOP_WORDS = {
    MessageKind.DIGEST: "Stop the weekly digest",
    MessageKind.AT_RISK: "Stop at-risk alerts",
    MessageKind.SIGNOFF_REQUEST: "Stop sign-off request e-mails",
    MessageKind.SIGNOFF_DECISION: "Stop e-mails about decisions on your milestones",
    MessageKind.UPDATE_REMINDER: "Stop status update reminders",
    MessageKind.COMPLETION: "Stop completion notices",
}


# --- Rendering (shared with the digest) ----------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    headers: dict


def site_url(viewname: str, *, fragment: str = "", **kwargs) -> str:
    """An absolute link into the app, for e-mails (SITE_URL + the reversed path)."""
    return f"{settings.SITE_URL}{reverse(viewname, kwargs=kwargs or None)}{fragment}"


def milestone_url(milestone: Milestone, fragment: str = "") -> str:
    return site_url("milestone", team=milestone.team.slug, key=milestone.key, fragment=fragment)


def plan_url(plan) -> str:
    return site_url("plan", team=plan.team.slug, key=plan.key)


def _tidy_text(text: str) -> str:
    """Template tags leave blank lines and trailing spaces; a plain-text mail should not."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def render_email(
    template: str, context: dict, *, subject: str, recipient_key: str, kind: str, has_account: bool
) -> Rendered:
    """Subject, plain-text and HTML parts of one message, with the footer every message has
    (why you get it, your preferences when you have an account, a one-click unsubscribe link)
    and the List-Unsubscribe headers for `kind`."""
    context = {
        **context,
        "subject": subject,
        "site_url": settings.SITE_URL,
        "preferences_url": site_url("notifications:preferences") if has_account else "",
        "unsubscribe_url": unsubscribe.unsubscribe_url(recipient_key, kind),
        "stop_words": STOP_WORDS[kind],
    }
    return Rendered(
        subject=" ".join(subject.split()),
        text=_tidy_text(render_to_string(f"notifications/email/{template}.txt", context)),
        html=render_to_string(f"notifications/email/{template}.html", context),
        headers=unsubscribe.list_unsubscribe_headers(recipient_key, kind),
    )


# --- Recipients -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """A user, or a plain stakeholder address; `why` ends up in the footer."""

    user: object = None
    email: str = ""
    name: str = ""
    why: str = ""

    @property
    def key(self) -> str:
        return recipient_key_for(self.user, self.email)

    @property
    def address(self) -> str:
        return (self.user.email if self.user is not None else self.email).strip()

    @property
    def greeting_name(self) -> str:
        return self.user.display_name if self.user is not None else self.name


def stakeholder_recipient(stakeholder: Stakeholder, why: str) -> Recipient | None:
    """A member stakeholder by their account, anyone else by the row's address."""
    if stakeholder.user_id:
        return Recipient(user=stakeholder.user, why=why)
    if stakeholder.email:
        return Recipient(email=stakeholder.email, name=stakeholder.name, why=why)
    return None


def preferences_by_user(user_ids) -> dict[int, NotificationPreferences]:
    """Every user's saved preferences, or the defaults (unsaved) for those who never chose."""
    saved = {p.user_id: p for p in NotificationPreferences.objects.filter(user_id__in=user_ids)}
    return {pk: saved.get(pk) or NotificationPreferences(user_id=pk) for pk in user_ids}


def opted_out(addresses, kind: str) -> set[str]:
    """The lower-cased plain addresses among `addresses` that unsubscribed from `kind`."""
    lowered = {address.strip().lower() for address in addresses}
    if not lowered:
        return set()
    rows = EmailOptOut.objects.annotate(lower=Lower("email")).filter(lower__in=lowered, kind=kind)
    return set(rows.values_list("lower", flat=True))


def screen(batches: dict, kind: str) -> dict:
    """Keep, in each batch, the recipients who may get `kind` (see the module docstring).

    `batches` maps any key to (team id, [Recipient, …]); the answer maps the same keys to the
    recipients kept, one per address, in the order given. Three queries for all batches.
    """
    user_ids = {r.user.pk for _, group in batches.values() for r in group if r.user is not None}
    addresses = {r.email for _, group in batches.values() for r in group if r.user is None}
    team_ids = {team_id for team_id, _ in batches.values()}
    members = set()
    if user_ids:
        members = set(
            Membership.objects.filter(team_id__in=team_ids, user_id__in=user_ids).values_list(
                "team_id", "user_id"
            )
        )
    preferences = preferences_by_user(user_ids) if user_ids else {}
    unsubscribed = opted_out(addresses, kind)
    wanted = PREFERENCE_FIELD_FOR_KIND[kind]
    kept = {}
    for key, (team_id, group) in batches.items():
        seen, chosen = set(), []
        for recipient in group:
            address = recipient.address.lower()
            if not address or address in seen:
                continue
            user = recipient.user
            if user is not None:
                if not (user.is_active and (team_id, user.pk) in members):
                    continue
                if not getattr(preferences[user.pk], wanted):
                    continue
            elif address in unsubscribed:
                continue
            seen.add(address)
            chosen.append(recipient)
        kept[key] = chosen
    return kept


def _queue(kind, recipient: Recipient, dedupe_key: str, team, rendered: Rendered):
    return outbox.queue_message(
        kind=kind,
        dedupe_key=dedupe_key,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        user=recipient.user,
        email=recipient.email,
        team=team,
        headers=rendered.headers,
    )


def _send(kind, template: str, subject: str, context: dict, recipient, dedupe_key, team) -> bool:
    rendered = render_email(
        template,
        {**context, "recipient": recipient},
        subject=subject,
        recipient_key=recipient.key,
        kind=kind,
        has_account=recipient.user is not None,
    )
    return _queue(kind, recipient, dedupe_key, team, rendered) is not None


# --- At-risk alerts -------------------------------------------------------------------------


def queue_health_alerts(transitions) -> int:
    """One alert per recipient for every transition that made health worse; returns how many
    were queued. Improvements are not alerted (the weekly digest reports them)."""
    worse = [t for t in transitions if t.is_worse]
    if not worse:
        return 0
    milestones = Milestone.objects.select_related("team", "plan__team", "plan__owner", "owner")
    milestones = milestones.in_bulk({t.milestone_id for t in worse})
    stakeholders: dict[int, list] = {}
    for row in Stakeholder.objects.filter(
        plan_id__in={m.plan_id for m in milestones.values()}, gets_alerts=True
    ).select_related("user"):
        stakeholders.setdefault(row.plan_id, []).append(row)

    batches = {}
    for transition in worse:
        milestone = milestones.get(transition.milestone_id)
        if milestone is None:
            continue
        batches[transition.pk] = (milestone.team_id, _alert_candidates(milestone, stakeholders))
    audiences = screen(batches, MessageKind.AT_RISK)

    queued = 0
    for transition in worse:
        milestone = milestones.get(transition.milestone_id)
        for recipient in audiences.get(transition.pk, []):
            queued += _send(
                MessageKind.AT_RISK,
                "health_alert",
                f"{milestone.key} is now {_health_words(transition.to_health)}: {milestone.title}",
                _alert_context(transition, milestone),
                recipient,
                f"transition:{transition.pk}",
                milestone.team,
            )
    return queued


def _alert_candidates(milestone: Milestone, stakeholders: dict) -> list[Recipient]:
    candidates = []
    if milestone.owner_id:
        candidates.append(Recipient(user=milestone.owner, why="you own this milestone"))
    if milestone.plan.owner_id:
        why = f"you own the plan {milestone.plan.key}"
        candidates.append(Recipient(user=milestone.plan.owner, why=why))
    why = f"you are a stakeholder of the plan {milestone.plan.key} who asked for at-risk alerts"
    for stakeholder in stakeholders.get(milestone.plan_id, []):
        recipient = stakeholder_recipient(stakeholder, why)
        if recipient:
            candidates.append(recipient)
    return candidates


def _health_words(health: str) -> str:
    return Health(health).label.lower()


def _alert_context(transition: HealthTransition, milestone: Milestone) -> dict:
    reasons = [
        {
            "health": _health_words(reason.get("health", transition.to_health)),
            "message": reason.get("message", ""),
            "url": milestone_url(milestone, reason.get("link", "")),
        }
        for reason in transition.reasons or []
    ]
    return {
        "milestone": milestone,
        "plan": milestone.plan,
        "from_health": _health_words(transition.from_health),
        "to_health": _health_words(transition.to_health),
        "off_track": transition.to_health == Health.OFF_TRACK,
        "reasons": reasons,
        "milestone_url": milestone_url(milestone),
    }


# --- Sign-off requests and decisions --------------------------------------------------------


def queue_signoff_request(request: SignoffRequest) -> bool:
    """Ask the holder for a decision on the role (an outbox message, sent once per request)."""
    request = SignoffRequest.objects.select_related(
        "holder", "role__milestone__team", "role__milestone__plan__team"
    ).get(pk=request.pk)
    milestone = request.role.milestone
    stale = request.reason == SignoffRequestReason.STALE
    why = f"you hold the {request.role.name} sign-off of this milestone"
    candidates = [Recipient(user=request.holder, why=why)]
    audience = screen({0: (milestone.team_id, candidates)}, MessageKind.SIGNOFF_REQUEST)[0]
    if not audience:
        return False
    verb = "again" if stale else "needed"
    context = {
        "milestone": milestone,
        "plan": milestone.plan,
        "role_name": request.role.name,
        "stale": stale,
        "my_signoffs_url": site_url("my_signoffs"),
        "milestone_url": milestone_url(milestone, "#signoffs"),
    }
    return _send(
        MessageKind.SIGNOFF_REQUEST,
        "signoff_request",
        f"Sign-off {verb}: {request.role.name} for {milestone.key} {milestone.title}",
        context,
        audience[0],
        f"signoff-request:{request.pk}",
        milestone.team,
    )


def queue_signoff_decision(decision: SignoffDecision) -> bool:
    """Tell the milestone's owner what a role decided, unless the owner decided it."""
    decision = SignoffDecision.objects.select_related(
        "decided_by", "milestone__owner", "milestone__team", "milestone__plan__team"
    ).get(pk=decision.pk)
    milestone = decision.milestone
    if not milestone.owner_id or milestone.owner_id == decision.decided_by_id:
        return False
    candidates = [Recipient(user=milestone.owner, why="you own this milestone")]
    audience = screen({0: (milestone.team_id, candidates)}, MessageKind.SIGNOFF_DECISION)[0]
    if not audience:
        return False
    outcome = decision.get_outcome_display()
    if decision.with_exceptions:
        outcome = f"{outcome} with exceptions"
    who = decision.decided_by.display_name
    context = {
        "milestone": milestone,
        "plan": milestone.plan,
        "decision": decision,
        "decider": who,
        "outcome": outcome,
        "milestone_url": milestone_url(milestone, "#signoffs"),
    }
    return _send(
        MessageKind.SIGNOFF_DECISION,
        "signoff_decision",
        f"{outcome}: {milestone.key} {milestone.title} ({decision.role_name}, {who})",
        context,
        audience[0],
        f"decision:{decision.pk}",
        milestone.team,
    )


# --- Completion notices ---------------------------------------------------------------------


def queue_completion_notices(milestone: Milestone) -> int:
    """Tell the plan's owner and its stakeholders who asked for it that a milestone is done."""
    milestone = Milestone.objects.select_related("team", "plan__team", "plan__owner", "owner").get(
        pk=milestone.pk
    )
    completed_on = milestone.completed_on or timezone.localdate()
    candidates = []
    if milestone.plan.owner_id:
        why = f"you own the plan {milestone.plan.key}"
        candidates.append(Recipient(user=milestone.plan.owner, why=why))
    why = f"you are a stakeholder of the plan {milestone.plan.key}"
    for stakeholder in milestone.plan.stakeholders.filter(gets_completion=True).select_related(
        "user"
    ):
        recipient = stakeholder_recipient(stakeholder, why)
        if recipient:
            candidates.append(recipient)
    audience = screen({0: (milestone.team_id, candidates)}, MessageKind.COMPLETION)[0]
    if not audience:
        return 0
    late = (
        (completed_on - milestone.baseline_target_date).days
        if milestone.baseline_target_date
        else None
    )
    context = {
        "milestone": milestone,
        "plan": milestone.plan,
        "completed_on": completed_on,
        "days_late": late if late and late > 0 else 0,
        "days_early": -late if late and late < 0 else 0,
        "milestone_url": milestone_url(milestone),
        "plan_url": plan_url(milestone.plan),
    }
    subject = f"Completed: {milestone.key} {milestone.title}"
    dedupe_key = f"completed:{milestone.pk}:{completed_on.isoformat()}"
    return sum(
        _send(
            MessageKind.COMPLETION,
            "completion",
            subject,
            context,
            recipient,
            dedupe_key,
            milestone.team,
        )
        for recipient in audience
    )


# --- Status update reminders ----------------------------------------------------------------


def queue_update_reminders(now=None) -> int:
    """Remind owners of in-progress milestones whose status update is overdue: once per
    cadence elapsed (at 1×, 2×, … the cadence), starting again after each new update."""
    now = now or timezone.now()
    candidates = Milestone.objects.filter(owner__isnull=False).exclude(
        plan__status=PlanStatus.ARCHIVED
    )
    overdue = {item.milestone.pk: item for item in overdue_updates(candidates, now)}
    keys = {pk: reminder_key(item) for pk, item in overdue.items()}
    already = set(
        Message.objects.filter(
            kind=MessageKind.UPDATE_REMINDER, dedupe_key__in=keys.values()
        ).values_list("recipient_key", "dedupe_key")
    )
    batches = {
        pk: (
            item.milestone.team_id,
            [Recipient(user=item.milestone.owner, why="you own this milestone")],
        )
        for pk, item in overdue.items()
        if (recipient_key_for(item.milestone.owner), keys[pk]) not in already
    }
    audiences = screen(batches, MessageKind.UPDATE_REMINDER)
    queued = 0
    for pk, audience in audiences.items():
        item = overdue[pk]
        milestone = item.milestone
        # A date, not a datetime: the template's date filter would turn it back into UTC.
        local_since = item.since.astimezone(zone_of(milestone.owner.time_zone)).date()
        context = {
            "milestone": milestone,
            "plan": milestone.plan,
            "item": item,
            "since": local_since,
            "days_since": (now - item.since).days,
            "cadence_days": milestone.team.status_update_cadence_days,
            "milestone_url": milestone_url(milestone, "#updates"),
        }
        for recipient in audience:
            queued += _send(
                MessageKind.UPDATE_REMINDER,
                "update_reminder",
                f"Status update due: {milestone.key} {milestone.title}",
                context,
                recipient,
                keys[pk],
                milestone.team,
            )
    return queued


def reminder_key(item: OverdueUpdate) -> str:
    return f"update:{item.milestone.pk}:{item.last_update_id or 'none'}:{item.periods}"
