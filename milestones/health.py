"""Health: computed from the facts for a whole team at once, with reasons a person understands.

`evaluate_team(team_id)` loads the team's milestones, dependencies, risks, blockers and latest
status updates in a fixed number of queries, runs the schedule pass (milestones/schedule.py),
applies the rules below, and writes back only what changed. It holds the team row locked, so
two evaluations of one team run one after the other and a health change is recorded as exactly
one HealthTransition.

Rules (thresholds are fields on Team, defaults in brackets):
- off track: `overdue` (target date passed, not completed); `forecast_late` (forecast finish more
  than health_slip_days [5] past the target).
- at risk: `behind_schedule` (progress trails elapsed time by more than health_behind_points
  [20] points); `pushed_by_predecessor` (a predecessor's forecast finish + lag moves this one's
  forecast finish past its target); `unmitigated_risk` (an open risk scoring at least
  health_risk_score [6] with no mitigation); `blocker_overdue` (an unresolved blocker past its
  target resolution date); `signoffs_missing` (within health_signoff_days [7] of the target,
  a milestone whose sign-off roles have holders lacks a current approval for some role);
  `stale_update` (in progress and no status update for
  more than health_stale_update_days [10] days); `reported_health` (the latest status update
  reports a worse health; its own level counts); `low_confidence` (latest update's confidence
  below health_min_confidence [50]).
- completed and cancelled milestones are on track with no reasons.
"""

import datetime
import json
import logging
from dataclasses import asdict, dataclass, field

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.models import Team
from milestones import schedule, signoffs
from milestones.models import (
    CLOSED_STATUSES,
    HEALTH_SEVERITY,
    Blocker,
    Dependency,
    ForecastShift,
    Health,
    HealthTransition,
    Milestone,
    MilestoneStatus,
    Plan,
    Risk,
    RiskStatus,
    StatusUpdate,
    progress_percent,
    today,
)
from notifications import events

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    code: str
    health: str
    message: str
    link: str  # a fragment on the milestone page, e.g. "#risk-12"


def _date(value: datetime.date) -> str:
    return f"{value:%-d %b %Y}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass
class Facts:
    """Everything the rules look at for one milestone."""

    milestone: dict
    forecast: schedule.Forecast
    predecessor_keys: dict
    risks: list
    blockers: list
    latest_update: dict | None
    signoffs_missing: list = field(default_factory=list)


def reasons_for(facts: Facts, team: Team, on: datetime.date) -> list[Reason]:
    m, forecast = facts.milestone, facts.forecast
    if m["status"] in CLOSED_STATUSES:
        return []
    reasons = []
    target, start = m["target_date"], m["start_date"]

    if target and target < on:
        late = (on - target).days
        reasons.append(
            Reason(
                "overdue",
                Health.OFF_TRACK,
                f"The target date {_date(target)} passed {_plural(late, 'day')} ago and the "
                "milestone is not completed.",
                "#dates",
            )
        )
    if target and forecast.finish and (forecast.finish - target).days > team.health_slip_days:
        late = (forecast.finish - target).days
        reasons.append(
            Reason(
                "forecast_late",
                Health.OFF_TRACK,
                f"The forecast finish {_date(forecast.finish)} is {_plural(late, 'day')} after the "
                f"target {_date(target)}.",
                "#forecast",
            )
        )

    if m["status"] == MilestoneStatus.IN_PROGRESS and start and target and target > start:
        elapsed = min(max((on - start).days, 0), (target - start).days)
        expected = 100 * elapsed // (target - start).days
        if expected - m["progress"] > team.health_behind_points:
            reasons.append(
                Reason(
                    "behind_schedule",
                    Health.AT_RISK,
                    f"Progress is {m['progress']}% with {expected}% of the time from start to "
                    "target gone.",
                    "#progress",
                )
            )

    pusher = forecast.pushed_by
    if pusher and target and forecast.finish and forecast.finish > target:
        reasons.append(
            Reason(
                "pushed_by_predecessor",
                Health.AT_RISK,
                f"{facts.predecessor_keys[pusher]} is forecast to finish late enough to push this "
                f"milestone's finish to {_date(forecast.finish)}, after its target "
                f"{_date(target)}.",
                "#dependencies",
            )
        )

    for risk in facts.risks:
        reasons.append(
            Reason(
                "unmitigated_risk",
                Health.AT_RISK,
                f"Risk “{risk['title']}” scores {risk['score']} of 9 and has no mitigation.",
                f"#risk-{risk['id']}",
            )
        )
    for blocker in facts.blockers:
        reasons.append(
            Reason(
                "blocker_overdue",
                Health.AT_RISK,
                f"Blocker “{blocker['title']}” was due to be resolved by "
                f"{_date(blocker['target_resolution_date'])}.",
                f"#blocker-{blocker['id']}",
            )
        )

    if facts.signoffs_missing and target and (target - on).days <= team.health_signoff_days:
        roles = ", ".join(facts.signoffs_missing)
        reasons.append(
            Reason(
                "signoffs_missing",
                Health.AT_RISK,
                f"The target {_date(target)} is close and sign-off is still missing from: {roles}.",
                "#signoffs",
            )
        )

    update = facts.latest_update
    if m["status"] == MilestoneStatus.IN_PROGRESS:
        last = update["created_at"] if update else None
        since = timezone.localdate(last) if last else start
        if since and (on - since).days > team.health_stale_update_days:
            what = "the last status update" if last else "the start, with no status update yet"
            reasons.append(
                Reason(
                    "stale_update",
                    Health.AT_RISK,
                    f"{_plural((on - since).days, 'day')} since {what}.",
                    "#updates",
                )
            )
    if update:
        if update["health"] != Health.ON_TRACK:
            label = Health(update["health"]).label.lower()
            reasons.append(
                Reason(
                    "reported_health",
                    update["health"],
                    f"The latest status update reports the milestone {label}.",
                    f"#update-{update['id']}",
                )
            )
        if update["confidence"] < team.health_min_confidence:
            reasons.append(
                Reason(
                    "low_confidence",
                    Health.AT_RISK,
                    f"The latest status update gives a confidence of {update['confidence']}%.",
                    f"#update-{update['id']}",
                )
            )
    return reasons


