"""Sign-offs: who must approve a milestone, the decisions they make, and what follows.

Every rule lives here; the milestone page, the My sign-offs page, the API, the admin and the
commands call these functions.

What a decision approves — the *scope* — is the canonical JSON document built by
`scope_document` (keys sorted, no whitespace, UTF-8), and `scope_hash` is its SHA-256:

    {"milestone": key, "title": str, "target_date": "YYYY-MM-DD" | null,
     "deliverables": [{"id", "title", "description", "status",
                       "acceptance_criteria": [{"id", "text", "met"}]}],   # by id
     "success_criteria": [{"id", "text", "level", "measure", "met"}]}      # by id

`measure` is "<comparator> <target> <unit>" for a measured criterion, else "". Not scope:
order (positions), owners, categories, deliverable dates, an actual value that leaves a
criterion's met state as it was, risks, blockers and status updates.

A decision is *current* while its scope hash equals the milestone's and its author still holds
the role; otherwise it is *stale*: shown as such, not counted, and the holder is asked again
(a SignoffRequest row).

Each decision's `record_hash` is the SHA-256 of the canonical JSON of `record_fields()`, which
includes the previous decision's hash on the same milestone. `verify_chains` recomputes both
hashes along every chain; editing, deleting or re-ordering a record breaks it.
"""

import datetime
import hashlib
import json
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.models import Membership, Role
from milestones.models import (
    ZERO_HASH,
    Activity,
    Criterion,
    CriterionLevel,
    Deliverable,
    DeliverableStatus,
    Milestone,
    MilestoneStatus,
    SignoffDecision,
    SignoffOutcome,
    SignoffRequest,
    SignoffRequestReason,
    SignoffRole,
    today,
)
from notifications import events

COMMENT_REQUIRED = "Say why: a comment is required when you request changes or reject."
EXCEPTIONS_NEED_COMMENT = (
    "Name the exceptions you accept in the comment: which criteria or deliverables, and why."
)
SCOPE_MOVED = (
    "The milestone's scope changed while you were deciding; nothing was recorded. Look at it "
    "again and review your decision."
)


# --- Scope ----------------------------------------------------------------------------------


def canonical_json(data) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _measure(criterion: dict) -> str:
    if criterion["target"] is None:
        return ""
    target = f"{criterion['target'].normalize():f}"
    return " ".join(part for part in (criterion["comparator"], target, criterion["unit"]) if part)


def scope_document(milestone: Milestone) -> str:
    """The canonical scope of `milestone` as it is in the database now (two queries)."""
    deliverables = list(
        Deliverable.objects.filter(milestone_id=milestone.pk)
        .order_by("pk")
        .values("id", "title", "description", "status")
    )
    criteria = Criterion.objects.filter(
        Q(milestone_id=milestone.pk) | Q(deliverable__milestone_id=milestone.pk)
    ).order_by("pk")
    acceptance: dict[int, list] = {}
    success = []
    for row in criteria.values(
        "id", "deliverable_id", "text", "level", "target", "comparator", "unit", "met"
    ):
        if row["deliverable_id"]:
            acceptance.setdefault(row["deliverable_id"], []).append(
                {"id": row["id"], "text": row["text"], "met": row["met"]}
            )
        else:
            success.append(
                {
                    "id": row["id"],
                    "text": row["text"],
                    "level": row["level"],
                    "measure": _measure(row),
                    "met": row["met"],
                }
            )
    return canonical_json(
        {
            "milestone": milestone.key,
            "title": milestone.title,
            "target_date": milestone.target_date.isoformat() if milestone.target_date else None,
            "deliverables": [
                {**row, "acceptance_criteria": acceptance.get(row["id"], [])}
                for row in deliverables
            ],
            "success_criteria": success,
        }
    )


