"""Weekly digests for 1,000 recipients through the outbox, one real worker, a real SMTP server.

    .venv/bin/python bench/digests.py [--recipients 1000 --per-team 20 --small 2 --large 40 \
        --database-url URL --redis-url URL]

Builds (bulk inserts, then one health evaluation per team) --recipients users in teams of
--per-team members; each team has one active plan, half the teams with --small milestones
and half with --large, with owners, sign-off holders, blockers and risks raised this week, so
every digest section has something in it. Every recipient is due (digest on Monday 00:00).

Then counts the SQL queries of building and rendering one digest (`build_digest` and
`render_digest`, in-process, after a warm-up) for a recipient whose plan has --small
milestones and for one whose plan has --large: the two counts are the same when the digest
costs a constant number of queries. Finally starts one `celery worker --pool=solo`, an
aiosmtpd sink on loopback and Redis (a private redis-server unless --redis-url), sends the
`notifications.queue_due_digests` task and times it until the sink holds the last digest:
wall time, mails per second, and when queueing (building every digest, inserting its outbox
row) finished. With one solo worker the queueing task runs to its end before the first
delivery task starts, so "first mail" is about the queueing time and the sending rate is the
part after it. Prints a short table.

The database is a throwaway SQLite file unless --database-url names a PostgreSQL database
(created if missing and flushed first: point it at a scratch database).
"""

import argparse
import datetime
import os
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from workspace_latency import load_average, prepare_postgres  # noqa: E402


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    # Production-like: DEBUG off in this process and in the worker it starts (inherits this).
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "milepost-bench-only-key")
    os.environ.setdefault("ALLOWED_HOSTS", "*")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from config.celery import app

    # What this process publishes while building (the health evaluation's at-risk alerts)
    # goes nowhere; the worker gets the real broker. (Not the CELERY_BROKER_URL variable:
    # Celery would prefer it over the broker given to the client app that sends the task.)
    app.conf.broker_url = "memory://"


def build(args):
    """The teams, plans and recipients; returns (a small-plan recipient, a large-plan one)."""
    from django.db import transaction

    from accounts.models import Membership, Role, Team, User
    from milestones.health import evaluate_team
    from milestones.models import Blocker, Milestone, Plan, Risk, SignoffRole, today
    from notifications.models import NotificationPreferences

    on = today()
    teams = max(2, args.recipients // args.per_team)
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(username=f"reader{i:05d}", email=f"reader{i:05d}@example.com", password="!")
            for i in range(teams * args.per_team)
        )
        users = list(User.objects.order_by("pk"))
        NotificationPreferences.objects.bulk_create(
            NotificationPreferences(user=user, digest_weekday=0, digest_hour=0) for user in users
        )
        small_reader = large_reader = None
        for t in range(teams):
            size = args.small if t % 2 == 0 else args.large
            members = users[t * args.per_team : (t + 1) * args.per_team]
            team = Team.objects.create(
                name=f"Team {t + 1:03d}", slug=f"team-{t + 1:03d}",
                milestone_sequence=size, plan_sequence=1,
            )  # fmt: skip
            Membership.objects.bulk_create(
                Membership(team=team, user=user, role=Role.ADMIN if i == 0 else Role.MEMBER)
                for i, user in enumerate(members)
            )
            plan = Plan.objects.create(
                team=team, key="PLAN-001", title=f"Rollout {t + 1}", owner=members[0],
                status="active", start_date=on - datetime.timedelta(days=60),
                target_date=on + datetime.timedelta(days=120),
            )  # fmt: skip
            milestones = Milestone.objects.bulk_create(
                milestone_row(team, plan, members, m, on) for m in range(size)
            )
            SignoffRole.objects.bulk_create(
                SignoffRole(milestone=milestone, name="Product owner", position=0,
                            holder=members[(i + 1) % len(members)])
                for i, milestone in enumerate(milestones)
            )  # fmt: skip
            Blocker.objects.bulk_create(
                Blocker(milestone=milestone, title=f"Waiting on {milestone.key}", raised_on=on,
                        target_resolution_date=on - datetime.timedelta(days=1))
                for milestone in milestones[::3]
            )  # fmt: skip
            Risk.objects.bulk_create(
                Risk(milestone=milestone, title=f"Risk to {milestone.key}", likelihood="high",
                     impact="high")
                for milestone in milestones[1::4]
            )  # fmt: skip
            if size == args.small and small_reader is None:
                small_reader = members[1]
            if size == args.large and large_reader is None:
                large_reader = members[1]
    for team in Team.objects.all():
        evaluate_team(team.pk)
    return small_reader, large_reader


def milestone_row(team, plan, members, m: int, on: datetime.date):
    """Every third completed this week; the rest some overdue, some due within two weeks,
    most later, a few days behind their baseline."""
    from milestones.models import Milestone

    completed = m % 3 == 0
    day = datetime.timedelta(days=1)
    target = on - (m % 5) * day if completed else on + ((m * 7) % 50 - 6) * day
    return Milestone(
        team=team, plan=plan, key=f"MLS-{m + 1:03d}", title=f"Milestone {m + 1}",
        owner=members[m % len(members)], position=m,
        status=["completed", "in_progress", "planned"][m % 3],
        start_date=target - 30 * day, target_date=target, baseline_target_date=target - 4 * day,
        completed_on=target if completed else None,
    )  # fmt: skip


