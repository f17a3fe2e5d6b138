"""State changes that span models or have side effects.

Every change made through these functions is validated with the model's own rules
(`full_clean`), saved inside one transaction, and recorded as an Activity row. Views, the API,
imports and commands call these; none of them saves domain objects directly.
"""

import contextvars
import datetime
import decimal
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from accounts.models import Team
from milestones import signoffs
from milestones.health import request_evaluation
from milestones.models import (
    Activity,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    MilestoneStatus,
    Plan,
    Stakeholder,
    StatusUpdate,
    today,
)
from notifications import events

# Fields that never appear in an activity diff: bookkeeping, not something a person changed.
UNLOGGED_FIELDS = {"id", "version", "created_at", "updated_at", "met", "score", "team"}


@dataclass(frozen=True)
class Scope:
    """Where an object sits, for filing its activity row."""

    team_id: int
    plan_id: int | None
    milestone_id: int | None


def scope_of(obj) -> Scope:
    if isinstance(obj, Plan):
        return Scope(obj.team_id, obj.pk, None)
    if isinstance(obj, Milestone):
        return Scope(obj.team_id, obj.plan_id, obj.pk)
    if isinstance(obj, Criterion):
        if obj.plan_id:
            return Scope(obj.plan.team_id, obj.plan_id, None)
        milestone = obj.milestone if obj.milestone_id else obj.deliverable.milestone
        return Scope(milestone.team_id, milestone.plan_id, milestone.pk)
    if isinstance(obj, Dependency):
        return Scope(obj.team_id, obj.successor.plan_id, obj.successor_id)
    if hasattr(obj, "milestone"):
        return Scope(obj.milestone.team_id, obj.milestone.plan_id, obj.milestone_id)
    if hasattr(obj, "plan"):
        return Scope(obj.plan.team_id, obj.plan_id, None)
    raise TypeError(f"{type(obj).__name__} is not a Milepost domain object")


def _plain(value):
    """A JSON-friendly rendering of a field value for the activity diff."""
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return f"{value.normalize():f}"
    return value


def _field_value(obj, field: models.Field):
    if field.is_relation:
        return getattr(obj, field.name) if getattr(obj, field.attname) is not None else None
    return getattr(obj, field.attname)


def record_activity(actor, obj, verb: str, changes: dict | None = None) -> Activity:
    """Log a change and ask for the team's health to be re-evaluated after commit."""
    scope = scope_of(obj)
    request_evaluation(scope.team_id)
    return Activity.objects.create(
        team_id=scope.team_id,
        plan_id=scope.plan_id,
        milestone_id=scope.milestone_id,
        actor=actor if actor and actor.is_authenticated else None,
        verb=verb,
        object_type=obj._meta.model_name,
        object_id=obj.pk,
        object_repr=str(obj)[:200],
        changes=changes or {},
    )


def _editable_fields(obj):
    return [
        field
        for field in obj._meta.concrete_fields
        if field.name not in UNLOGGED_FIELDS and not field.generated
    ]


def _lock_team(team_id: int) -> Team:
    """Serialise key generation and dependency edits within one team."""
    return Team.objects.select_for_update().get(pk=team_id)


def next_key(team_id: int, kind: str) -> str:
    """The next free key for `kind` ('milestone' or 'plan'); call inside a transaction."""
    team = _lock_team(team_id)
    model, counter, prefix = {
        "milestone": (Milestone, "milestone_sequence", team.milestone_key_prefix),
        "plan": (Plan, "plan_sequence", "PLAN"),
    }[kind]
    number = getattr(team, counter)
    taken = set(model.objects.filter(team_id=team_id).values_list("key", flat=True))
    while True:
        number += 1
        key = f"{prefix}-{number:03d}"
        if key not in taken:
            break
    Team.objects.filter(pk=team_id).update(**{counter: number})
    return key


@transaction.atomic
def create_object(obj, *, actor):
    """Validate and save a new domain object, and log it."""
    if isinstance(obj, Milestone | Plan) and not obj.key:
        obj.key = next_key(obj.team_id, "milestone" if isinstance(obj, Milestone) else "plan")
    if isinstance(obj, Milestone):
        if obj.baseline_target_date is None:
            obj.baseline_target_date = obj.target_date
        _apply_status_dates(obj)
    if isinstance(obj, Dependency):
        _lock_team(obj.successor.team_id)
        obj.team_id = obj.successor.team_id
    obj.full_clean()
    obj.save()
    record_activity(actor, obj, "created")
    if isinstance(obj, Milestone):
        signoffs.create_default_roles(obj)
    _refresh_signoff_scope(obj, actor)
    events.object_created(obj, actor=actor)
    return obj


# Milestone fields that are part of what a sign-off approves (see milestones/signoffs.py).
SCOPE_FIELDS = {"key", "title", "target_date"}


