"""`specs.document` objects → markdown in the spec guide's format.

What is written here is exactly what `specs.parser` reads back: the round-trip tests hold the
two together. A milestone spec uses `#` for its title, `##` for sections and `###` for items; in
a plan document every level moves one deeper under the milestone's `##` heading.
"""

from specs import vocabulary as vocab
from specs.document import (
    BlockerDoc,
    CriterionDoc,
    DeliverableDoc,
    MilestoneDoc,
    PlanDoc,
    RiskDoc,
)
from specs.parser import NO_ROLES, shift_headings

MILESTONE_STATUS_WORDS = {
    "planned": "Planned",
    "in_progress": "In Progress",
    "completed": "Completed",
    "cancelled": "Cancelled",
}
DELIVERABLE_STATUS_WORDS = {
    "planned": "Planned",
    "in_progress": "In Progress",
    "in_review": "In Review",
    "accepted": "Accepted",
}
PLAN_STATUS_WORDS = {
    "draft": "Draft",
    "active": "Active",
    "completed": "Completed",
    "archived": "Archived",
}
CATEGORY_WORDS = {
    "technical": "Technical",
    "operational": "Operational",
    "quality": "Quality",
    "documentation": "Documentation",
}
LEVEL_WORDS = {"must": "Must Pass", "should": "Should Have"}


def _field(label: str, value) -> str:
    return f"**{label}**: {value}"


def _cell(text: str) -> str:
    text = (text or "").replace("|", "\\|").replace("\r", "")
    return text.replace("\n", "<br>") or "—"


def _indent(text: str, spaces: int = 2) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else "" for line in text.split("\n"))


def criterion_line(criterion: CriterionDoc) -> str:
    met = criterion.checked
    text = criterion.text
    if criterion.is_measured:
        met = _measured_met(criterion)
        text += vocab.format_measure(
            criterion.comparator, criterion.target, criterion.unit, criterion.actual
        )
    line = f"- [{'x' if met else ' '}] {text}"
    if criterion.description:
        line += "\n" + _indent(criterion.description)
    return line


def _measured_met(criterion: CriterionDoc) -> bool:
    if criterion.actual is None:
        return False
    actual, target = criterion.actual, criterion.target
    return {
        "<": actual < target,
        "<=": actual <= target,
        "=": actual == target,
        ">=": actual >= target,
        ">": actual > target,
    }.get(criterion.comparator, False)


def _description(text: str) -> str:
    first, _, rest = (text or "").partition("\n")
    return _field("Description", first) + ("\n" + rest if rest.strip() else "")


def deliverable_markdown(number: int, deliverable: DeliverableDoc, depth: int) -> str:
    parts = [f"{'#' * depth} {number}. {deliverable.title}"]
    if deliverable.description:
        parts.append(_description(deliverable.description))
    criteria = "\n".join(criterion_line(c) for c in deliverable.criteria)
    parts.append(_field("Acceptance Criteria", "").rstrip() + ("\n" + criteria if criteria else ""))
    facts = [
        _field("Owner", deliverable.owner or "unassigned"),
        _field("Status", DELIVERABLE_STATUS_WORDS.get(deliverable.status, deliverable.status)),
    ]
    if deliverable.target_date:
        facts.append(_field("Target Date", vocab.format_date(deliverable.target_date)))
    parts.append("\n".join(facts))
    return "\n\n".join(parts)


def risks_table(risks: list[RiskDoc]) -> str:
    rows = [
        "| Risk | Likelihood | Impact | Mitigation | Fallback | Owner | Status | Details |",
        "|------|------------|--------|------------|----------|-------|--------|---------|",
    ]
    for risk in risks:
        rows.append(
            "| "
            + " | ".join(
                _cell(value)
                for value in (
                    risk.title,
                    risk.likelihood.capitalize(),
                    risk.impact.capitalize(),
                    risk.mitigation,
                    risk.fallback,
                    risk.owner,
                    risk.status.capitalize(),
                    risk.description,
                )
            )
            + " |"
        )
    return "\n".join(rows)


def blocker_markdown(number: int, blocker: BlockerDoc, depth: int) -> str:
    lines = [f"{'#' * depth} {number}. {blocker.title} ({blocker.priority.capitalize()} Priority)"]
    facts = [
        ("Issue", blocker.issue),
        ("Impact", blocker.impact),
        ("Owner", blocker.owner or "unassigned"),
        ("Action", blocker.next_action),
        ("Target Resolution", vocab.format_date(blocker.target_resolution_date)),
        ("Raised", vocab.format_date(blocker.raised_on)),
        ("Resolved", vocab.format_date(blocker.resolved_on)),
        ("Resolution", blocker.resolution),
    ]
    for label, value in facts:
        if value:
            value = value.replace("\r", "").replace("\n", "<br>")
            lines.append(f"- **{label}**: {value}")
    return "\n".join(lines)


