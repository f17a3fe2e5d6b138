"""Live milestones and plans → `specs.document` objects → markdown.

Loading is a fixed number of queries whatever the size (prefetches); building the documents and
the markdown happens in memory.
"""

from django.db.models import Prefetch

from milestones.models import (
    Blocker,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    Risk,
    SignoffRole,
    Stakeholder,
)
from specs.document import (
    BlockerDoc,
    CriterionDoc,
    DeliverableDoc,
    DependencyDoc,
    MilestoneDoc,
    Note,
    PlanDoc,
    RiskDoc,
    SignoffRoleDoc,
    StakeholderDoc,
)
from specs.models import SpecSection
from specs.render import milestone_markdown, plan_markdown


def person(user) -> str:
    """How a document names a member: "ada", or "Ada Lovelace (ada)" when they have a name."""
    if user is None:
        return ""
    name = user.get_full_name()
    return f"{name} ({user.username})" if name and name != user.username else user.username


def owner_with_label(user, label: str) -> str:
    """An owner who is a member and/or a group label: "Backend team (ada)"."""
    label = (label or "").strip()
    if user and label:
        return f"{label} ({user.username})"
    return person(user) if user else label


def criterion_doc(criterion: Criterion) -> CriterionDoc:
    return CriterionDoc(
        text=criterion.text,
        checked=criterion.checked,
        category=criterion.category,
        level=criterion.level,
        target=criterion.target,
        comparator=criterion.comparator,
        unit=criterion.unit,
        actual=criterion.actual,
        description=criterion.description,
        ref=f"criterion-{criterion.pk}",
    )


def live_milestone_doc(
    milestone: Milestone,
    *,
    deliverables,
    success_criteria,
    risks,
    blockers,
    roles,
    sections=(),
    predecessors=(),
) -> MilestoneDoc:
    """A live milestone as a document, from items already loaded (no queries)."""
    doc = MilestoneDoc(
        title=milestone.title,
        key=milestone.key,
        owner=owner_with_label(milestone.owner, milestone.owning_group),
        status=milestone.status,
        priority=milestone.priority,
        start_date=milestone.start_date,
        target_date=milestone.target_date,
        estimated_effort=milestone.estimated_effort,
        summary=milestone.summary,
        rollback_plan=milestone.rollback_plan,
        ref=f"milestone-{milestone.pk}",
    )
    for deliverable in deliverables:
        doc.deliverables.append(
            DeliverableDoc(
                title=deliverable.title,
                description=deliverable.description,
                owner=owner_with_label(deliverable.owner, deliverable.owner_label),
                status=deliverable.status,
                target_date=deliverable.target_date,
                criteria=[criterion_doc(c) for c in deliverable.criteria.all()],
                ref=f"deliverable-{deliverable.pk}",
            )
        )
    doc.success_criteria = [criterion_doc(c) for c in success_criteria]
    for risk in risks:
        doc.risks.append(
            RiskDoc(
                title=risk.title,
                likelihood=risk.likelihood,
                impact=risk.impact,
                mitigation=risk.mitigation,
                fallback=risk.fallback,
                owner=owner_with_label(risk.owner, risk.owner_label),
                status=risk.status,
                description=risk.description,
                ref=f"risk-{risk.pk}",
            )
        )
    for blocker in blockers:
        doc.blockers.append(
            BlockerDoc(
                title=blocker.title,
                issue=blocker.description,
                impact=blocker.impact,
                owner=owner_with_label(blocker.owner, blocker.owner_label),
                next_action=blocker.next_action,
                priority=blocker.priority,
                target_resolution_date=blocker.target_resolution_date,
                raised_on=blocker.raised_on,
                resolved_on=blocker.resolved_on,
                resolution=blocker.resolution,
                ref=f"blocker-{blocker.pk}",
            )
        )
    doc.signoff_roles = [
        SignoffRoleDoc(name=role.name, holder=person(role.holder), ref=f"role-{role.pk}")
        for role in roles
    ]
    doc.depends_on = [
        DependencyDoc(link.predecessor.key, link.lag_days)
        for link in sorted(predecessors, key=lambda link: link.predecessor.key)
    ]
    doc.notes = [Note(section.heading, section.body) for section in sections]
    return doc