def digest_queries(user) -> tuple[int, float, dict]:
    """Queries and seconds of building and rendering `user`'s digest, and its section sizes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.digest import build_digest, render_digest

    render_digest(build_digest(user))  # warm-up: templates, content types
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        digest = build_digest(user)
        render_digest(digest)
        elapsed = time.perf_counter() - started
    return len(queries), elapsed, digest.counts


def send_all(args, expected: int) -> dict:
    from celery import Celery
    from django.conf import settings

    from tests.services import private_redis, smtp_sink, start_outbox_worker, wait_until

    queue = f"milepost-bench-{uuid.uuid4().hex[:8]}"
    own_redis = nullcontext() if args.redis_url else private_redis()
    with smtp_sink() as sink, own_redis as redis:
        broker = args.redis_url or redis.url
        worker = start_outbox_worker(
            broker, queue, name="bench",
            extra_env={"EMAIL_URL": sink.url, "SITE_URL": settings.SITE_URL},
        )  # fmt: skip
        client = Celery(broker=broker, backend=broker, set_as_current=False)
        try:
            worker.wait_until_ready()
            started = time.monotonic()
            result = client.send_task("notifications.queue_due_digests", queue=queue)
            wait_until(
                lambda: sink.count >= expected or worker.poll() is not None,
                timeout=args.timeout,
                interval=0.01,
                message=f"{sink.count} of {expected} digests arrived in {args.timeout}s",
            )
            if worker.poll() is not None:
                raise RuntimeError(f"the worker died; see {worker.log_path}")
            last = time.monotonic() - started
            queued = result.get(timeout=60)
        finally:
            client.close()
            worker.stop()
        times = [mail.at - started for mail in sink.received]
    return {
        "queued": queued,
        "received": len(times),
        "first": min(times),
        "last": last,
        "distinct": len(sink.per_recipient()),
        "log": worker.log_path,
        "queueing_done": queueing_finished(worker.log_path),
    }


def queueing_finished(log_path: Path) -> str:
    """The worker's own timing of the queue_due_digests task, from its log."""
    for line in log_path.read_text(errors="replace").splitlines():
        if "notifications.queue_due_digests" in line and "succeeded in" in line:
            return line.split("succeeded in ", 1)[1].split("s:", 1)[0][:6] + " s"
    return "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--per-team", type=int, default=20)
    parser.add_argument("--small", type=int, default=2, help="milestones in a small plan")
    parser.add_argument("--large", type=int, default=40, help="milestones in a large plan")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default="", help="default: a private redis-server")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()

    database_url = args.database_url
    if database_url.startswith("postgres"):
        prepare_postgres(database_url)
    else:
        database_url = f"sqlite:///{tempfile.mkdtemp()}/digests.sqlite3"
        print(f"database: SQLite ({database_url})")
    setup_django(database_url)

    from django.core.management import call_command

    from accounts.models import User
    from milestones.models import Milestone

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    started = time.perf_counter()
    small_reader, large_reader = build(args)
    recipients = User.objects.filter(memberships__isnull=False).distinct().count()
    print(
        f"built {recipients} recipients, {Milestone.objects.count()} milestones "
        f"in {time.perf_counter() - started:.1f} s"
    )
    small = digest_queries(small_reader)
    large = digest_queries(large_reader)
    print(f"load average before sending: {load_average()}")
    sent = send_all(args, recipients)
    print(f"load average after:          {load_average()}")

    rate = sent["received"] / sent["last"]
    rows = [
        ("recipients (digests queued)", f"{recipients} ({sent['queued']})"),
        ("mails received / distinct recipients", f"{sent['received']} / {sent['distinct']}"),
        ("trigger → first mail", f"{sent['first']:.2f} s"),
        ("trigger → last mail (wall)", f"{sent['last']:.2f} s"),
        ("throughput, trigger → last mail", f"{rate:.1f} mails/s"),
        ("throughput, first → last mail (sending only)",
         f"{sent['received'] / max(sent['last'] - sent['first'], 1e-9):.1f} mails/s"),
        ("queue_due_digests task (in the worker)", sent["queueing_done"]),
        (f"queries per digest, plan of {args.small} milestones",
         f"{small[0]} ({small[1] * 1000:.0f} ms; {sum(small[2].values())} lines)"),
        (f"queries per digest, plan of {args.large} milestones",
         f"{large[0]} ({large[1] * 1000:.0f} ms; {sum(large[2].values())} lines)"),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    print()
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"\nworker log: {sent['log']}")
    if sent["received"] != recipients or sent["distinct"] != recipients:
        sys.exit("FAILED: not every recipient got exactly one digest")


if __name__ == "__main__":
    main()
