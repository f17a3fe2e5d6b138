"""The milestone read path, built from `.values()` rows instead of model instances.

A page of 50 milestones with 300 deliverables and 600 criteria took ~150 ms through nested
DRF serializers (model instances plus per-field machinery); this builds the same JSON in a
fraction of that, in 7 queries whatever the page size: the milestones, their deliverables,
all their criteria, their risk counts and their blocker counts (grouped); plus 2 for the
sign-off state (roles with holders, decisions: `signoffs.states_for`).

On PostgreSQL, timestamps come from the database as ISO 8601 text in UTC (`UtcText`), which
is already DRF's form when TIME_ZONE is UTC: Django's loader for timestamptz is pure Python
and took ~15 ms of CPU for the ~2,500 timestamps of such a page.

Progress is counted from the deliverables and criteria already loaded for the page, the way
the milestone page counts it, not with `Milestone.objects.with_progress()`: its acceptance
counts join every criterion per milestone, which on PostgreSQL cost ~23 ms of a ~26 ms page.

`MilestoneSerializer` stays the definition of the shape (schema, writes) and
tests/test_api_queries.py asserts that both produce identical output.
"""

import datetime
import zoneinfo
from types import SimpleNamespace

from django.db.models import CharField, Count, F, Func, Q
from django.utils import timezone
from rest_framework import fields as drf_fields

from milestones import signoffs
from milestones.models import (
    UNRESOLVED_BLOCKER,
    UNRESOLVED_RISK,
    Blocker,
    Criterion,
    CriterionLevel,
    Deliverable,
    DeliverableStatus,
    Risk,
    progress_percent,
)
from specs import check as spec_check

UTC_ZONE = zoneinfo.ZoneInfo("UTC")  # what get_current_timezone() returns for TIME_ZONE=UTC
_DECIMAL = drf_fields.DecimalField(max_digits=16, decimal_places=4)
REASON_KEYS = ("code", "health", "message", "link")

MILESTONE_FIELDS = (
    "id", "team_slug", "plan_id", "plan_key", "key", "title", "summary", "owner_username",
    "owning_group", "priority", "status", "start_date", "target_date", "baseline_target_date",
    "completed_on", "estimated_effort", "position", "rollback_plan", "retro_went_well",
    "retro_went_badly", "retro_actions", "retro_learnings", "health", "health_reasons",
    "health_evaluated_at_text", "forecast_start", "forecast_finish", "slack_days", "is_critical",
    "version", "created_at_text", "updated_at_text", "scope_hash",
)  # fmt: skip
DELIVERABLE_FIELDS = (
    "id", "milestone_id", "title", "description", "owner_username", "owner_label", "status",
    "target_date", "position", "version", "created_at_text", "updated_at_text",
)  # fmt: skip
CRITERION_FIELDS = (
    "id", "plan_id", "milestone_id", "deliverable_id", "text", "description", "category",
    "level", "target", "comparator", "unit", "actual", "checked", "checked_by_username",
    "checked_at_text", "met", "position", "version", "created_at_text", "updated_at_text",
)  # fmt: skip


def _date(value):
    return value.isoformat() if value is not None else None


def _moment(value, tz):
    """A `UtcText` value as DRF's DateTimeField writes it: in the current time zone, UTC
    written as Z, microseconds only when there are some."""
    if value is None:
        return None
    if isinstance(value, str):
        if tz is UTC_ZONE:  # already in the right form, but for zero microseconds
            return value[:-8] + "Z" if value.endswith(".000000Z") else value
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite's driver reads its datetime columns as naive UTC
        value = value.replace(tzinfo=datetime.UTC)
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class UtcText(Func):
    """A datetime column as ISO 8601 text in UTC, for `_moment` (see the module docstring)."""

    output_field = CharField()
    template = "%(expressions)s"  # SQLite's driver turns them into datetimes anyway

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="to_char(%(expressions)s AT TIME ZONE 'UTC', "
            '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')',
            **extra_context,
        )


def as_text(*names: str) -> dict:
    return {f"{name}_text": UtcText(name) for name in names}


def _decimal(value):
    return _DECIMAL.to_representation(value) if value is not None else None


def annotate_rows(queryset):
    """The milestone queryset as the values the reader needs (page it, then call `rows`).

    Only joins: the risk and blocker counts are grouped queries over the page in `rows`, which
    keeps both this query and the paginator's COUNT cheap to compile and to run (as correlated
    subqueries they were about a third of the request)."""
    return queryset.annotate(
        team_slug=F("team__slug"),
        plan_key=F("plan__key"),
        owner_username=F("owner__username"),
        **as_text("health_evaluated_at", "created_at", "updated_at"),
    ).values(*MILESTONE_FIELDS)