def unmet_items(milestone: Milestone, *, deliverables=None, success_criteria=None) -> list[str]:
    """Why a plain approval is refused: unmet must-criteria and deliverables not accepted.

    Pass the milestone's deliverables and success criteria when already loaded (in position
    order) to save the two queries.
    """
    if success_criteria is None:
        success_criteria = Criterion.objects.filter(milestone_id=milestone.pk).order_by(
            "position", "pk"
        )
    if deliverables is None:
        deliverables = Deliverable.objects.filter(milestone_id=milestone.pk).order_by(
            "position", "pk"
        )
    musts = [c for c in success_criteria if c.level == CriterionLevel.MUST and not c.met]
    open_deliverables = [d for d in deliverables if d.status != DeliverableStatus.ACCEPTED]
    return [f"Must-criterion not met: {c.text}" for c in musts] + [
        f"Deliverable not accepted: {d.title} ({d.get_status_display().lower()})"
        for d in open_deliverables
    ]


def unmet_musts_for(milestone_ids) -> dict[int, list[str]]:
    """Texts of the unmet must-level success criteria of many milestones, in one query."""
    unmet: dict[int, list[str]] = {}
    rows = Criterion.objects.filter(
        milestone_id__in=milestone_ids, level=CriterionLevel.MUST, met=False
    ).order_by("position", "pk")
    for milestone_id, text in rows.values_list("milestone_id", "text"):
        unmet.setdefault(milestone_id, []).append(text)
    return unmet


# --- State ----------------------------------------------------------------------------------


@dataclass
class RoleState:
    role: SignoffRole
    latest: SignoffDecision | None
    scope_hash: str
    history: list = field(default_factory=list)

    @property
    def is_current(self) -> bool:
        """The latest decision counts: made on today's scope by today's holder."""
        return bool(self.latest) and counts(
            self.latest.scope_hash, self.latest.decided_by_id, self.scope_hash, self.role.holder_id
        )

    @property
    def is_stale(self) -> bool:
        return bool(self.latest and not self.is_current)

    @property
    def current(self) -> SignoffDecision | None:
        return self.latest if self.is_current else None

    @property
    def is_approved(self) -> bool:
        return bool(self.current and self.current.outcome == SignoffOutcome.APPROVED)

    @property
    def is_awaiting(self) -> bool:
        return self.current is None


@dataclass
class SignoffState:
    milestone: Milestone
    roles: list[RoleState]
    decisions: list[SignoffDecision]

    @property
    def is_governed(self) -> bool:
        """Sign-off decides completion once any role has a holder."""
        return any(state.role.holder_id for state in self.roles)

    @property
    def all_approved(self) -> bool:
        return bool(self.roles) and all(state.is_approved for state in self.roles)

    @property
    def approved_count(self) -> int:
        return sum(state.is_approved for state in self.roles)

    @property
    def missing(self) -> list[RoleState]:
        return [state for state in self.roles if not state.is_approved]

    @property
    def exceptions(self) -> list[SignoffDecision]:
        return [d for d in self.decisions if d.with_exceptions]


def states_for(milestones: list[Milestone]) -> dict[int, SignoffState]:
    """Sign-off state of many milestones in two queries (roles with holders, decisions)."""
    ids = [m.pk for m in milestones]
    roles: dict[int, list] = {pk: [] for pk in ids}
    for role in SignoffRole.objects.active().filter(milestone_id__in=ids).select_related("holder"):
        roles[role.milestone_id].append(role)
    decisions: dict[int, list] = {pk: [] for pk in ids}
    for decision in (
        SignoffDecision.objects.filter(milestone_id__in=ids)
        .select_related("decided_by")
        .defer("scope_document")  # the whole scope as JSON: only the receipt and checks read it
        .order_by("milestone_id", "sequence")
    ):
        decisions[decision.milestone_id].append(decision)
    states = {}
    for milestone in milestones:
        history = decisions[milestone.pk]
        by_role: dict[int, list] = {}
        for decision in history:
            by_role.setdefault(decision.role_id, []).append(decision)
        role_states = [
            RoleState(
                role=role,
                latest=by_role.get(role.pk, [None])[-1],
                scope_hash=milestone.scope_hash,
                history=by_role.get(role.pk, []),
            )
            for role in roles[milestone.pk]
        ]
        states[milestone.pk] = SignoffState(milestone, role_states, history)
    return states


