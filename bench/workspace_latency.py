"""Median and p95 latency of the dashboard, timeline, a plan and a large milestone page.

    .venv/bin/python bench/workspace_latency.py [--plans 50 --milestones 40 --deliverables 10 \
        --criteria 5 --requests 30 --database-url URL]

Builds one large team with bulk inserts (by default 50 plans × 40 milestones, each with
10 deliverables × 5 acceptance criteria, success criteria, risks, blockers, status updates,
dependencies between consecutive milestones of a plan, and activity; one milestone of the first
plan is made extra large), runs the health evaluation once, then serves the app with gunicorn
(2 workers, production-like settings) on a free loopback port, logs in through the login form
and times sequential GETs of each page after two warm-up requests. Prints the build time, then
page, bytes, median, p95 and max in milliseconds.

The database is a throwaway SQLite file in a temporary folder unless --database-url names one,
e.g. postgres://postgres@127.0.0.1:5432/milepost_bench; that database is created if missing and
flushed first, so point it at a scratch database. There the tables are ANALYZEd before the
health evaluation and VACUUM ANALYZEd after it, as autovacuum would soon do: the dashboard's
figures depend on it (PostgreSQL's JIT kicks in above a planner cost estimate).
"""

import argparse
import datetime
import http.cookiejar
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEAM_SLUG = "bench"
ADMIN, PASSWORD = "bench-admin", "bench-password-1"
MEMBERS = ["ana", "ben", "chen", "dara"]
VIEWER = "viewer"
REQUEST_TIMEOUT = 300  # seconds; gunicorn gets the same, so a slow page is measured, not killed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plan_key(p: int) -> str:
    return f"PLAN-{p + 1:03d}"


def milestone_key(plans_before: int, per_plan: int, m: int) -> str:
    return f"MLS-{plans_before * per_plan + m + 1:06d}"


def big_index(per_plan: int) -> int:
    """Position, in the first plan, of the extra-large milestone."""
    return per_plan // 2


# --- Building the team (runs in a subprocess with DATABASE_URL set) ---------------------------


def build(args) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()

    from django.core.management import call_command
    from django.db import connection, transaction

    from milestones.health import evaluate_team

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    migrated = time.perf_counter()
    with transaction.atomic():
        team, counts = insert_team(args)
    postgres = connection.vendor == "postgresql"
    if postgres:
        # What autovacuum does soon after a bulk load. Without planner statistics the
        # evaluation below took 90 s instead of under 1 s.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    inserted = time.perf_counter()
    outcome = evaluate_team(team.pk)
    evaluated = time.perf_counter()
    if postgres:
        # The evaluation rewrites every milestone row. Until autovacuum gets to those dead
        # rows, the planner's cost estimate for the dashboard's progress query is about 2.7
        # times higher, high enough for JIT inlining and optimisation (+0.6 s a request).
        # Measure the steady state that autovacuum leaves behind.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    vacuumed = time.perf_counter()
    analyzed = " (with ANALYZE)" if postgres else ""
    print(", ".join(f"{n:,} {name}" for name, n in counts.items()))
    print(
        f"built in {vacuumed - started:.1f} s: migrate + flush {migrated - started:.1f} s, "
        f"inserts {inserted - migrated:.1f} s{analyzed}, "
        f"health evaluation {evaluated - inserted:.1f} s "
        f"({outcome.changed:,} milestones written, {len(outcome.transitions):,} health changes)"
        + (f", VACUUM ANALYZE {vacuumed - evaluated:.1f} s" if postgres else ""),
        flush=True,
    )