def milestone_markdown(milestone: MilestoneDoc, *, depth: int = 1, number: int | None = None):
    """One milestone; depth 1 is a milestone spec, depth 2 a milestone inside a plan."""
    section, item = "#" * (depth + 1), depth + 2
    heading = milestone.title if number is None else f"Milestone {number}: {milestone.title}"
    meta = []
    if milestone.key:
        meta.append(_field("Key", milestone.key))
    if milestone.plan_ref and depth == 1:
        meta.append(_field("Plan", milestone.plan_ref))
    meta.append(_field("Target Date", vocab.format_date(milestone.target_date) or "not set"))
    if milestone.start_date:
        meta.append(_field("Start Date", vocab.format_date(milestone.start_date)))
    meta.append(_field("Owner", milestone.owner or "unassigned"))
    meta.append(_field("Status", MILESTONE_STATUS_WORDS.get(milestone.status, milestone.status)))
    meta.append(_field("Priority", milestone.priority.capitalize()))
    if milestone.estimated_effort:
        meta.append(_field("Estimated Effort", milestone.estimated_effort))
    if milestone.depends_on:
        keys = ", ".join(
            d.key + (f" (+{d.lag_days} days)" if d.lag_days else "") for d in milestone.depends_on
        )
        meta.append(_field("Depends On", keys))
    parts = [f"{'#' * depth} {heading}", "\n".join(meta)]
    if milestone.summary:
        parts += [f"{section} Summary", shift_headings(milestone.summary, depth - 1)]
    parts.append(f"{section} Deliverables")
    if milestone.deliverables:
        parts += [deliverable_markdown(n, d, item) for n, d in enumerate(milestone.deliverables, 1)]
    else:
        parts.append("No deliverables yet.")
    if milestone.success_criteria:
        parts.append(f"{section} Success Criteria")
        for (category, level), items in _criteria_groups(milestone.success_criteria):
            words = f"{CATEGORY_WORDS.get(category, category)} Criteria ({LEVEL_WORDS[level]})"
            parts.append(f"{'#' * item} {words}\n" + "\n".join(criterion_line(c) for c in items))
    if milestone.risks:
        parts += [f"{section} Risks & Mitigation", risks_table(milestone.risks)]
    if milestone.blockers:
        parts.append(f"{section} Current Blockers")
        parts += [blocker_markdown(n, b, item) for n, b in enumerate(milestone.blockers, 1)]
    if milestone.rollback_plan:
        parts += [f"{section} Rollback Plan", shift_headings(milestone.rollback_plan, depth - 1)]
    if milestone.signoff_roles is not None:
        roles = [f"- **{r.name}**: {r.holder or 'unassigned'}" for r in milestone.signoff_roles]
        parts += [f"{section} Sign-Off Roles", "\n".join(roles) or NO_ROLES]
    for note in milestone.notes:
        parts.append(f"{section} {note.heading}")
        if note.body:
            parts.append(shift_headings(note.body, depth - 1))
    return "\n\n".join(part.rstrip() for part in parts) + "\n"


def _criteria_groups(criteria: list[CriterionDoc]):
    """Success criteria by category then level, each group in its items' order."""
    groups: dict = {}
    for criterion in criteria:
        groups.setdefault((criterion.category, criterion.level), []).append(criterion)
    order = list(CATEGORY_WORDS)
    return sorted(
        groups.items(),
        key=lambda item: (
            order.index(item[0][0]) if item[0][0] in order else len(order),
            item[0][1] != "must",
        ),
    )


def plan_markdown(plan: PlanDoc) -> str:
    meta = [_field("Type", "Plan")]
    if plan.key:
        meta.append(_field("Key", plan.key))
    meta.append(_field("Owner", plan.owner or "unassigned"))
    meta.append(_field("Status", PLAN_STATUS_WORDS.get(plan.status, plan.status)))
    if plan.start_date:
        meta.append(_field("Start Date", vocab.format_date(plan.start_date)))
    if plan.target_date:
        meta.append(_field("Target Date", vocab.format_date(plan.target_date)))
    parts = [f"# {plan.title}", "\n".join(meta)]
    if plan.summary:
        parts += ["## Summary", plan.summary]
    if plan.criteria:
        parts += ["## Success Criteria", "\n".join(criterion_line(c) for c in plan.criteria)]
    if plan.stakeholders:
        rows = [
            "| Stakeholder | Channel | Frequency | Content |",
            "|-------------|---------|-----------|---------|",
        ]
        for person in plan.stakeholders:
            frequency = FREQUENCY_WORDS.get(person.frequency, person.frequency)
            rows.append(
                f"| {_cell(person.name)} | {_cell(person.channel)} | {frequency} "
                f"| {_cell(person.content)} |"
            )
        parts += ["## Stakeholder Communication", "\n".join(rows)]
    for number, milestone in enumerate(plan.milestones, 1):
        parts.append(milestone_markdown(milestone, depth=2, number=number).rstrip())
    for note in plan.notes:
        parts.append(f"## {note.heading}")
        if note.body:
            parts.append(note.body)
    return "\n\n".join(part.rstrip() for part in parts) + "\n"


FREQUENCY_WORDS = {
    "weekly": "Weekly",
    "biweekly": "Every two weeks",
    "monthly": "Monthly",
    "on_change": "On change",
    "at_milestones": "At milestones",
}