def state_of(milestone: Milestone) -> SignoffState:
    return states_for([milestone])[milestone.pk]


def summary(state: SignoffState) -> dict:
    """The sign-off state as plain data (the API's `signoffs`; no queries).

    `complete`: every role has a current approval (the criteria rule is separate);
    per role, `decision` and `with_exceptions` are the current decision's, `decided_at` and
    `stale` describe the latest decision (stale: it no longer counts). Times: UTC, ISO 8601.
    """

    def iso(moment) -> str:
        return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")

    return {
        "governed": state.is_governed,
        "approved": state.approved_count,
        "required": len(state.roles),
        "complete": state.all_approved,
        "scope_hash": state.milestone.scope_hash or None,
        "roles": [
            {
                "id": role.role.pk,
                "name": role.role.name,
                "holder": role.role.holder.get_username() if role.role.holder else None,
                "decision": role.current.outcome if role.current else None,
                "with_exceptions": bool(role.current and role.current.with_exceptions),
                "decided_at": iso(role.latest.decided_at) if role.latest else None,
                "stale": role.is_stale,
            }
            for role in state.roles
        ],
    }


def counts(decision_scope: str, decided_by_id, milestone_scope: str, holder_id) -> bool:
    """The rule for whether a role's latest decision counts: it was made on the milestone's
    current scope by the role's current holder. `no_current_decision` says it in SQL."""
    return decision_scope == milestone_scope and decided_by_id == holder_id


def latest_decision_subquery(field_name: str, role_ref: str = "pk") -> Subquery:
    latest = SignoffDecision.objects.filter(role_id=OuterRef(role_ref)).order_by("-sequence")
    return Subquery(latest.values(field_name)[:1])


def with_latest_decision(roles):
    """Annotate roles with their latest decision's scope, outcome and author (`counts` decides
    whether it is current)."""
    return roles.annotate(
        latest_scope=latest_decision_subquery("scope_hash"),
        latest_outcome=latest_decision_subquery("outcome"),
        latest_by=latest_decision_subquery("decided_by_id"),
    )


# `counts` as a filter on `with_latest_decision` roles: no decision, or one that no longer counts.
no_current_decision = (
    Q(latest_scope__isnull=True)
    | ~Q(latest_scope=F("milestone__scope_hash"))
    | ~Q(latest_by=F("holder_id"))
)


def awaiting_roles(user):
    """The active roles `user` holds on open milestones with no current decision by them."""
    held = SignoffRole.objects.active().filter(
        holder=user,
        milestone__team__memberships__user=user,
        milestone__status__in=[MilestoneStatus.PLANNED, MilestoneStatus.IN_PROGRESS],
    )
    return with_latest_decision(held).filter(no_current_decision)


def missing_by_milestone(team_id: int) -> dict[int, list[str]]:
    """For each governed open milestone of a team, the roles without a current approval."""
    roles = (
        SignoffRole.objects.active()
        .filter(milestone__team_id=team_id)
        .exclude(milestone__status__in=[MilestoneStatus.COMPLETED, MilestoneStatus.CANCELLED])
    )
    rows = with_latest_decision(roles).values(
        "milestone_id",
        "name",
        "holder_id",
        "latest_scope",
        "latest_outcome",
        "latest_by",
        "milestone__scope_hash",
    )
    governed, missing = set(), {}
    for row in rows:
        if row["holder_id"]:
            governed.add(row["milestone_id"])
        approved = row["latest_outcome"] == SignoffOutcome.APPROVED and counts(
            row["latest_scope"], row["latest_by"], row["milestone__scope_hash"], row["holder_id"]
        )
        if not approved:
            missing.setdefault(row["milestone_id"], []).append(row["name"])
    return {pk: names for pk, names in missing.items() if pk in governed}


# --- Changes --------------------------------------------------------------------------------


def _record(actor, obj, verb, changes=None):
    from milestones.services import record_activity

    return record_activity(actor, obj, verb, changes)


def _require_admin(actor, team_id: int):
    if not Membership.objects.filter(team_id=team_id, user=actor, role=Role.ADMIN).exists():
        raise PermissionDenied("Only a team admin can change sign-off roles and holders.")


