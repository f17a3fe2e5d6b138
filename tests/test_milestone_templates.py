"""Milestone templates: the built-ins, saving a milestone as a template, and creating
milestones and plans from templates (dates, contents, services, atomicity)."""

import datetime
import itertools
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Team
from milestone_templates import services as template_services
from milestone_templates.blueprints import DEFAULT_DURATION_DAYS, Group, parse_content
from milestone_templates.builtin import BUILTIN_BY_REF, BUILTIN_TEMPLATES, PRESETS
from milestone_templates.models import MilestoneTemplate
from milestones import services, signoffs
from milestones.models import (
    Activity,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    Plan,
    SignoffRole,
)
from tests.factories import (
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_plan,
    make_risk,
    make_status_update,
    make_team,
)

D = datetime.date


# --- Built-in templates ---------------------------------------------------------------------


def test_the_five_phases_and_three_sprint_shapes_are_built_in():
    phases = [b.name for b in BUILTIN_TEMPLATES if b.group == Group.PHASE]
    sprints = [b.name for b in BUILTIN_TEMPLATES if b.group == Group.SPRINT]
    assert phases == [
        "Research & architecture",
        "Foundation",
        "Core development",
        "Polish & production",
        "Maintenance & evolution",
    ]
    assert sprints == ["Quick win", "Core feature", "Learning sprint"]
    assert PRESETS["phases"][1] == [
        "research-architecture",
        "foundation",
        "core-development",
        "polish-production",
        "maintenance",
    ]


def test_built_in_refs_and_names_are_unique_and_never_look_like_team_template_ids():
    refs = [b.ref for b in BUILTIN_TEMPLATES]
    assert len(set(refs)) == len(refs)
    assert len({b.name.casefold() for b in BUILTIN_TEMPLATES}) == len(refs)
    assert not any(ref.isdigit() for ref in refs)
    assert set(BUILTIN_BY_REF) == set(refs)


@pytest.mark.parametrize("blueprint", BUILTIN_TEMPLATES, ids=lambda b: b.ref)
def test_every_built_in_template_is_well_formed(blueprint):
    assert blueprint.summary.strip()
    assert blueprint.duration_days > 0
    assert blueprint.deliverables, "a template without deliverables gives nothing to track"
    for deliverable in blueprint.deliverables:
        assert deliverable.title.strip()
        assert deliverable.acceptance_criteria, f"{deliverable.title} has no acceptance criteria"
    assert any(c.level == "must" for c in blueprint.success_criteria)
    assert blueprint.signoff_roles
    for criterion in blueprint.success_criteria:
        assert criterion.category in {"technical", "operational", "quality", "documentation"}
        assert (criterion.target is None) == (criterion.comparator == "")
    # The stored form reads back to the same thing, through the parser team templates use.
    deliverables, success, roles = parse_content(json.loads(json.dumps(blueprint.content())))
    assert (deliverables, success, roles) == (
        blueprint.deliverables,
        blueprint.success_criteria,
        blueprint.signoff_roles,
    )


@pytest.mark.parametrize("blueprint", BUILTIN_TEMPLATES, ids=lambda b: b.ref)
def test_every_built_in_template_makes_a_valid_milestone(world, blueprint):
    milestone = template_services.create_milestone(
        blueprint, plan=world.plan, actor=world.member, start_date=D(2027, 5, 3)
    )
    assert milestone.deliverables.count() == len(blueprint.deliverables)
    assert Criterion.objects.filter(deliverable__milestone=milestone).count() == (
        blueprint.acceptance_criteria_count
    )


# --- Saving a milestone as a template -------------------------------------------------------


