"""Evaluate health for a team with 10,000 milestones and 20,000 dependencies.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/milepost_bench \
        .venv/bin/python bench/health_evaluation.py

Builds the team with bulk inserts in a throwaway database (the one DATABASE_URL names is
flushed first, so point it at a scratch database; without it a temporary SQLite file is used),
then times three evaluations: the first (writes every milestone), a repeat (nothing changed),
and one after a change at the head of many chains. Prints wall time and query count of each,
and the query count of one evaluation of the 15-milestone demo team.
"""

import argparse
import datetime
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "DATABASE_URL" not in os.environ:
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import Membership, Team, User  # noqa: E402
from milestones.health import evaluate_team  # noqa: E402
from milestones.models import (  # noqa: E402
    Blocker,
    Criterion,
    Dependency,
    Milestone,
    Plan,
    Risk,
    StatusUpdate,
    today,
)


def build(plans: int, per_plan: int, links: int, seed: int = 7) -> Team:
    rng = random.Random(seed)
    team = Team.objects.create(name="Bench", slug="bench")
    owner = User.objects.create_user("bench-owner", "bench@example.com", "x")
    Membership.objects.create(team=team, user=owner, role="admin")
    day0 = today() - datetime.timedelta(days=120)
    new_plans = Plan.objects.bulk_create(
        Plan(team=team, key=f"PLAN-{p + 1:03d}", title=f"Plan {p + 1}",
             target_date=day0 + datetime.timedelta(days=400))
        for p in range(plans)
    )  # fmt: skip
    rows = []
    for p, plan in enumerate(new_plans):
        for m in range(per_plan):
            start = day0 + datetime.timedelta(days=m * 2 + rng.randint(0, 5))
            status = "completed" if m < per_plan // 5 else rng.choice(["planned", "in_progress"])
            finished = start + datetime.timedelta(days=19) if status == "completed" else None
            rows.append(
                Milestone(
                    team=team, plan=plan, key=f"MLS-{p * per_plan + m + 1:05d}",
                    title=f"Milestone {m}", owner=owner, position=m, status=status,
                    start_date=start, target_date=start + datetime.timedelta(days=20),
                    baseline_target_date=start + datetime.timedelta(days=20),
                    completed_on=finished,
                )
            )  # fmt: skip
    milestones = Milestone.objects.bulk_create(rows, batch_size=2000)
    ids = [m.pk for m in milestones]
    # Acyclic by construction: every link goes from an earlier milestone to a later one.
    edges = set()
    while len(edges) < links:
        a, b = sorted(rng.sample(range(len(ids)), 2))
        if b - a < 400:
            edges.add((ids[a], ids[b]))
    Dependency.objects.bulk_create(
        (Dependency(team=team, predecessor_id=a, successor_id=b, lag_days=rng.choice([0, 0, 2]))
         for a, b in edges),
        batch_size=5000,
    )  # fmt: skip
    Criterion.objects.bulk_create(
        (Criterion(milestone_id=pk, text="Goal", checked=rng.random() < 0.4)
         for pk in ids for _ in range(3)),
        batch_size=5000,
    )  # fmt: skip
    Risk.objects.bulk_create(
        (Risk(milestone_id=pk, title="Risk", likelihood="high", impact="high")
         for pk in ids[::7]),
        batch_size=5000,
    )  # fmt: skip
    Blocker.objects.bulk_create(
        (Blocker(milestone_id=pk, title="Waiting", raised_on=day0,
                 target_resolution_date=day0 + datetime.timedelta(days=30))
         for pk in ids[::11]),
        batch_size=5000,
    )  # fmt: skip
    StatusUpdate.objects.bulk_create(
        (StatusUpdate(milestone_id=pk, percent_complete=40, confidence=rng.randint(30, 90),
                      narrative="Update", health=rng.choice(["on_track", "at_risk"]))
         for pk in ids[::2]),
        batch_size=5000,
    )  # fmt: skip
    return team


def timed(team_id: int, label: str):
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        outcome = evaluate_team(team_id)
        elapsed = time.perf_counter() - started
    print(
        f"{label:<34} {elapsed:6.2f} s  {len(queries):2d} queries  "
        f"({outcome.evaluated} milestones, {outcome.changed} changed, "
        f"{len(outcome.transitions)} health changes)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plans", type=int, default=50)
    parser.add_argument("--per-plan", type=int, default=200)
    parser.add_argument("--links", type=int, default=20_000)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    call_command("seed_demo", verbosity=0)
    demo = Team.objects.get(slug="demo")
    print(f"database: {connection.vendor}")
    timed(demo.pk, "demo team, repeat evaluation")

    started = time.perf_counter()
    team = build(args.plans, args.per_plan, args.links)
    print(
        f"built {Milestone.objects.filter(team=team).count()} milestones and "
        f"{Dependency.objects.filter(team=team).count()} dependencies "
        f"in {time.perf_counter() - started:.1f} s"
    )
    timed(team.pk, "first evaluation (writes all)")
    timed(team.pk, "repeat evaluation (no change)")
    heads = Milestone.objects.filter(team=team, status="in_progress").order_by("pk")[:50]
    Milestone.objects.filter(pk__in=[m.pk for m in heads]).update(
        target_date=today() + datetime.timedelta(days=60), start_date=today()
    )
    timed(team.pk, "after moving 50 milestones")


if __name__ == "__main__":
    main()