def grouped_counts(model, ids: list[int], filters: dict[str, Q]) -> dict[int, dict]:
    """Per milestone in `ids`, how many of its `model` rows match each filter (one query);
    milestones with none get zeros."""
    zero = dict.fromkeys(filters, 0)
    counts = dict.fromkeys(ids, zero)
    found = (
        model.objects.filter(milestone_id__in=ids)
        .order_by()
        .values("milestone_id")
        .annotate(**{name: Count("pk", filter=condition) for name, condition in filters.items()})
    )
    for row in found:
        counts[row.pop("milestone_id")] = row
    return counts


def risk_and_blocker_counts(ids: list[int]) -> dict[int, dict]:
    """Open risks and blockers (as the pages count them) and the spec check's counts."""
    risks = grouped_counts(
        Risk, ids, {"open_risks": UNRESOLVED_RISK, **spec_check.risk_count_filters()}
    )
    blockers = grouped_counts(
        Blocker, ids, {"open_blockers": UNRESOLVED_BLOCKER, **spec_check.blocker_count_filters()}
    )
    return {pk: {**risks[pk], **blockers[pk]} for pk in ids}


def criterion(row: tuple, tz) -> dict:
    """One criterion from its CRITERION_FIELDS values (a tuple: no per-row dict to build)."""
    (pk, plan_id, milestone_id, deliverable_id, text, description, category, level, target,
     comparator, unit, actual, checked, checked_by, checked_at, met, position, version,
     created_at, updated_at) = row  # fmt: skip
    return {
        "id": pk,
        "kind": "acceptance" if deliverable_id else ("plan" if plan_id else "success"),
        "plan": plan_id,
        "milestone": milestone_id,
        "deliverable": deliverable_id,
        "text": text,
        "description": description,
        "category": category,
        "level": level,
        "target": _decimal(target),
        "comparator": comparator,
        "unit": unit,
        "actual": _decimal(actual),
        "checked": checked,
        "checked_by": checked_by,
        "checked_at": _moment(checked_at, tz),
        "met": met,
        "position": position,
        "version": version,
        "created_at": _moment(created_at, tz),
        "updated_at": _moment(updated_at, tz),
    }


def deliverable(row: tuple, criteria: list[dict], tz) -> dict:
    """One deliverable from its DELIVERABLE_FIELDS values, with its acceptance criteria."""
    (pk, milestone_id, title, description, owner, owner_label, status, target_date, position,
     version, created_at, updated_at) = row  # fmt: skip
    return {
        "id": pk,
        "milestone": milestone_id,
        "title": title,
        "description": description,
        "owner": owner,
        "owner_label": owner_label,
        "status": status,
        "target_date": _date(target_date),
        "position": position,
        "criteria": criteria,
        "version": version,
        "created_at": _moment(created_at, tz),
        "updated_at": _moment(updated_at, tz),
    }


def progress_counts(deliverables: list[dict], success: list[dict]) -> dict:
    """The counts behind `progress_percent`, from a milestone's loaded deliverables (with
    their `criteria`) and success criteria: what `Milestone.objects.with_progress()` counts
    in SQL and the milestone page counts from its objects (tests compare them)."""
    musts = [c for c in success if c["level"] == CriterionLevel.MUST]
    acceptance = [c for d in deliverables for c in d["criteria"]]
    return {
        "must_total": len(musts),
        "must_met": sum(c["met"] for c in musts),
        "acceptance_total": len(acceptance),
        "acceptance_met": sum(c["met"] for c in acceptance),
        "deliverables_total": len(deliverables),
        "deliverables_accepted": sum(
            d["status"] == DeliverableStatus.ACCEPTED for d in deliverables
        ),
    }