@pytest.fixture
def rich_milestone(world):
    """A milestone full of things a template must keep, and things it must not."""
    milestone = make_milestone(
        world.plan,
        world.admin,
        title="Export queue ready",
        summary="Jobs flow through the queue.",
        owner=world.member,
        start_date=D(2027, 1, 4),
        target_date=D(2027, 1, 25),
    )
    queue = make_deliverable(
        milestone, world.admin, title="Redis queue", description="Managed cluster",
        owner=world.member, status="accepted", target_date=D(2027, 1, 20),
    )  # fmt: skip
    make_criterion(world.admin, deliverable=queue, text="Cluster deployed", checked=True)
    make_criterion(
        world.admin, deliverable=queue, text="Throughput", comparator=">=",
        target=Decimal("10"), unit="jobs/s", actual=Decimal("12"),
    )  # fmt: skip
    make_deliverable(milestone, world.admin, title="Runbook")
    make_criterion(
        world.admin, milestone=milestone, text="No errors in 100 jobs", category="quality"
    )
    make_criterion(
        world.admin, milestone=milestone, text="Dashboards exist", level="should",
        category="operational", checked=True,
    )  # fmt: skip
    make_risk(milestone, world.admin, title="Provisioning slow")
    make_blocker(milestone, world.admin, title="Waiting for approval")
    make_status_update(milestone, world.admin)
    ops = milestone.signoff_roles.get(name="Operations lead")
    signoffs.set_holder(ops, actor=world.admin, holder=world.member)
    signoffs.add_role(milestone, actor=world.admin, name="Security reviewer")
    signoffs.drop_role(milestone.signoff_roles.get(name="Product owner"), actor=world.admin)
    return milestone


def test_save_as_template_keeps_the_shape_and_nothing_of_this_run(world, rich_milestone):
    template = template_services.save_as_template(
        rich_milestone, actor=world.member, name="Queue rollout", description="For queues."
    )
    template.refresh_from_db()
    assert template.team == world.team
    assert template.duration_days == 21
    assert template.saved_from == rich_milestone.key
    assert template.created_by == world.member
    assert template.content == {
        "deliverables": [
            {
                "title": "Redis queue",
                "description": "Managed cluster",
                "acceptance_criteria": [
                    {"text": "Cluster deployed", "category": "technical", "level": "must",
                     "comparator": "", "target": "", "unit": ""},
                    {"text": "Throughput", "category": "technical", "level": "must",
                     "comparator": ">=", "target": "10", "unit": "jobs/s"},
                ],
            },
            {"title": "Runbook", "description": "", "acceptance_criteria": []},
        ],
        "success_criteria": [
            {"text": "No errors in 100 jobs", "category": "quality", "level": "must",
             "comparator": "", "target": "", "unit": ""},
            {"text": "Dashboards exist", "category": "operational", "level": "should",
             "comparator": "", "target": "", "unit": ""},
        ],
        "signoff_roles": ["Tech lead", "Operations lead", "Security reviewer"],
    }  # fmt: skip
    stored = json.dumps(template.content)
    for leaked in ("max", "ada", "2027", "accepted", "Provisioning", "Waiting", "12"):
        assert leaked not in stored


def test_a_milestone_without_dates_is_saved_with_the_default_duration(world):
    milestone = make_milestone(world.plan, world.admin, start_date=None, target_date=None)
    template = template_services.save_as_template(milestone, actor=world.member, name="Bare")
    assert template.duration_days == DEFAULT_DURATION_DAYS
    assert template.content["deliverables"] == []


def test_template_names_are_unique_per_team_whatever_the_case(world):
    template_services.save_as_template(world.milestone, actor=world.member, name="Rollout")
    with pytest.raises(ValidationError) as caught:
        template_services.save_as_template(world.milestone, actor=world.member, name=" rollout ")
    assert "already has a template with this name" in str(caught.value)
    other_plan = make_plan(world.other_team, world.outsider)
    other = make_milestone(other_plan, world.outsider)
    template_services.save_as_template(other, actor=world.outsider, name="Rollout")
    assert MilestoneTemplate.objects.filter(name__iexact="rollout").count() == 2


