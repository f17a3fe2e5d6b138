"""Plain factories that fill in defaults; every domain write goes through the services."""

import datetime
import itertools

from accounts.models import Membership, Role, Team, User
from milestones import services
from milestones.models import (
    Blocker,
    Criterion,
    Deliverable,
    Milestone,
    Plan,
    Risk,
    StatusUpdate,
    today,
)

_numbers = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_user(username: str | None = None, **fields) -> User:
    username = username or f"user{next(_numbers)}"
    fields.setdefault("email", f"{username}@example.com")
    return User.objects.create_user(username=username, password=PASSWORD, **fields)


def make_team(name: str | None = None, **fields) -> Team:
    name = name or f"Team {next(_numbers)}"
    return Team.objects.create(name=name, **fields)


def add_member(team: Team, user: User | None = None, role: str = Role.MEMBER) -> User:
    user = user or make_user()
    Membership.objects.create(team=team, user=user, role=role)
    return user


def make_plan(team: Team, actor: User | None = None, **fields) -> Plan:
    fields.setdefault("title", f"Plan {next(_numbers)}")
    return services.create_object(Plan(team=team, **fields), actor=actor)


def make_milestone(plan: Plan, actor: User | None = None, **fields) -> Milestone:
    fields.setdefault("title", f"Milestone {next(_numbers)}")
    fields.setdefault("start_date", today() - datetime.timedelta(days=10))
    fields.setdefault("target_date", today() + datetime.timedelta(days=20))
    return services.create_object(Milestone(team=plan.team, plan=plan, **fields), actor=actor)


def make_deliverable(milestone: Milestone, actor: User | None = None, **fields) -> Deliverable:
    fields.setdefault("title", f"Deliverable {next(_numbers)}")
    return services.create_object(Deliverable(milestone=milestone, **fields), actor=actor)


def make_criterion(actor: User | None = None, **fields) -> Criterion:
    fields.setdefault("text", f"Criterion {next(_numbers)}")
    return services.create_object(Criterion(**fields), actor=actor)


def make_risk(milestone: Milestone, actor: User | None = None, **fields) -> Risk:
    fields.setdefault("title", f"Risk {next(_numbers)}")
    return services.create_object(Risk(milestone=milestone, **fields), actor=actor)


def make_blocker(milestone: Milestone, actor: User | None = None, **fields) -> Blocker:
    fields.setdefault("title", f"Blocker {next(_numbers)}")
    return services.create_object(Blocker(milestone=milestone, **fields), actor=actor)


def make_status_update(milestone: Milestone, actor: User | None = None, **fields) -> StatusUpdate:
    fields.setdefault("percent_complete", 40)
    fields.setdefault("confidence", 70)
    fields.setdefault("narrative", "Work is moving.")
    return services.post_status_update(milestone, actor=actor, **fields)


def grow_team(team: Team, owner: User, *, plans: int, milestones_per_plan: int) -> None:
    """Bulk-add plans with milestones, deliverables, criteria, risks and blockers.

    For size-independence checks only: rows go straight in with bulk_create, so no activity is
    written. Each milestone gets 2 deliverables with 3 acceptance criteria each, 3 success
    criteria, a risk, a blocker and a status update.
    """
    start = Plan.objects.filter(team=team).count()
    new_plans = Plan.objects.bulk_create(
        Plan(team=team, key=f"BULK-{start + i + 1:03d}", title=f"Bulk plan {start + i + 1}")
        for i in range(plans)
    )
    first = Milestone.objects.filter(team=team).count() + 1000
    milestones = Milestone.objects.bulk_create(
        Milestone(
            team=team,
            plan=plan,
            key=f"BLK-{first + p * milestones_per_plan + m}",
            title=f"Bulk milestone {m}",
            owner=owner,
            position=m,
            status=["planned", "in_progress", "completed"][m % 3],
            start_date=today() - datetime.timedelta(days=30),
            target_date=today() + datetime.timedelta(days=m - 5),
        )
        for p, plan in enumerate(new_plans)
        for m in range(milestones_per_plan)
    )
    deliverables = Deliverable.objects.bulk_create(
        Deliverable(milestone=milestone, title=f"Part {d}", position=d)
        for milestone in milestones
        for d in range(2)
    )
    Criterion.objects.bulk_create(
        [
            *(
                Criterion(deliverable=deliverable, text=f"Check {c}", checked=c == 0)
                for deliverable in deliverables
                for c in range(3)
            ),
            *(
                Criterion(milestone=milestone, text=f"Goal {c}", checked=c == 1)
                for milestone in milestones
                for c in range(3)
            ),
        ]
    )
    Risk.objects.bulk_create(Risk(milestone=milestone, title="Risk") for milestone in milestones)
    Blocker.objects.bulk_create(
        Blocker(milestone=milestone, title="Waiting") for milestone in milestones
    )
    StatusUpdate.objects.bulk_create(
        StatusUpdate(milestone=m, percent_complete=50, confidence=60, narrative="Going")
        for m in milestones
    )
