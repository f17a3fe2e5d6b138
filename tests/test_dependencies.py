"""Dependency rules: no self-links, no duplicates, no cross-team links, no cycles."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from milestones import services
from milestones.models import Activity, Dependency
from tests.factories import make_milestone, make_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(world):
    """MLS-001 (the world's milestone), MLS-002, MLS-003, MLS-004 in one plan, unlinked."""
    milestones = [world.milestone]
    milestones += [make_milestone(world.plan, world.admin) for _ in range(3)]
    assert [m.key for m in milestones] == ["MLS-001", "MLS-002", "MLS-003", "MLS-004"]
    return milestones


def link(world, predecessor, successor, **kwargs):
    return services.add_dependency(predecessor, successor, actor=world.member, **kwargs)


def predecessor_error(exc_info) -> list[str]:
    return exc_info.value.message_dict["predecessor"]


def test_it_links_two_milestones_of_the_same_team(world, chain):
    one, two = chain[:2]
    dependency = link(world, one, two)
    stored = Dependency.objects.get(pk=dependency.pk)
    assert (stored.predecessor, stored.successor, stored.team) == (one, two, world.team)
    assert str(stored) == "MLS-001 → MLS-002"
    assert list(two.predecessor_links.all()) == [stored]
    assert list(one.successor_links.all()) == [stored]


def test_it_stores_lag_days(world, chain):
    dependency = link(world, chain[0], chain[1], lag_days=12)
    assert Dependency.objects.get(pk=dependency.pk).lag_days == 12


def test_it_defaults_lag_days_to_zero(world, chain):
    dependency = link(world, chain[0], chain[1])
    assert Dependency.objects.get(pk=dependency.pk).lag_days == 0


def test_it_refuses_a_lag_over_a_year(world, chain):
    with pytest.raises(ValidationError) as exc:
        link(world, chain[0], chain[1], lag_days=366)
    assert "lag_days" in exc.value.message_dict
    assert not Dependency.objects.exists()


def test_it_allows_changing_the_lag_of_an_existing_link(world, chain):
    """The link being edited must not count as closing a cycle with itself."""
    link(world, chain[1], chain[2])
    dependency = link(world, chain[0], chain[1], lag_days=1)
    services.update_object(dependency, actor=world.member, lag_days=5)
    assert Dependency.objects.get(pk=dependency.pk).lag_days == 5


# --- Self-links -----------------------------------------------------------------------------


def test_it_refuses_a_self_dependency_in_clean(world):
    dependency = Dependency(team=world.team, predecessor=world.milestone, successor=world.milestone)
    with pytest.raises(ValidationError) as exc:
        dependency.full_clean()
    assert predecessor_error(exc) == ["A milestone cannot depend on itself."]


def test_it_refuses_a_self_dependency_through_services(world):
    with pytest.raises(ValidationError) as exc:
        link(world, world.milestone, world.milestone)
    assert predecessor_error(exc) == ["A milestone cannot depend on itself."]
    assert not Dependency.objects.exists()


def test_it_refuses_a_self_dependency_in_the_database(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        Dependency.objects.create(
            team=world.team, predecessor=world.milestone, successor=world.milestone
        )
    assert not Dependency.objects.exists()


def test_it_refuses_turning_a_link_into_a_self_link_in_the_database(world, chain):
    dependency = link(world, chain[0], chain[1])
    with pytest.raises(IntegrityError), transaction.atomic():
        Dependency.objects.filter(pk=dependency.pk).update(successor=chain[0])
    assert Dependency.objects.get(pk=dependency.pk).successor == chain[1]


# --- Duplicates -----------------------------------------------------------------------------


def test_it_refuses_a_duplicate_dependency(world, chain):
    link(world, chain[0], chain[1])
    with pytest.raises(ValidationError) as exc:
        link(world, chain[0], chain[1], lag_days=3)
    assert "This dependency already exists." in exc.value.messages
    assert Dependency.objects.count() == 1
    assert Dependency.objects.get().lag_days == 0


def test_it_refuses_a_duplicate_dependency_in_the_database(world, chain):
    link(world, chain[0], chain[1])
    with pytest.raises(IntegrityError), transaction.atomic():
        Dependency.objects.create(team=world.team, predecessor=chain[0], successor=chain[1])
    assert Dependency.objects.count() == 1


# --- Teams ----------------------------------------------------------------------------------


def test_it_refuses_a_dependency_across_teams(world):
    foreign = make_milestone(make_plan(world.other_team, world.outsider), world.outsider)
    for predecessor, successor in [(foreign, world.milestone), (world.milestone, foreign)]:
        with pytest.raises(ValidationError) as exc:
            link(world, predecessor, successor)
        assert predecessor_error(exc) == ["Dependencies can only link milestones of the same team."]
    assert not Dependency.objects.exists()


def test_it_refuses_a_dependency_filed_under_another_team(world, chain):
    dependency = Dependency(team=world.other_team, predecessor=chain[0], successor=chain[1])
    with pytest.raises(ValidationError) as exc:
        dependency.full_clean()
    assert exc.value.message_dict["successor"] == ["The milestones belong to another team."]


def test_it_files_a_dependency_under_the_milestones_team(world, chain):
    dependency = services.create_object(
        Dependency(team=world.other_team, predecessor=chain[0], successor=chain[1]),
        actor=world.member,
    )
    assert Dependency.objects.get(pk=dependency.pk).team == world.team


# --- Cycles ---------------------------------------------------------------------------------


def test_it_refuses_a_two_node_cycle_and_names_it(world, chain):
    one, two = chain[:2]
    link(world, one, two)
    with pytest.raises(ValidationError) as exc:
        link(world, two, one)
    assert predecessor_error(exc) == [
        "This dependency would create a cycle: MLS-002 → MLS-001 → MLS-002."
    ]
    assert list(Dependency.objects.values_list("predecessor__key", "successor__key")) == [
        ("MLS-001", "MLS-002")
    ]


def test_it_refuses_a_three_node_cycle_and_names_it_in_order(world, chain):
    one, two, three = chain[:3]
    link(world, two, three)
    link(world, three, one)
    with pytest.raises(ValidationError) as exc:
        link(world, one, two)
    assert predecessor_error(exc) == [
        "This dependency would create a cycle: MLS-001 → MLS-002 → MLS-003 → MLS-001."
    ]
    assert Dependency.objects.count() == 2


def test_it_refuses_closing_a_chain_back_to_its_start(world, chain):
    one, two, three, four = chain
    link(world, one, two)
    link(world, two, three)
    link(world, three, four)
    with pytest.raises(ValidationError) as exc:
        link(world, four, one)
    assert predecessor_error(exc) == [
        "This dependency would create a cycle: MLS-004 → MLS-001 → MLS-002 → MLS-003 → MLS-004."
    ]


def test_find_cycle_returns_the_keys_along_the_cycle(world, chain):
    one, two, three = chain[:3]
    link(world, one, two)
    link(world, two, three)
    closing = Dependency(team=world.team, predecessor=three, successor=one)
    assert closing.find_cycle() == ["MLS-003", "MLS-001", "MLS-002", "MLS-003"]
    harmless = Dependency(team=world.team, predecessor=one, successor=three)
    assert harmless.find_cycle() is None


def test_it_writes_nothing_when_a_cycle_is_refused(world, chain):
    one, two = chain[:2]
    link(world, one, two)
    activity_before = Activity.objects.count()
    with pytest.raises(ValidationError):
        link(world, two, one)
    assert Activity.objects.count() == activity_before
    assert Dependency.objects.count() == 1


def test_it_refuses_rewiring_an_existing_link_into_a_cycle(world, chain):
    one, two, three = chain[:3]
    link(world, one, two)
    movable = link(world, two, three)
    with pytest.raises(ValidationError) as exc:
        services.update_object(movable, actor=world.member, successor=one)
    assert predecessor_error(exc) == [
        "This dependency would create a cycle: MLS-002 → MLS-001 → MLS-002."
    ]
    assert Dependency.objects.get(pk=movable.pk).successor == three


def test_it_accepts_a_diamond(world, chain):
    top, left, right, bottom = chain
    link(world, top, left)
    link(world, top, right)
    link(world, left, bottom)
    link(world, right, bottom)
    assert Dependency.objects.count() == 4
    # A shortcut along the diamond's direction is no cycle either.
    link(world, top, bottom)
    assert Dependency.objects.count() == 5


def test_it_refuses_closing_a_diamond_into_a_cycle(world, chain):
    top, left, right, bottom = chain
    link(world, top, left)
    link(world, top, right)
    link(world, left, bottom)
    link(world, right, bottom)
    with pytest.raises(ValidationError) as exc:
        link(world, bottom, top)
    # Either branch closes the cycle; both start and end at the new link's predecessor.
    assert predecessor_error(exc)[0] in {
        "This dependency would create a cycle: MLS-004 → MLS-001 → MLS-002 → MLS-004.",
        "This dependency would create a cycle: MLS-004 → MLS-001 → MLS-003 → MLS-004.",
    }
    assert Dependency.objects.count() == 4


def test_it_ignores_other_teams_links_when_looking_for_cycles(world, chain):
    plan = make_plan(world.other_team, world.outsider)
    a, b = make_milestone(plan, world.outsider), make_milestone(plan, world.outsider)
    services.add_dependency(a, b, actor=world.outsider)
    # Same keys in our team, opposite direction: not a cycle.
    assert (a.key, b.key) == ("MLS-001", "MLS-002")
    link(world, chain[1], chain[0])
    assert Dependency.objects.filter(team=world.team).count() == 1