def _lock(milestone: Milestone) -> Milestone:
    return (
        Milestone.objects.select_for_update(of=("self",))
        .select_related("team")
        .get(pk=milestone.pk)
    )


def create_default_roles(milestone: Milestone) -> list[SignoffRole]:
    """Give a new milestone its team's default sign-off roles (no holders yet)."""
    names = milestone.team.signoff_roles or []
    return SignoffRole.objects.bulk_create(
        SignoffRole(milestone=milestone, name=name.strip(), position=index)
        for index, name in enumerate(names)
    )


def _ask(role: SignoffRole, scope_hash: str, reason: str):
    if role.holder_id:
        request, created = SignoffRequest.objects.get_or_create(
            role=role, holder_id=role.holder_id, scope_hash=scope_hash, defaults={"reason": reason}
        )
        if created:
            events.signoff_requested(request)


def refresh_scope(milestone: Milestone, *, actor) -> bool:
    """Recompute the scope hash after an edit; ask holders again and re-open if it moved.

    Called by the services inside the edit's transaction. Returns True when the scope changed.
    """
    milestone = _lock(milestone)
    new_hash = sha256(scope_document(milestone))
    old_hash = milestone.scope_hash
    if new_hash == old_hash:
        return False
    Milestone.objects.filter(pk=milestone.pk).update(scope_hash=new_hash)
    milestone.scope_hash = new_hash
    if old_hash:
        # Decisions that were current a moment ago just went stale: ask their holders again.
        for role in (
            SignoffRole.objects.active()
            .filter(milestone=milestone)
            .annotate(latest_scope=latest_decision_subquery("scope_hash"))
        ):
            if role.latest_scope == old_hash:
                _ask(role, new_hash, SignoffRequestReason.STALE)
    settle_completion(milestone, actor=actor)
    return True


def settle_completion(milestone: Milestone, *, actor) -> str | None:
    """Complete a governed milestone whose roles all approved its current scope; re-open a
    completed one that no longer qualifies. Returns "completed", "reopened" or None.

    Call with the milestone row locked.
    """
    if milestone.status == MilestoneStatus.CANCELLED:
        return None
    state = state_of(milestone)
    if not state.is_governed:
        return None
    qualifies = state.all_approved and (
        not unmet_items(milestone) or all(role.current.with_exceptions for role in state.roles)
    )
    if qualifies and milestone.status != MilestoneStatus.COMPLETED:
        new_status, completed_on, verb = MilestoneStatus.COMPLETED, today(), "completed"
    elif not qualifies and milestone.status == MilestoneStatus.COMPLETED:
        new_status, completed_on, verb = MilestoneStatus.IN_PROGRESS, None, "reopened"
    else:
        return None
    old_status = milestone.status
    Milestone.objects.filter(pk=milestone.pk).update(
        status=new_status, completed_on=completed_on, version=F("version") + 1
    )
    milestone.refresh_from_db(fields=["status", "completed_on", "version"])
    _record(actor, milestone, verb, {"status": [old_status, new_status]})
    if verb == "completed":
        events.milestone_completed(milestone)
    return verb


def completion_refusal(milestone: Milestone) -> str | None:
    """Why a person may not set a governed milestone to completed by hand (None: they may)."""
    state = state_of(milestone)
    if not state.is_governed or state.all_approved:
        return None
    names = ", ".join(role.role.name for role in state.missing)
    return f"This milestone is completed by its sign-offs; still awaiting approval from {names}."


def _field_error(field_name, message):
    return ValidationError({field_name: message})


