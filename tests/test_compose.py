"""No Docker engine runs here, so check the compose file's wiring against the code."""

import importlib
import re
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = ("migrate", "web", "worker", "beat")


def assert_entry_point(command: list[str]):
    program = command[0]
    if program == "gunicorn":
        module_name, attribute = command[1].split(":")
        assert callable(getattr(importlib.import_module(module_name), attribute))
    elif program == "celery":
        assert command[1] == "-A"
        app = importlib.import_module(command[2]).celery_app
        assert app.main == "milepost"
        assert command[3] in {"worker", "beat"}
    elif program == "python":
        assert command[1] == "manage.py"
        assert command[2] in get_commands(), f"no management command {command[2]!r}"
    else:
        raise AssertionError(f"unexpected program {program!r}")


def test_it_has_the_production_services():
    assert set(COMPOSE["services"]) >= {*APP_SERVICES, "postgres", "redis", "mailpit"}


def test_every_app_service_runs_a_real_entry_point():
    for name in APP_SERVICES:
        assert_entry_point(COMPOSE["services"][name]["command"])


def test_the_dockerfile_command_is_a_real_entry_point():
    dockerfile = (ROOT / "Dockerfile").read_text()
    command = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1)
    assert_entry_point(yaml.safe_load(command))


def test_app_services_share_one_environment_pointing_at_the_compose_services():
    environments = [COMPOSE["services"][name]["environment"] for name in APP_SERVICES]
    assert all(env == environments[0] for env in environments)
    env = environments[0]
    assert env["DATABASE_URL"].startswith("postgres://milepost:milepost@postgres:5432/")
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    assert "mailpit:1025" in env["EMAIL_URL"]
    assert env["DEBUG"] == "false"


def test_every_variable_the_compose_file_sets_is_documented():
    readme = (ROOT / "README.md").read_text()
    for variable in COMPOSE["services"]["web"]["environment"]:
        assert f"`{variable}`" in readme, f"{variable} is not documented in README.md"


def test_the_web_service_waits_for_migrations():
    depends = COMPOSE["services"]["web"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
