"""Templates as workflows: save a milestone as a template, make milestones and plans from them.

Every domain row (plan, milestone, deliverable, criterion, sign-off role, dependency) is
created through `milestones.services`, so it is validated by the model's own rules and logged
as activity; each workflow is one transaction, so a refusal half-way leaves nothing behind.
"""

import datetime
from collections import Counter
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch

from milestone_templates.blueprints import (
    DEFAULT_DURATION_DAYS,
    MAX_DURATION_DAYS,
    Blueprint,
    CriterionBlueprint,
    DeliverableBlueprint,
)
from milestone_templates.builtin import BUILTIN_BY_REF, BUILTIN_TEMPLATES
from milestone_templates.models import MilestoneTemplate
from milestones import services
from milestones.models import Criterion, Deliverable, Milestone, Plan, SignoffRole

# --- Finding templates ----------------------------------------------------------------------


def team_blueprints(team) -> list[Blueprint]:
    """The team's own templates, readable ones only (one query)."""
    blueprints = []
    for template in MilestoneTemplate.objects.in_team(team):
        try:
            blueprints.append(template.blueprint())
        except ValidationError:
            continue  # only possible if the row was edited behind the model's back
    return blueprints


def available_blueprints(team) -> list[Blueprint]:
    """Built-in templates first, then the team's (one query)."""
    return [*BUILTIN_TEMPLATES, *team_blueprints(team)]


def find_blueprint(team, ref: str) -> Blueprint | None:
    """The template `ref` names for `team`: a built-in slug or one of the team's template ids.

    A corrupt team template raises ValidationError (shown to the person, never half-used)."""
    if ref in BUILTIN_BY_REF:
        return BUILTIN_BY_REF[ref]
    if not ref.isdigit():
        return None
    template = MilestoneTemplate.objects.in_team(team).filter(pk=int(ref)).first()
    return template.blueprint() if template else None


# --- Saving a milestone as a template -------------------------------------------------------


def duration_of(milestone: Milestone) -> int:
    """Days from start to target, or the default when either date is missing."""
    if milestone.start_date and milestone.target_date:
        days = (milestone.target_date - milestone.start_date).days
        if days >= 1:
            return min(days, MAX_DURATION_DAYS)
    return DEFAULT_DURATION_DAYS


def _criterion_blueprint(criterion: Criterion) -> CriterionBlueprint:
    return CriterionBlueprint(
        text=criterion.text,
        category=criterion.category,
        level=criterion.level,
        comparator=criterion.comparator,
        target=criterion.target,
        unit=criterion.unit,
    )


def capture(milestone: Milestone) -> Blueprint:
    """What of `milestone` a template keeps: its shape, not this run of the work.

    Kept: duration, deliverables (title, description) with acceptance criteria, success
    criteria (text, category, level, measure), active sign-off role names, all in their order.
    Not kept: dates, owners and holders, statuses, health, ticks and actual values, risks,
    blockers, updates, dependencies. Three queries whatever the size.
    """
    deliverables = milestone.deliverables.order_by("position", "pk").prefetch_related(
        Prefetch("criteria", queryset=Criterion.objects.order_by("position", "pk"))
    )
    success = milestone.criteria.order_by("position", "pk")
    roles = SignoffRole.objects.active().filter(milestone=milestone).order_by("position", "pk")
    return Blueprint(
        ref="",
        name=milestone.title,
        summary=milestone.summary,
        duration_days=duration_of(milestone),
        deliverables=tuple(
            DeliverableBlueprint(
                d.title, d.description, tuple(_criterion_blueprint(c) for c in d.criteria.all())
            )
            for d in deliverables
        ),
        success_criteria=tuple(_criterion_blueprint(c) for c in success),
        signoff_roles=tuple(role.name for role in roles),
    )


def store_template(template: MilestoneTemplate) -> MilestoneTemplate:
    """Validate with every model rule (including the per-team unique name) and save."""
    template.full_clean()
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        # Someone saved the same name between our check and our insert.
        raise ValidationError(
            {"name": "Your team already has a template with this name."}
        ) from None
    return template


def save_as_template(
    milestone: Milestone, *, actor, name: str, description: str = ""
) -> MilestoneTemplate:
    shape = capture(milestone)
    template = MilestoneTemplate(
        team_id=milestone.team_id,
        name=name,
        description=description,
        duration_days=shape.duration_days,
        content=shape.content(),
        saved_from=milestone.key,
        created_by=actor,
    )
    return store_template(template)


