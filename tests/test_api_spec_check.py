"""Milestone reads carry `spec_check`, scored by specs/check.py from what the list loads."""

import datetime

import pytest

from milestones.models import Criterion
from specs import check
from tests.factories import (
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_risk,
)


@pytest.fixture
def varied(world):
    """Milestones that break different rules, so a wrong count shows in the comparison."""
    bare = make_milestone(world.plan, world.admin, title="Bare")
    rich = make_milestone(
        world.plan,
        world.admin,
        title="Rich",
        owner=world.member,
        target_date=datetime.date(2027, 3, 1),
        rollback_plan="Switch the flag off.",
    )
    owned = make_deliverable(rich, world.admin, title="Owned", owner=world.member)
    make_deliverable(rich, world.admin, title="Unowned, no criteria")
    make_criterion(
        world.admin, deliverable=owned, text="Measured", target=250, comparator="<=", unit="ms"
    )
    make_criterion(world.admin, deliverable=owned, text="Plain")
    make_criterion(world.admin, milestone=rich, text="Must", level="must")
    make_criterion(
        world.admin,
        milestone=rich,
        text="Should, measured",
        level="should",
        target=5,
        comparator=">=",
        unit="%",
    )
    make_risk(rich, world.admin, title="Unmitigated")
    make_risk(rich, world.admin, title="Mitigated", mitigation="Load test first")
    make_blocker(rich, world.admin, title="Nobody's")
    make_blocker(
        rich,
        world.admin,
        title="Handled",
        owner=world.member,
        target_resolution_date=datetime.date(2027, 1, 1),
    )
    return [world.milestone, bare, rich]


def test_list_and_detail_spec_check_match_the_spec_check_rules(world, varied, client_for):
    client = client_for(world.member)
    listed = {
        row["id"]: row["spec_check"]
        for row in client.get("/api/v1/milestones/", {"page_size": 50}).json()["results"]
    }
    annotated = check.annotate_spec_counts(type(varied[0]).objects.filter(team=world.team))
    expected = {m.pk: check.spec_check_summary(m) for m in annotated}
    assert listed == expected
    rich = varied[2]
    detail = client.get(f"/api/v1/milestones/{rich.pk}/").json()["spec_check"]
    assert detail == expected[rich.pk]
    codes = {gap["code"] for gap in detail["gaps"]}
    assert {
        "deliverable_without_owner",
        "deliverable_without_acceptance_criteria",
        "risk_without_mitigation",
        "blocker_without_owner",
    } <= codes
    assert "missing_rollback_plan" not in codes
    assert detail["score"] > expected[varied[1].pk]["score"]


def test_a_new_criterion_changes_the_score_in_the_next_read(world, varied, client_for):
    client = client_for(world.member)
    bare = varied[1]
    before = client.get(f"/api/v1/milestones/{bare.pk}/").json()["spec_check"]["score"]
    make_criterion(world.admin, milestone=bare, text="Now it has one", level="must")
    assert Criterion.objects.filter(milestone=bare).count() == 1
    after = client.get(f"/api/v1/milestones/{bare.pk}/").json()["spec_check"]["score"]
    assert after > before