def chunked(rows, size: int = 10_000):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_team(args):
    """One team with plans, milestones and everything a milestone holds, by bulk_create."""
    import random
    from decimal import Decimal

    from django.utils import timezone

    from accounts.models import Membership, Role, Team, User
    from milestones.models import (
        Activity,
        Blocker,
        Criterion,
        Deliverable,
        Dependency,
        Milestone,
        Plan,
        Risk,
        Stakeholder,
        StatusUpdate,
        today,
    )

    rng = random.Random(7)
    on = today()
    now = timezone.now()
    total = args.plans * args.milestones
    team = Team.objects.create(
        name="Bench", slug=TEAM_SLUG, milestone_sequence=total, plan_sequence=args.plans
    )
    admin = User.objects.create_user(
        ADMIN, f"{ADMIN}@example.com", PASSWORD, first_name="Bench", last_name="Admin"
    )
    people = [admin]
    for name in [*MEMBERS, VIEWER]:
        user = User(username=name, email=f"{name}@example.com", first_name=name.title())
        user.set_unusable_password()
        people.append(user)
    User.objects.bulk_create(people[1:])
    people = list(User.objects.filter(username__in=[ADMIN, *MEMBERS, VIEWER]).order_by("pk"))
    roles = {ADMIN: Role.ADMIN, VIEWER: Role.VIEWER}
    Membership.objects.bulk_create(
        Membership(team=team, user=u, role=roles.get(u.username, Role.MEMBER)) for u in people
    )
    writers = [u for u in people if u.username != VIEWER]

    def days(n: int) -> datetime.date:
        return on + datetime.timedelta(days=n)

    plans = Plan.objects.bulk_create(
        Plan(
            team=team, key=plan_key(p), title=f"Plan {p + 1:03d} rollout",
            summary="Ship the thing in stages, measured at every step.",
            owner=writers[p % len(writers)], start_date=days(-150 + (p % 10) * 3),
            target_date=days(-150 + (p % 10) * 3 + args.milestones * 6 + 30),
        )
        for p in range(args.plans)
    )  # fmt: skip
    Criterion.objects.bulk_create(
        Criterion(plan=plan, text=f"Plan goal {c + 1}", checked=c == 0, position=c)
        for plan in plans
        for c in range(2)
    )
    Stakeholder.objects.bulk_create(
        Stakeholder(plan=plan, user=writers[(i + 1) % len(writers)], channel="Weekly sync",
                    content="Progress and scope", position=0)
        for i, plan in enumerate(plans)
    )  # fmt: skip

    big = big_index(args.milestones)
    rows = []
    for p, plan in enumerate(plans):
        for m in range(args.milestones):
            start = plan.start_date + datetime.timedelta(days=m * 6)
            target = start + datetime.timedelta(days=20)
            if p == 0 and m == big:
                start, target = days(-20), days(30)
            if target < on and rng.random() < 0.85:
                status = "completed"
            elif start <= on:
                status = "in_progress"
            else:
                status = "cancelled" if rng.random() < 0.02 else "planned"
            if p == 0 and m == big:
                status = "in_progress"
            slip = rng.choice([0, 0, 0, 3, 7])
            rows.append(
                Milestone(
                    team=team, plan=plan, key=milestone_key(p, args.milestones, m),
                    title=f"Milestone {m + 1} of plan {p + 1}", summary="Why this matters. " * 8,
                    owner=writers[(p + m) % len(writers)], owning_group=f"Group {p % 5 + 1}",
                    priority=["critical", "required", "recommended"][m % 3], status=status,
                    start_date=start, target_date=target + datetime.timedelta(days=slip),
                    baseline_target_date=target,
                    completed_on=target if status == "completed" else None,
                    estimated_effort="3 weeks", position=m,
                    rollback_plan="Switch the flag off." if m % 4 == 0 else "",
                )
            )  # fmt: skip
    milestones = Milestone.objects.bulk_create(rows, batch_size=2000)

    def shape(ms) -> tuple[int, int]:
        if ms.key == milestone_key(0, args.milestones, big):
            return args.big_deliverables, args.big_criteria
        return args.deliverables, args.criteria

    def deliverable_status(milestone_status: str, d: int) -> str:
        if milestone_status == "completed":
            return "accepted"
        if milestone_status == "in_progress":
            return ["accepted", "in_review", "in_progress", "planned"][d % 4]
        return "planned"

    deliverables = []  # (pk, its status, its milestone's status, criteria to give it)
    for batch in chunked(
        Deliverable(
            milestone=ms, title=f"Deliverable {d + 1}", position=d,
            owner=writers[d % len(writers)] if d % 3 else None,
            owner_label="" if d % 3 else "Infra team",
            status=deliverable_status(ms.status, d), target_date=ms.target_date,
        )
        for ms in milestones
        for d in range(shape(ms)[0])
    ):  # fmt: skip
        deliverables += [
            (d.pk, d.status, d.milestone.status, shape(d.milestone)[1])
            for d in Deliverable.objects.bulk_create(batch, batch_size=2000)
        ]

    def criterion(c: int, status: str, done: bool, **owner) -> Criterion:
        measured = c % 5 == 4
        checked = done or (status == "in_progress" and rng.random() < 0.5)
        return Criterion(
            **owner, text=f"Criterion {c + 1} holds", position=c,
            category=["technical", "operational", "quality", "documentation"][c % 4],
            level="should" if c % 3 == 2 else "must",
            target=Decimal("200") if measured else None, comparator="<=" if measured else "",
            unit="ms" if measured else "",
            actual=(Decimal(rng.choice([150, 180, 250])) if measured and status != "planned"
                    else None),
            checked=checked and not measured,
            checked_by=writers[c % len(writers)] if checked and not measured else None,
            checked_at=now - datetime.timedelta(days=c) if checked and not measured else None,
        )  # fmt: skip

    acceptance = (
        criterion(c, status, d_status == "accepted", deliverable_id=pk)
        for pk, d_status, status, per_deliverable in deliverables
        for c in range(per_deliverable)
    )
    criteria = 0
    for batch in chunked(acceptance):
        criteria += len(Criterion.objects.bulk_create(batch, batch_size=2000))
    success = (
        criterion(c, ms.status, ms.status == "completed", milestone=ms)
        for ms in milestones
        for c in range(args.success)
    )
    for batch in chunked(success):
        criteria += len(Criterion.objects.bulk_create(batch, batch_size=2000))

    open_ones = [ms for ms in milestones if ms.status in ("planned", "in_progress")]
    risks = Risk.objects.bulk_create(
        (
            Risk(
                milestone=ms, title=f"Risk {r + 1}", position=r,
                likelihood=["low", "medium", "high"][(i + r) % 3],
                impact=["medium", "high", "low"][(i + r) % 3],
                mitigation="" if (i + r) % 4 == 0 else "Have a fallback ready.",
                owner=writers[r % len(writers)],
                status="closed" if ms.status == "completed" else "open",
            )
            for i, ms in enumerate(milestones)
            for r in range(args.risks)
        ),
        batch_size=2000,
    )  # fmt: skip
    blockers = Blocker.objects.bulk_create(
        (
            Blocker(
                milestone=ms, title="Waiting on another team", priority="high",
                owner=writers[i % len(writers)], next_action="Chase it at the sync",
                raised_on=days(-30), target_resolution_date=days(-5 if i % 2 else 10),
                resolved_on=days(-2) if i % 3 == 0 else None,
                resolution="Unblocked." if i % 3 == 0 else "",
            )
            for i, ms in enumerate(open_ones)
            if i % 4 == 0
        ),
        batch_size=2000,
    )  # fmt: skip
    updates = StatusUpdate.objects.bulk_create(
        (
            StatusUpdate(
                milestone=ms, author=ms.owner, health=rng.choice(["on_track", "at_risk"]),
                percent_complete=min(100, 20 * (u + 1)), confidence=rng.randint(30, 95),
                narrative="Progress this week, and what is next.",
                created_at=now - datetime.timedelta(days=7 * u + (i % 3) * 6),
            )
            for i, ms in enumerate(milestones)
            if ms.status in ("in_progress", "completed")
            for u in range(args.updates)
        ),
        batch_size=2000,
    )  # fmt: skip
    links = Dependency.objects.bulk_create(
        (
            Dependency(team=team, predecessor=before, successor=after, lag_days=m % 3)
            for p in range(args.plans)
            for m, (before, after) in enumerate(
                zip(
                    milestones[p * args.milestones : (p + 1) * args.milestones - 1],
                    milestones[p * args.milestones + 1 : (p + 1) * args.milestones],
                    strict=True,
                )
            )
        ),
        batch_size=2000,
    )
    moved = {"target_date": ["2025-01-01", "2025-01-08"]}
    verbs = [("created", "milestone", {}), ("updated", "milestone", moved),
             ("added", "deliverable", {}), ("checked", "criterion", {}),
             ("posted", "statusupdate", {})]  # fmt: skip
    activity = Activity.objects.bulk_create(
        (
            Activity(
                team=team, plan=ms.plan, milestone=ms, actor=writers[(i + a) % len(writers)],
                verb=verb, object_type=kind, object_id=ms.pk, object_repr=str(ms)[:200],
                changes=changes,
                created_at=now - datetime.timedelta(minutes=(len(milestones) - i) * 60 + a * 7),
            )
            for i, ms in enumerate(milestones)
            for a, (verb, kind, changes) in enumerate(verbs[: args.activity])
        ),
        batch_size=2000,
    )  # fmt: skip
    counts = {
        "plans": len(plans),
        "milestones": len(milestones),
        "deliverables": len(deliverables),
        "criteria": criteria,
        "risks": len(risks),
        "blockers": len(blockers),
        "status updates": len(updates),
        "dependencies": len(links),
        "activity rows": len(activity),
    }
    return team, counts