def check_decision(
    milestone: Milestone,
    *,
    user,
    role: SignoffRole,
    outcome: str,
    comment: str,
    with_exceptions: bool,
) -> bool:
    """Refuse a decision the rules do not allow; returns the effective `with_exceptions`.

    `decide` calls this under the lock; pages call it first to show errors before asking
    the holder to confirm.
    """  # fmt: skip
    if role.milestone_id != milestone.pk or role.removed_at:
        raise _field_error("role", "This milestone has no such sign-off role.")
    if role.holder_id != user.pk:
        holder = role.holder.display_name if role.holder else "nobody yet"
        raise PermissionDenied(
            f"Only the holder of {role.name} can decide for it; the holder is {holder}."
        )
    if outcome not in SignoffOutcome.values:
        choices = ", ".join(SignoffOutcome.values)
        raise _field_error("outcome", f"“{outcome}” is not a decision; choose one of {choices}.")
    if milestone.status == MilestoneStatus.CANCELLED:
        raise _field_error("outcome", "The milestone is cancelled; there is nothing to sign off.")
    if outcome != SignoffOutcome.APPROVED:
        if with_exceptions:
            raise _field_error("with_exceptions", "Exceptions apply to approvals only.")
        if not comment:
            raise _field_error("comment", COMMENT_REQUIRED)
        return False
    unmet = unmet_items(milestone)
    if with_exceptions and not comment:
        raise _field_error("comment", EXCEPTIONS_NEED_COMMENT)
    if unmet and not with_exceptions:
        raise ValidationError(
            {"outcome": ["Approval is refused while the milestone is not done:", *unmet,
                         "Approve “with exceptions” and name them in the comment to approve "
                         "anyway."]}
        )  # fmt: skip
    # With nothing unmet there is nothing to except: a plain approval says it truthfully.
    return bool(unmet) and with_exceptions


@transaction.atomic
def decide(
    milestone: Milestone,
    *,
    user,
    role: SignoffRole,
    outcome: str,
    comment: str = "",
    with_exceptions: bool = False,
    seen_scope_hash: str | None = None,
) -> SignoffDecision:
    """Record `user`'s decision for `role` on the milestone's current scope.

    The milestone row stays locked until commit, so simultaneous decisions queue up and each
    sees the one before it: a second identical decision is refused, not recorded twice.
    `seen_scope_hash`, when given, is the scope the holder was shown: a decision is refused
    if the scope moved since, so nobody approves a scope they never saw.
    """
    milestone = _lock(milestone)
    role = SignoffRole.objects.select_related("holder").filter(pk=role.pk).first()
    if role is None:
        raise _field_error("role", "This milestone has no such sign-off role.")
    comment = (comment or "").strip()
    with_exceptions = check_decision(
        milestone, user=user, role=role, outcome=outcome, comment=comment,
        with_exceptions=with_exceptions,
    )  # fmt: skip

    document = scope_document(milestone)
    scope_hash = sha256(document)
    if seen_scope_hash and seen_scope_hash != scope_hash:
        raise _field_error("scope", SCOPE_MOVED)
    if scope_hash != milestone.scope_hash:
        Milestone.objects.filter(pk=milestone.pk).update(scope_hash=scope_hash)
        milestone.scope_hash = scope_hash

    decisions = SignoffDecision.objects.filter(milestone=milestone).order_by("-sequence")
    previous = decisions.first()
    mine = decisions.filter(role=role).first()
    recorded = (mine.scope_hash, mine.decided_by_id, mine.outcome, mine.with_exceptions,
                mine.comment) if mine else None  # fmt: skip
    if recorded == (scope_hash, user.pk, outcome, with_exceptions, comment):
        raise _field_error(
            "outcome",
            f"This decision is already recorded for {role.name} on this scope "
            f"({mine.decided_at:%Y-%m-%d %H:%M} UTC).",
        )

    decision = SignoffDecision(
        milestone=milestone,
        role=role,
        role_name=role.name,
        decided_by=user,
        decided_by_name=user.get_username(),
        outcome=outcome,
        with_exceptions=with_exceptions,
        comment=comment,
        scope_document=document,
        scope_hash=scope_hash,
        sequence=previous.sequence + 1 if previous else 1,
        previous_hash=previous.record_hash if previous else ZERO_HASH,
        decided_at=timezone.now().replace(microsecond=0),
    )
    decision.record_hash = record_hash(decision)
    decision.full_clean()
    decision.save(force_insert=True)
    _record(
        user,
        decision,
        "decided",
        {"role": role.name, "outcome": outcome, "with_exceptions": with_exceptions},
    )
    events.signoff_decided(decision)
    settle_completion(milestone, actor=user)
    return decision


