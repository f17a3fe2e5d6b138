"""Markdown import: the guide's example, messy documents, owners, sign-offs, dependencies, and
malformed input that must refuse cleanly with nothing saved."""

import datetime
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import Role
from milestones.models import (
    Activity,
    Blocker,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    Plan,
    Risk,
)
from specs.importer import import_document
from specs.models import SpecSection
from specs.parser import parse, parse_bytes
from tests.factories import add_member, make_milestone, make_user

FIXTURES = Path(__file__).parent / "fixtures" / "specs"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.fixture
def people(world):
    """Members the fixtures name: alice and bob by first name, ada and max already exist."""
    add_member(world.team, make_user("alice", first_name="Alice"), Role.MEMBER)
    add_member(world.team, make_user("bob", first_name="Bob"), Role.MEMBER)
    world.admin.first_name, world.admin.last_name = "Ada", "Lovelace"
    world.admin.save()
    return world


def everything_in(team) -> dict:
    return {
        "plans": Plan.objects.filter(team=team).count(),
        "milestones": Milestone.objects.filter(team=team).count(),
        "deliverables": Deliverable.objects.filter(milestone__team=team).count(),
        "criteria": Criterion.objects.filter(deliverable__milestone__team=team).count()
        + Criterion.objects.filter(milestone__team=team).count(),
        "risks": Risk.objects.filter(milestone__team=team).count(),
        "blockers": Blocker.objects.filter(milestone__team=team).count(),
        "sections": SpecSection.objects.filter(team=team).count(),
    }


def test_the_guide_example_imports_completely(people):
    world = people
    result = import_document(
        parse(fixture("guide_example.md")), team=world.team, actor=world.admin, plan=world.plan
    )
    assert result.saved and not result.errors
    assert result.created == {
        "milestones": 1,
        "deliverables": 5,
        "acceptance_criteria": 22,
        "success_criteria": 18,
        "risks": 4,
        "blockers": 2,
        "notes": 5,
    }
    m = result.milestones[0]
    assert (m.title, m.target_date, m.status) == (
        "Phase 1: Export Infrastructure Ready",
        datetime.date(2024, 1, 28),
        "in_progress",
    )
    assert m.owner is None and m.owning_group == "Backend Engineering Team"
    assert "10+ jobs per second" in m.summary
    assert m.rollback_plan.startswith("If this milestone fails") and "### Rollback Steps" in (
        m.rollback_plan
    )
    deliverables = list(m.deliverables.order_by("position"))
    assert [d.title for d in deliverables][:2] == [
        "Redis Job Queue (Production-Ready)",
        "Bull Job Queue Worker",
    ]
    redis, bull, k8s = deliverables[:3]
    assert redis.owner is None and redis.owner_label == "Infrastructure Team"
    assert (bull.owner.username, bull.owner_label) == ("alice", "Backend Engineer")
    assert k8s.owner.username == "bob" and k8s.status == "in_review"
    assert redis.target_date == datetime.date(2024, 1, 20)  # from the summary table, by row
    assert "Delivered: Code in feature branch" in bull.description
    assert "Status note: starts after technical setup" in deliverables[4].description
    groups = {(c.category, c.level) for c in m.criteria.all()}
    assert groups == {(c, "must") for c in ("technical", "operational", "quality", "documentation")}
    risk = m.risks.get(title="Redis provisioning delayed")
    assert (risk.likelihood, risk.impact, risk.score) == ("medium", "high", 6)
    approval = m.blockers.get(title="AWS Infrastructure Approval")
    assert approval.priority == "high" and approval.target_resolution_date == datetime.date(
        2024, 1, 12
    )
    assert approval.owner is None  # "Infrastructure Lead" is nobody in the team…
    assert approval.owner_label == "Infrastructure Lead"  # …but the document's words are kept
    assert approval.description == "Redis cluster requires infrastructure approval"
    assert m.blockers.get(title__startswith="Node.js").owner.username == "alice"
    headings = list(SpecSection.objects.filter(milestone=m).values_list("heading", flat=True))
    assert headings == [
        "Sign-Off Criteria",
        "Timeline & Dependencies",
        "Dependencies Waiting",
        "Acceptance Procedures",
        "Stakeholder Communication",
    ]
    timeline = SpecSection.objects.get(milestone=m, heading="Timeline & Dependencies")
    assert "Team Capacity" in timeline.body and "Risks & Mitigation" not in timeline.body
    assert Activity.objects.filter(milestone=m, verb="imported").exists()
    warnings = {(p.line, p.code) for p in result.warnings}
    assert (4, "unmatched_owner") in warnings and (161, "unmatched_owner") in warnings