def rows(milestones: list[dict]) -> list[dict]:
    """Full representations of `milestones` (rows from `annotate_rows`), in their order."""
    ids = [row["id"] for row in milestones]
    tz = timezone.get_current_timezone()  # looked up once, not per value
    deliverables = (
        Deliverable.objects.filter(milestone_id__in=ids)
        .annotate(owner_username=F("owner__username"), **as_text("created_at", "updated_at"))
        .order_by("position", "pk")
        .values_list(*DELIVERABLE_FIELDS)
    )
    criteria = (
        Criterion.objects.filter(Q(milestone_id__in=ids) | Q(deliverable__milestone_id__in=ids))
        .annotate(
            checked_by_username=F("checked_by__username"),
            **as_text("checked_at", "created_at", "updated_at"),
        )
        .order_by("position", "pk")
        .values_list(*CRITERION_FIELDS)
    )
    acceptance, success = {}, {}
    for row in criteria:
        item = criterion(row, tz)
        if item["deliverable"]:
            acceptance.setdefault(item["deliverable"], []).append(item)
        else:
            success.setdefault(item["milestone"], []).append(item)
    by_milestone = {}
    for row in deliverables:
        item = deliverable(row, acceptance.get(row[0], []), tz)
        by_milestone.setdefault(item["milestone"], []).append(item)
    states = signoffs.states_for(
        [SimpleNamespace(pk=row["id"], scope_hash=row["scope_hash"]) for row in milestones]
    )
    counts = risk_and_blocker_counts(ids)
    return [
        milestone(
            {**row, **counts[row["id"]]},
            by_milestone.get(row["id"], []),
            success.get(row["id"], []),
            tz,
            states[row["id"]],
        )
        for row in milestones
    ]


SPEC_COUNT_FIELDS = (*spec_check.risk_count_filters(), *spec_check.blocker_count_filters())


def _is_measured(criterion: dict) -> bool:
    return (
        criterion["target"] is not None
        or bool(criterion["comparator"])
        or bool(criterion["unit"])
        or criterion["actual"] is not None
    )


def spec_check_of(row, deliverables, success, signoff_state) -> dict:
    """The spec check summary (specs/check.py scores it) from what the reader already loaded:
    deliverables with their criteria, success criteria, sign-off roles; risk and blocker counts
    come from the row's annotations. No query of its own."""
    acceptance = [c for d in deliverables for c in d["criteria"]]
    measured = [c for c in [*success, *acceptance] if _is_measured(c)]
    roles = [state.role for state in signoff_state.roles]
    counts = SimpleNamespace(
        target_date=row["target_date"],
        owner_id=row["owner_username"],
        owning_group=row["owning_group"],
        rollback_plan=row["rollback_plan"],
        sc_success=len(success),
        sc_must=sum(1 for c in success if c["level"] == "must"),
        sc_deliverables=len(deliverables),
        sc_deliverables_with_criteria=sum(1 for d in deliverables if d["criteria"]),
        sc_deliverables_owned=sum(1 for d in deliverables if d["owner"] or d["owner_label"]),
        sc_measured=len(measured),
        sc_measured_without_target=sum(1 for c in measured if c["target"] is None),
        sc_roles=len(roles),
        sc_roles_held=sum(1 for role in roles if role.holder_id),
        **{name: row[name] for name in SPEC_COUNT_FIELDS},
    )
    return spec_check.spec_check_summary(counts)


def milestone(row, deliverables, success, tz, signoff_state) -> dict:
    finish, baseline = row["forecast_finish"], row["baseline_target_date"]
    return {
        "id": row["id"],
        "team": row["team_slug"],
        "plan": row["plan_id"],
        "plan_key": row["plan_key"],
        "key": row["key"],
        "title": row["title"],
        "summary": row["summary"],
        "owner": row["owner_username"],
        "owning_group": row["owning_group"],
        "priority": row["priority"],
        "status": row["status"],
        "start_date": _date(row["start_date"]),
        "target_date": _date(row["target_date"]),
        "baseline_target_date": _date(baseline),
        "completed_on": _date(row["completed_on"]),
        "estimated_effort": row["estimated_effort"],
        "position": row["position"],
        "rollback_plan": row["rollback_plan"],
        "retro_went_well": row["retro_went_well"],
        "retro_went_badly": row["retro_went_badly"],
        "retro_actions": row["retro_actions"],
        "retro_learnings": row["retro_learnings"],
        "progress": progress_percent(row["status"], progress_counts(deliverables, success)) or 0,
        "health": row["health"],
        "health_reasons": [
            {key: reason.get(key) for key in REASON_KEYS} for reason in row["health_reasons"] or []
        ],
        "health_evaluated_at": _moment(row["health_evaluated_at_text"], tz),
        "forecast_start": _date(row["forecast_start"]),
        "forecast_finish": _date(finish),
        "slip_days": (finish - baseline).days if finish and baseline else None,
        "slack_days": row["slack_days"],
        "is_critical": row["is_critical"],
        "open_risks": row["open_risks"],
        "open_blockers": row["open_blockers"],
        "deliverables": deliverables,
        "success_criteria": success,
        "signoffs": signoffs.summary(signoff_state),
        "spec_check": spec_check_of(row, deliverables, success, signoff_state),
        "version": row["version"],
        "created_at": _moment(row["created_at_text"], tz),
        "updated_at": _moment(row["updated_at_text"], tz),
    }