def test_a_template_name_is_required(world):
    with pytest.raises(ValidationError) as caught:
        template_services.save_as_template(world.milestone, actor=world.member, name="   ")
    assert "name" in caught.value.error_dict
    assert not MilestoneTemplate.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"deliverables": [{"title": ""}]}, "The title of deliverable 1 is empty."),
        (
            {"success_criteria": [{"text": "Fast", "comparator": "<="}]},
            "success criterion 1 needs both a comparator and a target, or neither.",
        ),
        ({"success_criteria": [{"text": "x", "level": "could"}]}, "must be one of must, should"),
        ({"signoff_roles": ["Tech lead", "tech lead"]}, "may appear only once"),
        ({"deliverables": [{"title": "x" * 201}]}, "longer than 200 characters"),
        ([], "must be an object"),
    ],
)
def test_stored_content_is_checked_by_the_model(world, content, message):
    template = MilestoneTemplate(team=world.team, name="Bad", duration_days=5, content=content)
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    assert message in " ".join(caught.value.message_dict["content"])


@pytest.mark.parametrize("days", [0, 366])
def test_duration_must_be_between_one_day_and_a_year(world, days):
    template = MilestoneTemplate(team=world.team, name="Odd", duration_days=days)
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    assert "duration_days" in caught.value.error_dict


# --- Creating a milestone from a template ---------------------------------------------------


def test_create_from_a_built_in_template_lays_out_dates_and_contents(world):
    foundation = BUILTIN_BY_REF["foundation"]
    milestone = template_services.create_milestone(
        foundation, plan=world.plan, actor=world.member, start_date=D(2027, 3, 1)
    )
    milestone.refresh_from_db()
    assert milestone.title == "Foundation"
    assert milestone.summary == foundation.summary
    assert (milestone.start_date, milestone.target_date) == (D(2027, 3, 1), D(2027, 3, 15))
    assert milestone.baseline_target_date == D(2027, 3, 15)
    assert milestone.plan == world.plan and milestone.team == world.team
    assert milestone.position == 1  # after the plan's existing milestone
    assert milestone.owner is None and milestone.status == "planned"
    deliverables = list(milestone.deliverables.order_by("position"))
    assert [d.title for d in deliverables] == [d.title for d in foundation.deliverables]
    assert [c.text for c in deliverables[1].criteria.order_by("position")] == [
        c.text for c in foundation.deliverables[1].acceptance_criteria
    ]
    success = list(milestone.criteria.order_by("position"))
    assert [(c.text, c.level, c.category) for c in success] == [
        (c.text, c.level, c.category) for c in foundation.success_criteria
    ]
    measured = next(c for c in success if c.target is not None)
    assert (measured.comparator, measured.target, measured.unit) == ("<=", 10, "minutes")
    assert not Criterion.objects.filter(deliverable__milestone=milestone, checked=True).exists()
    assert milestone.scope_hash  # the sign-off scope was kept current by the services


def test_every_row_is_created_through_the_services_and_logged(world):
    blueprint = BUILTIN_BY_REF["quick-win"]
    milestone = template_services.create_milestone(
        blueprint, plan=world.plan, actor=world.member, start_date=D(2027, 3, 1)
    )
    created = Activity.objects.filter(milestone=milestone, verb="created", actor=world.member)
    assert created.filter(object_type="milestone", object_id=milestone.pk).count() == 1
    assert created.filter(object_type="deliverable").count() == len(blueprint.deliverables)
    assert created.filter(object_type="criterion").count() == (
        blueprint.acceptance_criteria_count + len(blueprint.success_criteria)
    )