def test_a_messy_plan_document_imports_with_its_statuses_dates_and_nested_bullets(people):
    world = people
    result = import_document(parse(fixture("plan_messy.md")), team=world.team, actor=world.member)
    assert result.saved, result.errors
    plan = result.plan
    assert plan.title == "Export Service Rollout"  # mojibake repaired, emoji taken off
    assert (plan.owner.username, plan.status) == ("ada", "active")
    assert (plan.start_date, plan.target_date) == (
        datetime.date(2024, 1, 8),
        datetime.date(2024, 3, 29),
    )
    first, second, third = plan.milestones.order_by("position")
    assert (first.title, first.status, first.priority) == (
        "Queue Foundation",
        "completed",
        "critical",
    )
    assert first.target_date == datetime.date(2024, 1, 28)  # "Jan 28": the plan's year
    assert first.summary == "Jobs can be queued and processed reliably."
    setup, hardening = first.deliverables.order_by("position")
    assert (setup.title, setup.status) == ("Phase 1: Setup", "accepted")
    assert hardening.status == "in_progress"
    redis = setup.criteria.get(text="Redis provisioned in staging")
    assert redis.checked and redis.checked_by == world.member
    assert redis.description == ("- sized for 10k requests/second\n- backups nightly")
    assert [c.checked for c in hardening.criteria.order_by("position")] == [True, False]
    throughput = first.criteria.get(text="Throughput sustained")
    assert (throughput.comparator, throughput.target, throughput.unit, throughput.actual) == (
        ">=",
        Decimal("10"),
        "jobs/s",
        Decimal("12"),
    )
    assert throughput.met
    assert first.risks.get(title="Redis approval slow").likelihood == "high"  # 🔴
    assert (second.owner.username, second.owning_group) == ("max", "Backend team")
    assert second.criteria.get(text="Chaos test in CI").level == "should"
    blocker = second.blockers.get()
    assert (blocker.owner, blocker.priority) == (world.viewer, "high")
    assert blocker.target_resolution_date == datetime.date(2024, 2, 2)
    assert (third.status, third.priority, third.target_date) == (
        "planned",
        "recommended",
        datetime.date(2024, 3, 29),
    )
    assert third.rollback_plan == "Turn the feature flag off; queued jobs drain."
    assert list(SpecSection.objects.filter(plan=plan).values_list("heading", flat=True)) == [
        "Status Legend",
        "Timeline",
    ]


def test_dates_in_several_formats():
    doc = """# M\n\n**Target Date**: 28 January 2024\n**Start Date**: 01/08/2024\n
## Deliverables\n\n### 1. A\n\n**Target Date**: Jan 20\n**Acceptance Criteria**:\n- [ ] x\n"""
    milestone = parse(doc).milestones[0]
    assert milestone.target_date == datetime.date(2024, 1, 28)
    assert milestone.start_date == datetime.date(2024, 1, 8)
    assert milestone.deliverables[0].target_date == datetime.date(2024, 1, 20)
    bad = parse("# M\n\n**Target Date**: next quarter-ish\n")
    assert bad.milestones[0].target_date is None
    assert [(p.line, p.code) for p in bad.problems] == [(3, "bad_date")]


def test_status_words_in_any_case_and_emoji():
    doc = """# M\n\n**Status**: ✅ COMPLETE\n\n## Deliverables\n\n### 1. A\n**Status**: not started
### 2. B 🚧\n### 3. C\n**Status**: IN REVIEW\n### 4. D — Done\n"""
    milestone = parse(doc).milestones[0]
    assert milestone.status == "completed"
    assert [d.status for d in milestone.deliverables] == [
        "planned",
        "in_progress",
        "in_review",
        "accepted",
    ]
    assert [d.title for d in milestone.deliverables] == ["A", "B", "C", "D"]