def overall(reasons: list[Reason]) -> str:
    worst = max((HEALTH_SEVERITY[reason.health] for reason in reasons), default=0)
    return next(health for health, rank in HEALTH_SEVERITY.items() if rank == worst)


def _load(team_id: int):
    latest = StatusUpdate.objects.filter(milestone=OuterRef("pk")).order_by("-created_at", "-pk")
    milestones = list(
        Milestone.objects.filter(team_id=team_id)
        .with_progress()
        .annotate(latest_update_id=Subquery(latest.values("pk")[:1]))
        .values(
            "id",
            "key",
            "plan_id",
            "status",
            "start_date",
            "target_date",
            "completed_on",
            "health",
            "health_reasons",
            "forecast_start",
            "forecast_finish",
            "slack_days",
            "is_critical",
            "must_total",
            "must_met",
            "acceptance_total",
            "acceptance_met",
            "deliverables_total",
            "deliverables_accepted",
            "latest_update_id",
        )
    )
    links = [
        schedule.Link(*row)
        for row in Dependency.objects.filter(team_id=team_id).values_list(
            "predecessor_id", "successor_id", "lag_days"
        )
    ]
    deadlines = dict(Plan.objects.filter(team_id=team_id).values_list("pk", "target_date"))
    return milestones, links, deadlines


def _progress(row: dict, update: dict | None) -> int:
    """Milestone progress; with nothing to check, the latest status update's percent."""
    percent = progress_percent(row["status"], row)
    if percent is not None:
        return percent
    return update["percent_complete"] if update else 0


def _group(rows, key="milestone_id"):
    grouped = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


UPDATE_SQL = (
    f"UPDATE {Milestone._meta.db_table} SET health = %s, health_reasons = %s, "
    "health_evaluated_at = %s, forecast_start = %s, forecast_finish = %s, slack_days = %s, "
    "is_critical = %s WHERE id = %s"
)


@dataclass
class Outcome:
    evaluated: int
    changed: int
    transitions: list


