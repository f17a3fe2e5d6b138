"""Throughput and latency of the milestone list in the REST API, and its SQL queries.

    .venv/bin/python bench/api_list.py [--milestones 50 --deliverables 6 --criteria 2 \
        --clients 8 --seconds 20 --runs 3 --database-url URL]

Builds one team with a plan of 50 milestones, each with 6 deliverables × 2 acceptance criteria
(bulk inserts, then one health evaluation), makes a personal API token, counts the SQL queries
of one `GET /api/v1/milestones/?plan=PLAN-001` in-process (Django's test client, after a
warm-up), then serves the app with gunicorn (2 workers, production-like settings, throttling
off) on a free loopback port and runs 8 concurrent clients, each sending that GET with
`Authorization: Bearer …` back to back for --seconds after a warm-up, --runs times. Prints
requests/s, median, p95 and max latency and response size of each run, the median run's
requests/s, and queries per request. The load generator shares the machine with the server
and the database, so on a 2-core machine it takes part of the CPU it measures; the load
average and a CPU speed check are printed around each run because other work on the machine
skews the figures.

The database is a throwaway SQLite file unless --database-url names a PostgreSQL database
(created if missing and flushed first: point it at a scratch database).
"""

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from workspace_latency import free_port, load_average, prepare_postgres  # noqa: E402