def test_owners_are_matched_by_username_email_and_name(people):
    world = people
    doc = (
        "# M\n\n**Owner**: MAX@example.com\n**Target Date**: 2024-01-01\n\n## Deliverables\n"
        "### 1. A\n**Owner**: Ada Lovelace\n### 2. B\n**Owner**: @vic\n"
        "### 3. C\n**Owner**: Somebody Else\n"
    )
    result = import_document(parse(doc), team=world.team, actor=world.admin, plan=world.plan)
    m = result.milestones[0]
    assert m.owner == world.member
    a, b, c = m.deliverables.order_by("position")
    assert (a.owner, b.owner, c.owner, c.owner_label) == (
        world.admin,
        world.viewer,
        None,
        "Somebody Else",
    )
    assert [p.message for p in result.warnings if p.code == "unmatched_owner"] == [
        "Deliverable “C”: “Somebody Else” is not a member of this team; kept as a label."
    ]


def test_an_outsider_is_never_matched(world):
    doc = "# M\n\n**Owner**: olga\n"
    result = import_document(parse(doc), team=world.team, actor=world.admin, plan=world.plan)
    assert result.milestones[0].owner is None
    assert result.milestones[0].owning_group == "olga"


def test_signoff_holders_are_set_by_admins_only(people):
    world = people
    text = fixture("milestone_measured.md")
    by_admin = import_document(parse(text), team=world.team, actor=world.admin, plan=world.plan)
    roles = {r.name: r.holder for r in by_admin.milestones[0].signoff_roles.active()}
    assert roles == {
        "Tech lead": world.admin,
        "Product owner": world.member,
        "Operations lead": None,
    }
    by_member = import_document(parse(text), team=world.team, actor=world.member, plan=world.plan)
    assert by_member.saved
    assert not by_member.milestones[0].signoff_roles.filter(holder__isnull=False).exists()
    assert "signoff_needs_admin" in {p.code for p in by_member.warnings}


def test_dependencies_link_to_the_team_and_to_the_document(world):
    make_milestone(world.plan, world.admin, title="Existing")  # MLS-002
    doc = """# P\n\n**Type**: Plan\n\n## Milestone 1: One\n**Key**: X-1\n**Status**: Planned
## Milestone 2: Two\n**Status**: Planned\n**Depends On**: X-1 (+2 days), MLS-002, MLS-999\n"""
    result = import_document(parse(doc), team=world.team, actor=world.admin)
    assert result.saved
    one, two = result.milestones
    links = {(d.predecessor_id, d.lag_days) for d in Dependency.objects.filter(successor=two)}
    existing = Milestone.objects.get(team=world.team, title="Existing")
    assert links == {(one.pk, 2), (existing.pk, 0)}
    assert [p.code for p in result.warnings] == ["unknown_dependency"]


def test_a_milestone_spec_needs_a_plan(world):
    result = import_document(parse("# Lonely\n"), team=world.team, actor=world.admin)
    assert not result.saved and [p.code for p in result.errors] == ["no_plan"]
    named = import_document(
        parse(f"# Found\n\n**Plan**: {world.plan.key} whatever\n"),
        team=world.team,
        actor=world.admin,
    )
    assert named.saved and named.plan == world.plan


def test_a_refused_object_rolls_the_whole_import_back(world):
    before = everything_in(world.team)
    doc = """# Backwards\n\n**Start Date**: 2024-03-01\n**Target Date**: 2024-02-01\n
## Deliverables\n### 1. A\n**Acceptance Criteria**:\n- [ ] x\n"""
    result = import_document(parse(doc), team=world.team, actor=world.admin, plan=world.plan)
    assert not result.saved
    assert [(p.line, p.code) for p in result.errors] == [(1, "invalid")]
    assert "cannot be before the start date" in result.errors[0].message
    assert everything_in(world.team) == before


def test_a_plan_document_refused_half_way_saves_nothing(world):
    before = everything_in(world.team)
    doc = """# P\n\n**Type**: Plan\n\n## Milestone 1: Fine\n**Status**: Planned\n
### Deliverables\n#### 1. A\n**Acceptance Criteria**:\n- [ ] x\n
## Milestone 2: Broken\n**Status**: Planned
**Start Date**: 2024-03-01\n**Target Date**: 2024-02-01\n"""
    result = import_document(parse(doc), team=world.team, actor=world.admin)
    assert not result.saved and result.errors[0].line == 13
    assert everything_in(world.team) == before