def with_spec_items(queryset):
    """Prefetch everything a milestone's document holds (a fixed number of queries)."""
    criteria = Criterion.objects.order_by("position", "pk")
    return queryset.select_related("owner", "plan").prefetch_related(
        Prefetch(
            "deliverables",
            queryset=Deliverable.objects.select_related("owner")
            .prefetch_related(Prefetch("criteria", queryset=criteria))
            .order_by("position", "pk"),
        ),
        Prefetch("criteria", queryset=criteria, to_attr="success_list"),
        Prefetch(
            "risks",
            queryset=Risk.objects.select_related("owner").order_by("position", "pk"),
            to_attr="risk_list",
        ),
        Prefetch(
            "blockers",
            queryset=Blocker.objects.select_related("owner"),
            to_attr="blocker_list",
        ),
        Prefetch(
            "signoff_roles",
            queryset=SignoffRole.objects.active().select_related("holder"),
            to_attr="role_list",
        ),
        Prefetch(
            "spec_sections",
            queryset=SpecSection.objects.order_by("position", "pk"),
            to_attr="section_list",
        ),
        Prefetch(
            "predecessor_links",
            queryset=Dependency.objects.select_related("predecessor"),
            to_attr="predecessor_list",
        ),
    )


def prefetched_milestone_doc(milestone: Milestone) -> MilestoneDoc:
    doc = live_milestone_doc(
        milestone,
        deliverables=milestone.deliverables.all(),
        success_criteria=milestone.success_list,
        risks=milestone.risk_list,
        blockers=milestone.blocker_list,
        roles=milestone.role_list,
        sections=milestone.section_list,
        predecessors=milestone.predecessor_list,
    )
    doc.plan_ref = f"{milestone.plan.key} {milestone.plan.title}"
    return doc


def milestone_document(milestone: Milestone) -> MilestoneDoc:
    loaded = with_spec_items(Milestone.objects.filter(pk=milestone.pk)).get()
    return prefetched_milestone_doc(loaded)


def export_milestone(milestone: Milestone) -> str:
    return milestone_markdown(milestone_document(milestone))


def plan_document(plan) -> PlanDoc:
    from milestones.models import Plan

    plan = (
        Plan.objects.select_related("owner")
        .prefetch_related(
            "criteria",
            Prefetch("stakeholders", queryset=Stakeholder.objects.select_related("user")),
            Prefetch("spec_sections", queryset=SpecSection.objects.order_by("position", "pk")),
            Prefetch(
                "milestones",
                queryset=with_spec_items(Milestone.objects.order_by("position", "pk")),
            ),
        )
        .get(pk=plan.pk)
    )
    doc = PlanDoc(
        title=plan.title,
        key=plan.key,
        owner=person(plan.owner),
        status=plan.status,
        start_date=plan.start_date,
        target_date=plan.target_date,
        summary=plan.summary,
    )
    doc.criteria = [
        criterion_doc(c) for c in sorted(plan.criteria.all(), key=lambda c: (c.position, c.pk))
    ]
    doc.stakeholders = [stakeholder_doc(s) for s in plan.stakeholders.all()]
    for milestone in plan.milestones.all():
        doc.milestones.append(prefetched_milestone_doc(milestone))
    doc.notes = [Note(section.heading, section.body) for section in plan.spec_sections.all()]
    return doc


def stakeholder_doc(stakeholder: Stakeholder) -> StakeholderDoc:
    if stakeholder.user_id:
        name = person(stakeholder.user)
    elif stakeholder.name and stakeholder.email:
        name = f"{stakeholder.name} <{stakeholder.email}>"
    else:
        name = stakeholder.name or stakeholder.email
    return StakeholderDoc(
        name=name,
        channel=stakeholder.channel,
        frequency=stakeholder.frequency,
        content=stakeholder.content,
    )


def export_plan(plan) -> str:
    return plan_markdown(plan_document(plan))