def test_the_team_default_roles_stay_and_the_template_adds_the_roles_they_lack(world):
    Team.objects.filter(pk=world.team.pk).update(signoff_roles=["Tech lead", "Security"])
    core = BUILTIN_BY_REF["core-development"]  # tech lead, product owner, operations lead
    milestone = template_services.create_milestone(
        core, plan=world.plan, actor=world.member, start_date=D(2027, 3, 1)
    )
    roles = list(milestone.signoff_roles.active().order_by("position"))
    assert [r.name for r in roles] == ["Tech lead", "Security", "Product owner", "Operations lead"]
    assert [r.position for r in roles] == [0, 1, 2, 3]
    assert all(r.holder_id is None for r in roles)
    logged = Activity.objects.filter(milestone=milestone, object_type="signoffrole")
    assert logged.count() == 2


def test_a_saved_template_recreates_the_milestone_shape(world, rich_milestone):
    template = template_services.save_as_template(
        rich_milestone, actor=world.member, name="Queue rollout", description="For queues."
    )
    copy = template_services.create_milestone(
        template.blueprint(), plan=world.plan, actor=world.member, start_date=D(2027, 6, 1),
        title="Second queue",
    )  # fmt: skip
    assert (copy.title, copy.summary) == ("Second queue", "For queues.")
    assert copy.target_date == D(2027, 6, 22)
    assert [d.title for d in copy.deliverables.order_by("position")] == ["Redis queue", "Runbook"]
    throughput = Criterion.objects.get(deliverable__milestone=copy, text="Throughput")
    assert (throughput.comparator, throughput.target, throughput.actual) == (">=", 10, None)
    assert not throughput.met
    assert not Deliverable.objects.filter(milestone=copy).exclude(status="planned").exists()
    assert not Deliverable.objects.filter(milestone=copy, owner__isnull=False).exists()
    assert set(copy.signoff_roles.active().values_list("name", flat=True)) == {
        "Tech lead", "Product owner", "Operations lead", "Security reviewer",
    }  # fmt: skip


def _fail_on_nth(monkeypatch, model, n: int):
    """Make the n-th `model` row created through the services break a model rule."""
    real = services.create_object
    seen = {"count": 0}

    def create_object(obj, *, actor):
        if isinstance(obj, model):
            seen["count"] += 1
            if seen["count"] == n:
                obj.title = obj.text = "x" * 400  # longer than any title or criterion text
        return real(obj, actor=actor)

    monkeypatch.setattr(services, "create_object", create_object)
    return seen


def _row_counts(team):
    return {
        "plans": Plan.objects.filter(team=team).count(),
        "milestones": Milestone.objects.filter(team=team).count(),
        "deliverables": Deliverable.objects.filter(milestone__team=team).count(),
        "criteria": Criterion.objects.count(),
        "roles": SignoffRole.objects.count(),
        "dependencies": Dependency.objects.filter(team=team).count(),
        "activity": Activity.objects.filter(team=team).count(),
        "sequence": Team.objects.get(pk=team.pk).milestone_sequence,
    }


def test_a_refusal_half_way_through_a_milestone_saves_nothing(world, monkeypatch):
    before = _row_counts(world.team)
    seen = _fail_on_nth(monkeypatch, Criterion, 5)
    with pytest.raises(ValidationError) as caught:
        template_services.create_milestone(
            BUILTIN_BY_REF["core-development"], plan=world.plan, actor=world.member,
            start_date=D(2027, 3, 1),
        )  # fmt: skip
    assert seen["count"] == 5  # the milestone, deliverables and four criteria were made first
    assert "text" in caught.value.error_dict
    assert _row_counts(world.team) == before


def test_a_refusal_in_the_fourth_milestone_saves_none_of_the_plan(world, monkeypatch):
    before = _row_counts(world.team)
    _fail_on_nth(monkeypatch, Deliverable, 12)  # phases 1–3 have 3 + 4 + 4 deliverables
    phases = [BUILTIN_BY_REF[ref] for ref in PRESETS["phases"][1]]
    with pytest.raises(ValidationError):
        template_services.create_plan(
            phases, actor=world.member, start_date=D(2027, 1, 4), team=world.team,
            plan_title="Export service",
        )  # fmt: skip
    assert _row_counts(world.team) == before