@transaction.atomic
def set_holder(role: SignoffRole, *, actor, holder) -> SignoffRole:
    """Give `role` to `holder` (a team member) or to nobody; an admin action, logged."""
    role = SignoffRole.objects.select_related("milestone", "holder").get(pk=role.pk)
    _require_admin(actor, role.milestone.team_id)
    if role.removed_at:
        raise _field_error("holder", "This role was dropped from the milestone.")
    if (holder.pk if holder else None) == role.holder_id:
        return role
    before = role.holder.display_name if role.holder else None
    role.holder = holder
    role.full_clean()
    role.version = F("version") + 1
    role.save(update_fields=["holder", "version", "updated_at"])
    role.refresh_from_db(fields=["version"])
    _record(actor, role, "updated",
            {"holder": [before, holder.display_name if holder else None]})  # fmt: skip
    milestone = _lock(role.milestone)
    if not milestone.scope_hash:
        refresh_scope(milestone, actor=actor)
        milestone.refresh_from_db(fields=["scope_hash"])
    _ask(role, milestone.scope_hash, SignoffRequestReason.ASSIGNED)
    settle_completion(milestone, actor=actor)
    return role


@transaction.atomic
def add_role(milestone: Milestone, *, actor, name: str, holder=None) -> SignoffRole:
    _require_admin(actor, milestone.team_id)
    milestone = _lock(milestone)
    last = milestone.signoff_roles.active().aggregate(last=models.Max("position"))["last"]
    role = SignoffRole(
        milestone=milestone, name=name, holder=holder, position=0 if last is None else last + 1
    )
    role.full_clean()
    role.save()
    _record(actor, role, "created", {"holder": [None, holder.display_name if holder else None]})
    if holder:
        _ask(role, milestone.scope_hash, SignoffRequestReason.ASSIGNED)
    settle_completion(milestone, actor=actor)
    return role


@transaction.atomic
def drop_role(role: SignoffRole, *, actor) -> None:
    """Remove a role from a milestone. A role with decisions is kept, marked removed."""
    role = SignoffRole.objects.select_related("milestone").get(pk=role.pk)
    _require_admin(actor, role.milestone.team_id)
    milestone = _lock(role.milestone)
    _record(actor, role, "removed")
    if role.decisions.exists():
        role.removed_at = timezone.now()
        role.save(update_fields=["removed_at", "updated_at"])
    else:
        role.delete()
    settle_completion(milestone, actor=actor)


# --- The chain ------------------------------------------------------------------------------


def record_fields(decision: SignoffDecision) -> dict:
    decided_at = decision.decided_at.astimezone(datetime.UTC).replace(microsecond=0)
    return {
        "milestone": decision.milestone_id,
        "sequence": decision.sequence,
        "role": decision.role_id,
        "role_name": decision.role_name,
        "decided_by": decision.decided_by_id,
        "decided_by_name": decision.decided_by_name,
        "outcome": decision.outcome,
        "with_exceptions": decision.with_exceptions,
        "comment": decision.comment,
        "scope_hash": decision.scope_hash,
        "previous_hash": decision.previous_hash,
        "decided_at": decided_at.isoformat(),
    }


def record_hash(decision: SignoffDecision) -> str:
    return sha256(canonical_json(record_fields(decision)))


@dataclass(frozen=True)
class ChainProblem:
    decision_id: int
    milestone_id: int
    sequence: int
    message: str

    def __str__(self):
        return (
            f"sign-off decision #{self.decision_id} (milestone id {self.milestone_id}, "
            f"sequence {self.sequence}): {self.message}"
        )