# --- Serving and timing ----------------------------------------------------------------------


def prepare_postgres(url: str) -> None:
    """Create the database `url` names when it does not exist yet."""
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    server = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": urllib.parse.unquote(parts.username or "postgres"),
        "dbname": "postgres",
    }
    if parts.password:
        server["password"] = urllib.parse.unquote(parts.password)
    with psycopg.connect(**server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", flush=True)
        version = conn.execute("SHOW server_version").fetchone()[0]
    print(f"database: PostgreSQL {version.split()[0]} ({name} on {server['host']})", flush=True)


def load_average() -> str:
    return (
        ", ".join(f"{n:.2f}" for n in os.getloadavg()) + f" (1, 5, 15 min; {os.cpu_count()} CPUs)"
    )


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """Report a redirect as it is (a redirect to the login page is a failure, not a page)."""

    def redirect_request(self, *args, **kwargs):
        return None


def fetch(opener, url: str, data: dict | None = None) -> tuple[int, bytes, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=REQUEST_TIMEOUT) as response:
            return response.status, response.read(), response.headers.get("Location", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Location", "")


def log_in(opener, jar, base: str) -> None:
    status, page, _ = fetch(opener, f"{base}/accounts/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if status != 200 or token is None or not any(c.name == "csrftoken" for c in jar):
        sys.exit(f"FAILED: the login page answered {status} without a CSRF token")
    form = {"csrfmiddlewaretoken": token.group(1).decode(), "username": ADMIN, "password": PASSWORD}
    status, _, location = fetch(opener, f"{base}/accounts/login/", form)
    if (
        status != 302
        or "/accounts/login" in location
        or not any(c.name == "sessionid" for c in jar)
    ):
        sys.exit(f"FAILED: logging in as {ADMIN} answered {status} (to {location or 'nowhere'})")


def get_ok(opener, url: str) -> bytes:
    status, body, location = fetch(opener, url)
    if status != 200:
        detail = f" to {location}" if location else ""
        sys.exit(f"FAILED: GET {url} answered {status}{detail}: {body[:300]!r}")
    return body


def measure(opener, base: str, pages: dict[str, str], requests: int) -> None:
    print(f"\n{requests} sequential GETs per page after 2 warm-ups:")
    print(f"{'page':<18} {'bytes':>10} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  path")
    for label, path in pages.items():
        for _ in range(2):
            get_ok(opener, base + path)
        times, size = [], 0
        for _ in range(requests):
            started = time.perf_counter()
            size = len(get_ok(opener, base + path))
            times.append((time.perf_counter() - started) * 1000)
        # p95 by linear interpolation between the closest ranks (NumPy's default).
        p95 = statistics.quantiles(times, n=20, method="inclusive")[-1]
        print(
            f"{label:<18} {size:>10,} {statistics.median(times):>10.1f} {p95:>8.1f} "
            f"{max(times):>8.1f}  {path}",
            flush=True,
        )


def serve_and_measure(args, env: dict, workdir: Path) -> None:
    port = free_port()
    log = (workdir / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--timeout", str(REQUEST_TIMEOUT)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if server.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("FAILED: gunicorn did not answer /healthz within 30 s")
        if server.poll() is not None:
            log.flush()
            sys.exit(f"FAILED: gunicorn exited:\n{(workdir / 'gunicorn.log').read_text()[-3000:]}")
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirects)
        log_in(opener, jar, base)
        big = milestone_key(0, args.milestones, big_index(args.milestones))
        typical = milestone_key(1, args.milestones, big_index(args.milestones))
        pages = {
            "dashboard": f"/t/{TEAM_SLUG}/",
            "timeline": f"/t/{TEAM_SLUG}/timeline/",
            "plan": f"/t/{TEAM_SLUG}/plans/{plan_key(0)}/",
            "large milestone": f"/t/{TEAM_SLUG}/m/{big}/",
            "typical milestone": f"/t/{TEAM_SLUG}/m/{typical}/",
        }
        print(
            f"large milestone {big}: {args.big_deliverables} deliverables × {args.big_criteria} "
            f"criteria; typical milestone {typical}: {args.deliverables} × {args.criteria}"
        )
        # Other work on the machine inflates the figures; the load average says how busy it was.
        print(f"load average before timing: {load_average()}")
        measure(opener, base, pages, args.requests)
        print(f"load average after timing:  {load_average()}")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=50)
    parser.add_argument("--milestones", type=int, default=40, help="per plan")
    parser.add_argument("--deliverables", type=int, default=10, help="per milestone")
    parser.add_argument("--criteria", type=int, default=5, help="acceptance, per deliverable")
    parser.add_argument("--big-deliverables", type=int, default=50)
    parser.add_argument("--big-criteria", type=int, default=10)
    parser.add_argument("--success", type=int, default=3, help="success criteria per milestone")
    parser.add_argument("--risks", type=int, default=2, help="per milestone")
    parser.add_argument("--updates", type=int, default=3, help="per started milestone")
    parser.add_argument("--activity", type=int, default=5, help="rows per milestone, at most 5")
    parser.add_argument("--requests", type=int, default=30, help="timed GETs per page")
    parser.add_argument("--database-url", help="default: a throwaway SQLite file")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.milestones < 2 or args.plans < 2 or args.requests < 2:
        parser.error("need at least 2 plans, 2 milestones per plan and 2 requests")
    if args.build_only:
        build(args)
        return

    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="milepost-latency-"))
    try:
        if args.database_url:
            if not args.database_url.startswith(("postgres://", "postgresql://")):
                parser.error("--database-url must be a postgres:// URL")
            prepare_postgres(args.database_url)
            database_url = args.database_url
        else:
            database_url = f"sqlite:///{workdir / 'db.sqlite3'}"
            import sqlite3

            print(f"database: SQLite {sqlite3.sqlite_version} ({workdir / 'db.sqlite3'})")
        (workdir / "static").mkdir()
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": "workspace-latency-bench-only",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
            "DATABASE_URL": database_url,
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "EMAIL_URL": "memory://",
            "MILEPOST_VAR_DIR": str(workdir),  # cache, broker and mail files stay out of var/
            "LOG_LEVEL": "WARNING",
        }
        env.pop("REDIS_URL", None)
        sys.stdout.flush()
        subprocess.run(
            [sys.executable, __file__, "--build-only", *sys.argv[1:]],
            env=env, cwd=ROOT, check=True,
        )  # fmt: skip
        serve_and_measure(args, env, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