# --- Malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
        (b"", "empty"),
        (b"   \n\n  ", "empty"),
        (b"# x\n" + b"a" * (10 * 1024 * 1024), "too_large"),
        (b"no headings at all, just prose", "no_title"),
    ],
)
def test_malformed_files_are_refused_with_a_clear_error(world, data, code):
    before = everything_in(world.team)
    document = parse_bytes(data)
    assert [p.code for p in document.errors] == [code]
    assert document.errors[0].message
    result = import_document(document, team=world.team, actor=world.admin, plan=world.plan)
    assert not result.saved and everything_in(world.team) == before


def test_a_risks_table_with_missing_columns_is_an_error_on_its_line(world):
    before = everything_in(world.team)
    document = parse(fixture("risk_table_missing_columns.md"))
    assert [(p.line, p.code) for p in document.errors] == [(17, "risk_table_columns")]
    assert "no Likelihood or Mitigation column" in document.errors[0].message
    result = import_document(document, team=world.team, actor=world.admin, plan=world.plan)
    assert not result.saved and everything_in(world.team) == before


def test_latin1_files_are_read_with_a_warning():
    document = parse_bytes("# Café launch\n\n**Owner**: José\n".encode("latin-1"))
    assert document.milestones[0].title == "Café launch"
    assert [p.code for p in document.warnings] == ["not_utf8"]


def test_short_table_rows_and_empty_rows_are_warnings():
    doc = """# M\n\n## Risks\n\n| Risk | Likelihood | Impact | Mitigation |\n|---|---|---|---|
| Slow | High |\n| | Low | Low | x |\n| Odd | sometimes | High | y |\n"""
    document = parse(doc)
    assert not document.errors
    assert [(p.line, p.code) for p in document.warnings] == [
        (7, "short_row"),
        (7, "unknown_level"),  # the missing impact cell: Medium assumed
        (8, "empty_row"),
        (9, "unknown_level"),
    ]
    assert [(r.title, r.likelihood) for r in document.milestones[0].risks] == [
        ("Slow", "high"),
        ("Odd", "medium"),
    ]


def test_the_import_never_crashes_on_odd_markdown(world):
    odd = "\n".join(
        [
            "# T",
            "```",
            "# not a heading",
            "```",
            "## Deliverables",
            "### ",
            "- [ ]",
            "| a |",
            "####### seven",
            "## Risks",
            "|",
            "## Current Blockers",
            "- None",
            "**Owner**:",
        ]
    )
    result = import_document(parse(odd), team=world.team, actor=world.admin, plan=world.plan)
    assert result.saved or result.errors


# --- The command ----------------------------------------------------------------------------------


def command(*args):
    out = StringIO()
    try:
        call_command("import_spec", *args, stdout=out)
        return 0, out.getvalue()
    except SystemExit as exit:
        return exit.code, out.getvalue()


def test_import_spec_command_dry_run_then_import(people):
    world = people
    path = str(FIXTURES / "guide_example.md")
    before = everything_in(world.team)
    code, out = command(path, "--team", world.team.slug, "--plan", world.plan.key, "--dry-run")
    assert code == 0 and "Dry run: would create 1 milestones, 5 deliverables" in out
    assert everything_in(world.team) == before
    code, out = command(path, "--team", world.team.slug, "--plan", world.plan.key, "--user", "ada")
    assert code == 0 and f"Imported into {world.plan.key}" in out
    assert everything_in(world.team)["milestones"] == before["milestones"] + 1


def test_import_spec_command_refuses_bad_files_with_exit_1(world, tmp_path):
    big = tmp_path / "big.md"
    big.write_bytes(b"# Big\n" + b"x" * (10 * 1024 * 1024))
    code, out = command(str(big), "--team", world.team.slug, "--plan", world.plan.key)
    assert code == 1 and "at most 2 MB" in out
    code, out = command(
        str(FIXTURES / "risk_table_missing_columns.md"),
        "--team",
        world.team.slug,
        "--plan",
        world.plan.key,
        "--format",
        "json",
    )
    data = json.loads(out)
    assert code == 1 and data["saved"] is False
    assert data["errors"][0]["line"] == 17