def verify_chains(batch_size: int = 2000) -> tuple[int, list[ChainProblem]]:
    """Check every decision chain; returns (decisions checked, problems found)."""
    problems, checked, recorded = [], 0, set()
    previous_by_milestone: dict[int, SignoffDecision] = {}
    decisions = SignoffDecision.objects.order_by("milestone_id", "sequence")
    for decision in decisions.iterator(chunk_size=batch_size):
        checked += 1
        previous = previous_by_milestone.get(decision.milestone_id)
        expected_sequence = previous.sequence + 1 if previous else 1
        expected_previous = previous.record_hash if previous else ZERO_HASH

        def problem(message, decision=decision):
            problems.append(
                ChainProblem(decision.pk, decision.milestone_id, decision.sequence, message)
            )

        if decision.sequence != expected_sequence:
            problem(f"expected sequence {expected_sequence}: a decision is missing before it")
        if decision.previous_hash != expected_previous:
            problem("its link to the previous decision does not match (altered or removed)")
        if sha256(decision.scope_document) != decision.scope_hash:
            problem("its scope document does not match its scope hash (scope altered)")
        if record_hash(decision) != decision.record_hash:
            problem("its contents do not match its record hash (record altered)")
        previous_by_milestone[decision.milestone_id] = decision
        recorded.add(decision.pk)
    # A chain's last records have no successor to vouch for them; the activity log, written in
    # the same transaction as each decision, does.
    logged = Activity.objects.filter(verb="decided", object_type="signoffdecision")
    for decision_id, milestone_id in logged.values_list("object_id", "milestone_id").iterator():
        if decision_id not in recorded:
            problems.append(
                ChainProblem(decision_id, milestone_id, 0, "logged as decided in the activity "
                             "log but missing from the decisions table (removed)")
            )  # fmt: skip
    return checked, problems


# --- Receipt --------------------------------------------------------------------------------


def receipt(milestone: Milestone) -> str:
    """The sign-off record of a milestone as a markdown document."""
    state = state_of(milestone)
    lines = [
        f"# Sign-off receipt: {milestone.key} {milestone.title}",
        "",
        f"- Team: {milestone.team.name}",
        f"- Status: {milestone.get_status_display()}"
        + (f" (completed {milestone.completed_on:%Y-%m-%d})" if milestone.completed_on else ""),
        f"- Target date: {milestone.target_date:%Y-%m-%d}" if milestone.target_date else
        "- Target date: none",
        f"- Current scope hash: `{milestone.scope_hash or '(not computed)'}`",
        f"- Generated: {timezone.now():%Y-%m-%d %H:%M} UTC",
        "",
        "## Roles",
        "",
        "| Role | Holder | Current decision |",
        "| --- | --- | --- |",
    ]  # fmt: skip
    for role in state.roles:
        holder = role.role.holder.display_name if role.role.holder else "unassigned"
        if role.current:
            decided = f"{role.current.get_outcome_display()} {role.current.decided_at:%Y-%m-%d}"
            if role.current.with_exceptions:
                decided += " (with exceptions)"
        elif role.is_stale:
            decided = f"awaiting (last decision {role.latest.get_outcome_display()} is stale)"
        else:
            decided = "awaiting"
        lines.append(f"| {role.role.name} | {holder} | {decided} |")
    lines += ["", "## Decisions, oldest first", ""]
    if not state.decisions:
        lines.append("No decisions yet.")
    for decision in state.decisions:
        current = decision.scope_hash == milestone.scope_hash
        lines += [
            f"### {decision.sequence}. {decision.role_name}: {decision.get_outcome_display()}"
            + (" WITH EXCEPTIONS" if decision.with_exceptions else ""),
            "",
            f"- By: {decision.decided_by_name}",
            f"- At: {decision.decided_at.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC",
            f"- Scope hash: `{decision.scope_hash}`" + ("" if current else " (stale)"),
            f"- Record hash: `{decision.record_hash}`",
            f"- Previous record: `{decision.previous_hash}`",
        ]
        if decision.comment:
            lines += ["- Comment:", "", *[f"  > {line}" for line in decision.comment.splitlines()]]
        lines.append("")
    lines += [
        "Scope hash: SHA-256 of the canonical JSON scope (title, target date, deliverables with",
        "their acceptance criteria, success criteria, and whether each is met). Record hash:",
        "SHA-256 of the decision's fields and the previous record hash. Check them with",
        "`python manage.py verify_signoffs`.",
        "",
    ]
    return "\n".join(lines)