@transaction.atomic
def evaluate_team(team_id: int, *, on: datetime.date | None = None) -> Outcome:
    """Recompute forecast and health for every milestone of a team; store what changed."""
    on = on or today()
    now = timezone.now()
    team = Team.objects.select_for_update().get(pk=team_id)
    milestones, links, deadlines = _load(team_id)
    update_ids = [row["latest_update_id"] for row in milestones if row["latest_update_id"]]
    updates = {
        row["id"]: row
        for row in StatusUpdate.objects.filter(pk__in=update_ids).values(
            "id", "milestone_id", "health", "confidence", "percent_complete", "created_at"
        )
    }
    risks = _group(
        Risk.objects.filter(
            milestone__team_id=team_id,
            status__in=[RiskStatus.OPEN, RiskStatus.MITIGATING],
            score__gte=team.health_risk_score,
            mitigation="",
        ).values("id", "milestone_id", "title", "score")
    )
    blockers = _group(
        Blocker.objects.filter(
            milestone__team_id=team_id,
            resolved_on__isnull=True,
            target_resolution_date__lt=on,
        ).values("id", "milestone_id", "title", "target_resolution_date")
    )

    missing_signoffs = signoffs.missing_by_milestone(team_id)
    keys = {row["id"]: row["key"] for row in milestones}
    for row in milestones:
        row["progress"] = _progress(row, updates.get(row["latest_update_id"]))
    tasks = {
        row["id"]: schedule.Task(
            id=row["id"],
            plan_id=row["plan_id"],
            status=row["status"],
            start_date=row["start_date"],
            target_date=row["target_date"],
            completed_on=row["completed_on"],
            progress=row["progress"],
        )
        for row in milestones
    }
    forecasts = schedule.compute(tasks, links, deadlines, on)

    changed_rows, transitions, shifts = [], [], []
    for row in milestones:
        forecast = forecasts[row["id"]]
        facts = Facts(
            milestone=row,
            forecast=forecast,
            predecessor_keys=keys,
            risks=risks.get(row["id"], []),
            blockers=blockers.get(row["id"], []),
            latest_update=updates.get(row["latest_update_id"]),
            signoffs_missing=missing_signoffs.get(row["id"], []),
        )
        reasons = [asdict(reason) for reason in reasons_for(facts, team, on)]
        health = overall([Reason(**reason) for reason in reasons])
        new = (
            health,
            reasons,
            forecast.start,
            forecast.finish,
            forecast.slack_days,
            forecast.critical,
        )
        old = (
            row["health"],
            row["health_reasons"],
            row["forecast_start"],
            row["forecast_finish"],
            row["slack_days"],
            row["is_critical"],
        )
        if new == old:
            continue
        changed_rows.append(_sql_row(row["id"], new, now))
        if health != row["health"]:
            transitions.append(
                HealthTransition(
                    milestone_id=row["id"],
                    from_health=row["health"],
                    to_health=health,
                    reasons=reasons,
                    created_at=now,
                )
            )
        if forecast.finish != row["forecast_finish"] and row["forecast_finish"] is not None:
            shifts.append(
                ForecastShift(
                    milestone_id=row["id"],
                    previous_finish=row["forecast_finish"],
                    new_finish=forecast.finish,
                    cause=_shift_cause(forecast, keys),
                    created_at=now,
                )
            )

    if changed_rows:
        with connection.cursor() as cursor:
            cursor.executemany(UPDATE_SQL, changed_rows)
    HealthTransition.objects.bulk_create(transitions)
    ForecastShift.objects.bulk_create(shifts)
    events.health_changed(transitions)
    return Outcome(evaluated=len(milestones), changed=len(changed_rows), transitions=transitions)


def _sql_row(milestone_id, new, now):
    health, reasons, start, finish, slack, critical = new
    return (health, json.dumps(reasons), now, start, finish, slack, critical, milestone_id)


def _shift_cause(forecast: schedule.Forecast, keys: dict) -> str:
    if forecast.pushed_by:
        return f"{keys[forecast.pushed_by]} is forecast to finish later"
    return "progress, dates or status changed"


def request_evaluation(team_id: int) -> None:
    """Re-evaluate the team once the current transaction commits (on the worker if one runs).

    Asked at most once per team per transaction, however many changes it makes: the check
    looks at the callbacks this transaction has queued, which Django drops on rollback.
    """
    pending = transaction.get_connection().run_on_commit
    if any(getattr(callback, "health_team_id", None) == team_id for _, callback, _ in pending):
        return

    def enqueue():
        _enqueue(team_id)

    enqueue.health_team_id = team_id
    transaction.on_commit(enqueue)


def _enqueue(team_id: int) -> None:
    from milestones.tasks import evaluate_team_health

    try:
        evaluate_team_health.delay(team_id)
    except Exception:  # the broker is down: the hourly sweep catches up
        logger.warning("Could not enqueue a health evaluation for team %s", team_id, exc_info=True)