# --- Laying dates out -----------------------------------------------------------------------


def target_for(start_date: datetime.date, blueprint: Blueprint) -> datetime.date:
    return start_date + datetime.timedelta(days=blueprint.duration_days)


@dataclass(frozen=True)
class Slot:
    """One milestone of a laid-out sequence."""

    blueprint: Blueprint
    title: str
    start_date: datetime.date
    target_date: datetime.date

    @property
    def days(self) -> int:
        return (self.target_date - self.start_date).days


def lay_out(blueprints: list[Blueprint], start_date: datetime.date) -> list[Slot]:
    """Back to back: each milestone starts the day after the previous one's target.

    A template used more than once gets a number after its name (“Core feature 2”).
    """
    totals = Counter(b.name for b in blueprints)
    seen = Counter()
    slots, start = [], start_date
    for blueprint in blueprints:
        seen[blueprint.name] += 1
        title = blueprint.name
        if totals[blueprint.name] > 1:
            title = f"{blueprint.name} {seen[blueprint.name]}"
        target = target_for(start, blueprint)
        slots.append(Slot(blueprint, title, start, target))
        start = target + datetime.timedelta(days=1)
    return slots


# --- Creating from templates ----------------------------------------------------------------


@services.batched_scope_refresh()
def create_milestone(
    blueprint: Blueprint,
    *,
    plan: Plan,
    actor,
    start_date: datetime.date,
    title: str = "",
    owner=None,
) -> Milestone:
    """A milestone in `plan` with the template's contents, target = start + duration.

    Sign-off roles: the team's default roles (which every new milestone gets, as the team's
    admins set them) plus any other roles the template names; never fewer than the team asks.
    """
    milestone = Milestone(
        team_id=plan.team_id,
        plan=plan,
        title=title.strip() if title else blueprint.name,
        summary=blueprint.summary,
        owner=owner,
        start_date=start_date,
        target_date=target_for(start_date, blueprint),
        position=services.next_position(plan.milestones.all()),
    )
    services.create_object(milestone, actor=actor)
    for d_position, item in enumerate(blueprint.deliverables):
        deliverable = services.create_object(
            Deliverable(
                milestone=milestone,
                title=item.title,
                description=item.description,
                position=d_position,
            ),
            actor=actor,
        )
        for c_position, criterion in enumerate(item.acceptance_criteria):
            services.create_object(
                Criterion(deliverable=deliverable, position=c_position, **criterion.model_fields()),
                actor=actor,
            )
    for c_position, criterion in enumerate(blueprint.success_criteria):
        services.create_object(
            Criterion(milestone=milestone, position=c_position, **criterion.model_fields()),
            actor=actor,
        )
    present = list(milestone.signoff_roles.active().values_list("name", flat=True))
    taken = {name.casefold() for name in present}
    for name in blueprint.signoff_roles:
        if name.casefold() in taken:
            continue
        taken.add(name.casefold())
        services.create_object(
            SignoffRole(milestone=milestone, name=name, position=len(present)), actor=actor
        )
        present.append(name)
    return milestone


@services.batched_scope_refresh()
def create_plan(
    blueprints: list[Blueprint],
    *,
    actor,
    start_date: datetime.date,
    plan: Plan | None = None,
    team=None,
    plan_title: str = "",
) -> tuple[Plan, list[Milestone]]:
    """One milestone per template, laid out back to back in a new plan (or `plan`), each
    depending finish-to-start on the one before."""
    if not blueprints:
        raise ValidationError("Pick at least one template.")
    slots = lay_out(blueprints, start_date)
    if plan is None:
        plan = services.create_object(
            Plan(
                team=team,
                title=plan_title,
                start_date=slots[0].start_date,
                target_date=slots[-1].target_date,
            ),
            actor=actor,
        )
    milestones = []
    for slot in slots:
        milestone = create_milestone(
            slot.blueprint, plan=plan, actor=actor, start_date=slot.start_date, title=slot.title
        )
        if milestones:
            services.add_dependency(milestones[-1], milestone, actor=actor)
        milestones.append(milestone)
    return plan, milestones