USERNAME = "bench-api"
PLAN_KEY = "PLAN-001"
PATH = f"/api/v1/milestones/?plan={PLAN_KEY}"


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build(args, workdir: Path) -> None:
    setup_django()
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.models import Membership, Role, Team, User
    from api.models import ApiToken
    from milestones.health import evaluate_team
    from milestones.models import Criterion, Deliverable, Milestone, Plan, today

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    on = today()
    with transaction.atomic():
        team = Team.objects.create(
            name="Bench", slug="bench", milestone_sequence=args.milestones, plan_sequence=1
        )
        user = User.objects.create_user(USERNAME, f"{USERNAME}@example.com", "x" * 20)
        Membership.objects.create(team=team, user=user, role=Role.MEMBER)
        plan = Plan.objects.create(team=team, key=PLAN_KEY, title="API bench plan", owner=user)
        milestones = Milestone.objects.bulk_create(
            Milestone(
                team=team, plan=plan, key=f"MLS-{m + 1:03d}", title=f"Milestone {m + 1}",
                summary="Why it matters. " * 5, owner=user, position=m,
                priority=["critical", "required", "recommended"][m % 3],
                status="in_progress" if m < 10 else "planned",
                start_date=on + datetime.timedelta(days=m * 7 - 30),
                target_date=on + datetime.timedelta(days=m * 7),
                baseline_target_date=on + datetime.timedelta(days=m * 7),
            )
            for m in range(args.milestones)
        )  # fmt: skip
        deliverables = Deliverable.objects.bulk_create(
            Deliverable(milestone=ms, title=f"Deliverable {d + 1}", position=d, owner=user,
                        status="accepted" if d == 0 else "planned")
            for ms in milestones
            for d in range(args.deliverables)
        )  # fmt: skip
        Criterion.objects.bulk_create(
            Criterion(deliverable=d, text=f"Criterion {c + 1} holds", position=c, checked=c == 0)
            for d in deliverables
            for c in range(args.criteria)
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    evaluate_team(team.pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    _, secret = ApiToken.objects.create_token(user, "bench")
    (workdir / "token").write_text(secret)
    criteria = len(deliverables) * args.criteria
    print(
        f"built {len(milestones)} milestones, {len(deliverables)} deliverables, {criteria:,} "
        f"criteria in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def count_queries(workdir: Path) -> None:
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {(workdir / 'token').read_text()}")
    client.get(PATH)  # the token's first use writes last_used_at
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PATH)
    assert response.status_code == 200, response.content[:300]
    rows = response.json()["results"]
    print(f"queries per request: {len(queries)} ({len(rows)} milestones in the response)")


def cpu_check() -> str:
    """How fast this machine runs Python right now: shared hosts vary by half from one
    minute to the next, and the figures with them."""
    started = time.perf_counter()
    total = 0
    for number in range(5_000_000):
        total += number
    return f"a 5,000,000-step Python loop took {time.perf_counter() - started:.2f} s"


def fetch(url: str, token: str) -> tuple[int, int]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, len(response.read())
    except urllib.error.HTTPError as error:
        return error.code, len(error.read())


def load(base: str, token: str, clients: int, seconds: float):
    url = base + PATH
    for _ in range(2 * clients):  # warm-up: both workers import and connect
        status, _ = fetch(url, token)
        if status != 200:
            sys.exit(f"FAILED: GET {PATH} answered {status}")
    latencies, failures, sizes = [], [], []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client():
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, size = fetch(url, token)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                (latencies if status == 200 else failures).append(
                    elapsed if status == 200 else status
                )
                sizes.append(size)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu_started = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_started
    print(f"load generator CPU: {client_cpu * 1000 / max(len(sizes), 1):.1f} ms per request")
    return latencies, failures, sizes, wall


def serve_and_measure(args, env: dict, workdir: Path) -> None:
    port = free_port()
    log = (workdir / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--threads", str(args.threads), "--timeout", "300"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if server.poll() is not None:
                sys.exit(
                    f"FAILED: gunicorn exited:\n{(workdir / 'gunicorn.log').read_text()[-3000:]}"
                )
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("FAILED: gunicorn did not answer /healthz within 30 s")
        token = (workdir / "token").read_text()
        measured = []
        for run in range(1, args.runs + 1):
            print(f"\nrun {run} of {args.runs}; load average before: {load_average()}")
            print(f"speed check: {cpu_check()}")
            latencies, failures, sizes, wall = load(base, token, args.clients, args.seconds)
            print(f"load average after:  {load_average()}")
            if failures:
                print(f"FAILED requests: {len(failures)} (statuses {sorted(set(failures))})")
            p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1]
            rate = len(latencies) / wall
            measured.append(rate)
            print(
                f"GET {PATH} with {args.clients} concurrent clients for {wall:.1f} s "
                f"(gunicorn, 2 workers):\n"
                f"  {len(latencies)} requests, {rate:.1f} requests/s\n"
                f"  latency median {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, "
                f"max {max(latencies):.1f} ms\n"
                f"  response {statistics.median(sizes):,.0f} bytes",
                flush=True,
            )
        if args.runs > 1:
            rates = ", ".join(f"{rate:.1f}" for rate in measured)
            print(f"\nmedian of {args.runs} runs: {statistics.median(measured):.1f} requests/s "
                  f"({rates})")  # fmt: skip
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
    parser.add_argument("--milestones", type=int, default=50)
    parser.add_argument("--deliverables", type=int, default=6, help="per milestone")
    parser.add_argument("--criteria", type=int, default=2, help="per deliverable")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="gunicorn threads per worker (1: the sync worker the Dockerfile runs)",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="load runs against the same server (median reported)"
    )
    parser.add_argument("--database-url", help="default: a throwaway SQLite file")
    parser.add_argument("--step", choices=["build", "queries"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "build":
        build(args, Path(args.workdir))
        return
    if args.step == "queries":
        count_queries(Path(args.workdir))
        return

    workdir = Path(tempfile.mkdtemp(prefix="milepost-api-bench-"))
    try:
        if args.database_url:
            if not args.database_url.startswith(("postgres://", "postgresql://")):
                parser.error("--database-url must be a postgres:// URL")
            prepare_postgres(args.database_url)
            database_url = args.database_url
        else:
            database_url = f"sqlite:///{workdir / 'db.sqlite3'}"
            print(f"database: SQLite ({workdir / 'db.sqlite3'})")
        (workdir / "static").mkdir()
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": "api-bench-only",
            "ALLOWED_HOSTS": "127.0.0.1,testserver",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
            "DATABASE_URL": database_url,
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "EMAIL_URL": "memory://",
            "MILEPOST_VAR_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
            "API_THROTTLE_RATE": "",  # measure the API, not the rate limit
        }
        env.pop("REDIS_URL", None)
        own = [
            f"--milestones={args.milestones}",
            f"--deliverables={args.deliverables}",
            f"--criteria={args.criteria}",
        ]
        for step in ("build", "queries"):
            subprocess.run(
                [sys.executable, __file__, *own, "--step", step, "--workdir", str(workdir)],
                env=env, cwd=ROOT, check=True,
            )  # fmt: skip
        serve_and_measure(args, env, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