def _refresh_signoff_scope(obj, actor, changed: set | None = None):
    """After an edit that may change a milestone's sign-off scope, let sign-offs react."""
    if isinstance(obj, Milestone):
        if changed is None or changed & SCOPE_FIELDS:
            _refresh_or_defer(obj, actor)
    elif isinstance(obj, Deliverable):
        _refresh_or_defer(obj.milestone, actor)
    elif isinstance(obj, Criterion) and not obj.plan_id:
        milestone = obj.milestone if obj.milestone_id else obj.deliverable.milestone
        _refresh_or_defer(milestone, actor)


# Milestones whose scope refresh waits for the end of a `batched_scope_refresh` block.
_deferred_scope: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "deferred_scope", default=None
)


def _refresh_or_defer(milestone: Milestone, actor):
    pending = _deferred_scope.get()
    if pending is None:
        signoffs.refresh_scope(milestone, actor=actor)
    else:
        pending[milestone.pk] = (milestone, actor)


@contextmanager
def batched_scope_refresh():
    """Create or edit many parts of milestones (an import, a template) and refresh each
    milestone's sign-off scope once at the end instead of after every part; same outcome.

    Runs in one transaction, so the refresh happens before anything commits.
    """
    if _deferred_scope.get() is not None:  # already batching: the outer block refreshes
        yield
        return
    pending: dict = {}
    token = _deferred_scope.set(pending)
    try:
        with transaction.atomic():
            yield
            _deferred_scope.set(None)
            for milestone, actor in pending.values():
                signoffs.refresh_scope(milestone, actor=actor)
    finally:
        _deferred_scope.reset(token)


@transaction.atomic
def update_object(obj, *, actor, **changes):
    """Apply `changes` to `obj`, validate, save, and log what moved from what to what.

    Milestones get their `version` bumped so concurrent editors can notice each other.
    Returns the dict of changed fields (empty when nothing changed, and then nothing is saved).
    """
    fields = {field.name: field for field in _editable_fields(obj)}
    unknown = set(changes) - set(fields)
    if unknown:
        raise ValueError(f"Cannot change {', '.join(sorted(unknown))} on {type(obj).__name__}")
    if isinstance(obj, Milestone) and obj.baseline_target_date is not None:
        baseline = changes.get("baseline_target_date", obj.baseline_target_date)
        if baseline != obj.baseline_target_date:
            raise ValidationError(
                {"baseline_target_date": "The baseline is the first committed target date; "
                 "it cannot be changed. Move the target date instead."}
            )  # fmt: skip
    snapshot = {field.attname: getattr(obj, field.attname) for field in fields.values()}
    diff = {}
    for name, value in changes.items():
        before = _field_value(obj, fields[name])
        if before != value:
            diff[name] = [_plain(before), _plain(value)]
            setattr(obj, name, value)
    if not diff:
        return {}
    if isinstance(obj, Milestone):
        if diff.get("status", [None, None])[1] == MilestoneStatus.COMPLETED:
            refusal = signoffs.completion_refusal(obj)
            if refusal:
                for attname, value in snapshot.items():
                    setattr(obj, attname, value)
                raise ValidationError({"status": refusal})
        if "status" in diff:
            _apply_status_dates(obj)
        if obj.baseline_target_date is None and obj.target_date:
            # The first target ever given is the commitment that slips are measured against.
            obj.baseline_target_date = obj.target_date
    try:
        obj.full_clean()
    except ValidationError:
        # A refused change leaves the caller's object as it was, not half-edited.
        for attname, value in snapshot.items():
            setattr(obj, attname, value)
        raise
    update_fields = [fields[name].attname for name in diff]
    if isinstance(obj, Milestone):
        update_fields += ["completed_on", "baseline_target_date"]
    _bump_version(obj, update_fields)
    if hasattr(obj, "updated_at"):
        update_fields.append("updated_at")
    obj.save(update_fields=sorted(set(update_fields)))
    if hasattr(obj, "version"):
        obj.refresh_from_db(fields=["version"])
    record_activity(actor, obj, "updated", diff)
    _refresh_signoff_scope(obj, actor, set(diff))
    events.object_updated(obj, diff, actor=actor)
    return diff


def _bump_version(obj, update_fields: list):
    """Editable objects carry a version so two editors notice each other (see `is_stale`)."""
    if hasattr(obj, "version"):
        obj.version = models.F("version") + 1
        update_fields.append("version")


def is_stale(obj, seen_version) -> bool:
    """True when `obj` was saved by someone else since the editor loaded version `seen_version`."""
    try:
        return int(seen_version) != obj.version
    except (TypeError, ValueError):
        return True


def _apply_status_dates(milestone: Milestone):
    if milestone.status == MilestoneStatus.COMPLETED and not milestone.completed_on:
        milestone.completed_on = today()
    elif milestone.status != MilestoneStatus.COMPLETED:
        milestone.completed_on = None