# --- Plans from a sequence of templates -----------------------------------------------------


def test_a_plan_of_the_five_phases_runs_back_to_back_with_dependencies(world):
    phases = [BUILTIN_BY_REF[ref] for ref in PRESETS["phases"][1]]
    plan, milestones = template_services.create_plan(
        phases, actor=world.member, start_date=D(2027, 1, 4), team=world.team,
        plan_title="Export service",
    )  # fmt: skip
    plan.refresh_from_db()
    assert plan.title == "Export service" and plan.team == world.team
    dates = [(m.title, m.start_date, m.target_date) for m in plan.milestones.order_by("position")]
    assert dates == [
        ("Research & architecture", D(2027, 1, 4), D(2027, 1, 14)),  # 10 days
        ("Foundation", D(2027, 1, 15), D(2027, 1, 29)),  # 14 days
        ("Core development", D(2027, 1, 30), D(2027, 2, 20)),  # 21 days
        ("Polish & production", D(2027, 2, 21), D(2027, 3, 3)),  # 10 days
        ("Maintenance & evolution", D(2027, 3, 4), D(2027, 4, 1)),  # 28 days
    ]
    assert (plan.start_date, plan.target_date) == (D(2027, 1, 4), D(2027, 4, 1))
    links = set(
        Dependency.objects.filter(team=world.team).values_list(
            "predecessor__key", "successor__key", "lag_days"
        )
    )
    keys = [m.key for m in milestones]
    assert links == {(a, b, 0) for a, b in itertools.pairwise(keys)}
    assert Activity.objects.filter(plan=plan, object_type="dependency", verb="created").count() == 4


def test_milestones_added_to_an_existing_plan_go_after_its_milestones(world):
    plan_before = (world.plan.start_date, world.plan.target_date)
    blueprints = [BUILTIN_BY_REF["core-feature"], BUILTIN_BY_REF["core-feature"]]
    plan, milestones = template_services.create_plan(
        blueprints, actor=world.member, start_date=D(2027, 2, 1), plan=world.plan
    )
    assert plan == world.plan
    assert [m.title for m in milestones] == ["Core feature 1", "Core feature 2"]
    assert [m.position for m in milestones] == [1, 2]
    assert milestones[1].start_date == D(2027, 2, 23)
    world.plan.refresh_from_db()
    assert (world.plan.start_date, world.plan.target_date) == plan_before


def test_lay_out_starts_each_slot_the_day_after_the_previous_target():
    quick, learning = BUILTIN_BY_REF["quick-win"], BUILTIN_BY_REF["learning-sprint"]
    slots = template_services.lay_out([quick, learning, quick], D(2027, 12, 27))
    assert [(s.title, s.start_date, s.target_date, s.days) for s in slots] == [
        ("Quick win 1", D(2027, 12, 27), D(2028, 1, 3), 7),
        ("Learning sprint", D(2028, 1, 4), D(2028, 1, 14), 10),
        ("Quick win 2", D(2028, 1, 15), D(2028, 1, 22), 7),
    ]


def test_a_plan_needs_at_least_one_template(world):
    with pytest.raises(ValidationError):
        template_services.create_plan(
            [], actor=world.member, start_date=D(2027, 1, 4), team=world.team, plan_title="X"
        )
    assert not Plan.objects.filter(title="X").exists()


def test_available_templates_are_built_ins_then_the_teams_own_only(world):
    template_services.save_as_template(world.milestone, actor=world.member, name="Ours")
    other_team = make_team("Other")
    other_plan = make_plan(other_team)
    template_services.save_as_template(make_milestone(other_plan), actor=None, name="Theirs")
    names = [b.name for b in template_services.available_blueprints(world.team)]
    assert names == [*(b.name for b in BUILTIN_TEMPLATES), "Ours"]
