"""Count the SQL queries of the dashboard at demo size and at ten times demo size.

    .venv/bin/python bench/dashboard_queries.py

Uses a throwaway SQLite database (or the one DATABASE_URL names, which must be disposable).
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "DATABASE_URL" not in os.environ:
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import Team, User  # noqa: E402
from milestones.models import Milestone  # noqa: E402
from tests.factories import grow_team  # noqa: E402


def dashboard_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/t/demo/")
    assert response.status_code == 200, response.status_code
    return len(queries)


def main():
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    client = Client()
    client.force_login(User.objects.get(username="bob"))
    team = Team.objects.get(slug="demo")
    demo = Milestone.objects.filter(team=team).count()
    print(f"demo size: {demo} milestones, {dashboard_queries(client)} queries")
    grow_team(team, User.objects.get(username="bob"), plans=(9 * demo) // 5, milestones_per_plan=5)
    grown = Milestone.objects.filter(team=team).count()
    print(f"10x demo:  {grown} milestones, {dashboard_queries(client)} queries")


if __name__ == "__main__":
    main()