@transaction.atomic
def delete_object(obj, *, actor):
    """Delete and log. The activity row outlives the object (its links are set to null)."""
    scope = scope_of(obj)
    activity = Activity(
        team_id=scope.team_id,
        plan_id=None if isinstance(obj, Plan) else scope.plan_id,
        milestone_id=None if isinstance(obj, Milestone) else scope.milestone_id,
        actor=actor if actor and actor.is_authenticated else None,
        verb="deleted",
        object_type=obj._meta.model_name,
        object_id=obj.pk,
        object_repr=str(obj)[:200],
    )
    if isinstance(obj, Milestone) and obj.signoff_decisions.exists():
        raise ValidationError(
            "This milestone has sign-off decisions, which are kept for the record; it cannot "
            "be deleted. Set its status to cancelled instead."
        )
    obj.delete()
    activity.save()
    request_evaluation(scope.team_id)
    if not isinstance(obj, Milestone):
        _refresh_signoff_scope(obj, actor)


@transaction.atomic
def set_criterion_checked(criterion: Criterion, *, actor, checked: bool) -> Criterion:
    """Tick or untick a criterion, remembering who ticked it and when."""
    if criterion.is_measured:
        raise ValidationError(
            {"checked": "A measured criterion is met by its actual value; record the actual "
             "value instead of ticking it."}
        )  # fmt: skip
    if criterion.checked == checked:
        return criterion
    criterion.checked = checked
    criterion.checked_by = actor if checked else None
    criterion.checked_at = timezone.now() if checked else None
    update_fields = ["checked", "checked_by", "checked_at", "updated_at"]
    _bump_version(criterion, update_fields)
    criterion.save(update_fields=update_fields)
    criterion.refresh_from_db(fields=["version", "met"])
    record_activity(actor, criterion, "checked" if checked else "unchecked")
    _refresh_signoff_scope(criterion, actor)
    return criterion


@transaction.atomic
def add_dependency(predecessor: Milestone, successor: Milestone, *, actor, lag_days: int = 0):
    """Link two milestones, refusing self-links, other teams and cycles (see Dependency.clean)."""
    return create_object(
        Dependency(predecessor=predecessor, successor=successor, lag_days=lag_days), actor=actor
    )


@transaction.atomic
def post_status_update(milestone: Milestone, *, actor, **fields) -> StatusUpdate:
    update = StatusUpdate(milestone=milestone, author=actor, **fields)
    return create_object(update, actor=actor)


def _siblings(obj):
    """The ordered list `obj` belongs to: a plan's milestones, a milestone's deliverables…"""
    model = type(obj)
    if isinstance(obj, Milestone | Stakeholder):
        return model.objects.filter(plan_id=obj.plan_id)
    if isinstance(obj, Criterion):
        for owner in ("deliverable_id", "milestone_id", "plan_id"):
            if getattr(obj, owner):
                return Criterion.objects.filter(**{owner: getattr(obj, owner)})
    if hasattr(obj, "milestone_id"):
        return model.objects.filter(milestone_id=obj.milestone_id)
    raise TypeError(f"{model.__name__} has no order")


@transaction.atomic
def move_in_order(obj, *, actor, offset: int) -> bool:
    """Move `obj` `offset` places within its list (negative is up); False when it cannot move.

    Positions of the whole list are rewritten 0…n-1 with the rows locked, so concurrent moves
    and gaps or duplicates left by older data cannot produce an ambiguous order.
    """
    siblings = list(_siblings(obj).select_for_update().order_by("position", "pk"))
    ids = [sibling.pk for sibling in siblings]
    index = ids.index(obj.pk)
    target = max(0, min(len(ids) - 1, index + offset))
    if target == index:
        return False
    ids.insert(target, ids.pop(index))
    by_id = {sibling.pk: sibling for sibling in siblings}
    changed = []
    for position, pk in enumerate(ids):
        if by_id[pk].position != position:
            by_id[pk].position = position
            changed.append(by_id[pk])
    type(obj).objects.bulk_update(changed, ["position"])
    obj.position = target
    record_activity(actor, obj, "moved", {"position": [index + 1, target + 1]})
    return True


def next_position(queryset) -> int:
    """Where a new item goes: after the last one."""
    last = queryset.aggregate(last=models.Max("position"))["last"]
    return 0 if last is None else last + 1


def deletion_summary(obj) -> dict[str, int]:
    """What deleting `obj` takes with it, by kind, for the confirmation page."""
    if isinstance(obj, Milestone):
        return {
            "deliverables": obj.deliverables.count(),
            "criteria": Criterion.objects.filter(
                models.Q(milestone=obj) | models.Q(deliverable__milestone=obj)
            ).count(),
            "risks": obj.risks.count(),
            "blockers": obj.blockers.count(),
            "dependencies": Dependency.objects.filter(
                models.Q(predecessor=obj) | models.Q(successor=obj)
            ).count(),
            "status updates": obj.status_updates.count(),
        }
    if isinstance(obj, Deliverable):
        return {"acceptance criteria": obj.criteria.count()}
    if isinstance(obj, Plan):
        return {"milestones": obj.milestones.count(), "plan criteria": obj.criteria.count()}
    return {}
