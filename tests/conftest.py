import os

import pytest

from accounts.models import Role
from tests.factories import PASSWORD, add_member, make_milestone, make_plan, make_team, make_user


def pytest_report_header(config):
    from django.conf import settings

    database = settings.DATABASES["default"]
    where = database["HOST"] or database["NAME"]
    redis = os.environ.get("REDIS_URL") or "a private redis-server per integration test"
    return [f"database: {database['ENGINE'].rsplit('.', 1)[-1]} ({where})", f"redis: {redis}"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's chromium, never a browser downloaded by Playwright."""
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Fixtures create many users; PBKDF2 would dominate the suite's time. Same checks apply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def private_cache(settings):
    """A fresh in-memory cache per test: lockout counters (accounts/lockout.py) and throttles
    must not leak between tests or from earlier runs through var/cache."""
    from django.core.cache import cache

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "milepost-tests",
        }
    }
    cache.clear()
    yield
    cache.clear()


class World:
    """A team with one user per role, an outsider in another team, and a plan with a milestone."""

    def __init__(self):
        self.team = make_team("Rocket")
        self.admin = add_member(self.team, make_user("ada"), Role.ADMIN)
        self.member = add_member(self.team, make_user("max"), Role.MEMBER)
        self.viewer = add_member(self.team, make_user("vic"), Role.VIEWER)
        self.other_team = make_team("Elsewhere")
        self.outsider = add_member(self.other_team, make_user("olga"), Role.ADMIN)
        self.plan = make_plan(self.team, self.admin, title="Launch the export service")
        self.milestone = make_milestone(self.plan, self.admin, title="Export queue ready")
        self.password = PASSWORD


@pytest.fixture
def world(db):
    return World()


@pytest.fixture
def client_for(client):
    """Log the test client in as a user: `client_for(world.member)`."""

    def login(user):
        client.force_login(user)
        return client

    return login
