"""Settings come from the environment; a malformed value stops start-up and names the variable."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG_VARIABLES = {
    *("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"),
    *("EMAIL_URL", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "EMAIL_USE_SSL", "TIME_ZONE"),
    *("SITE_URL", "LOG_LEVEL", "SECURE_SSL_REDIRECT", "SECURE_COOKIES", "SECURE_HSTS_SECONDS"),
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set for the browser tests only; never in a deployment
}


def run_django(env_overrides: dict, code: str = "pass", args: list[str] | None = None):
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    env.update({"DEBUG": "true", "DJANGO_SETTINGS_MODULE": "config.settings"})
    env.update(env_overrides)
    command = args or [
        sys.executable,
        "-c",
        f"import django; django.setup(); from django.conf import settings; {code}",
    ]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be true or false"),
        ("DATABASE_URL", "mysql://root@db/milepost", "DATABASE_URL must point at PostgreSQL"),
        ("DATABASE_URL", "not a url", "DATABASE_URL must be a database URL"),
        ("REDIS_URL", "http://localhost:6379", "REDIS_URL must start with one of redis://"),
        ("CELERY_BROKER_URL", "amqp://guest@localhost//", "CELERY_BROKER_URL must start with"),
        ("EMAIL_URL", "pigeon://coop", "EMAIL_URL must start with smtp://"),
        ("EMAIL_URL", "smtp://", "EMAIL_URL must name the SMTP host"),
        ("EMAIL_URL", "smtp://mail.example:port", "EMAIL_URL has an invalid port"),
        ("TIME_ZONE", "Mars/Olympus_Mons", "TIME_ZONE must be an IANA time zone"),
        ("SITE_URL", "milepost.example", "SITE_URL must start with one of http://"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
    ],
)
def test_it_refuses_a_malformed_value_and_names_the_variable(variable, value, message):
    result = run_django({variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_it_refuses_a_non_number_port():
    result = run_django({"EMAIL_HOST": "mail.example", "EMAIL_PORT": "twenty-five"})
    assert result.returncode != 0
    assert "EMAIL_PORT must be a whole number" in result.stderr


def test_it_requires_a_secret_key_when_debug_is_off():
    result = run_django({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_it_reads_every_documented_variable():
    result = run_django(
        {
            "DEBUG": "false",
            "SECRET_KEY": "s" * 60,
            "ALLOWED_HOSTS": "milepost.example, www.milepost.example",
            "DATABASE_URL": "postgres://milepost:pw@db.internal:5433/milepost",
            "REDIS_URL": "redis://cache.internal:6380/2",
            "EMAIL_URL": "smtp://robot:p%40ss@mail.internal:587?tls=true",
            "DEFAULT_FROM_EMAIL": "Plans <plans@milepost.example>",
            "SITE_URL": "https://milepost.example/",
            "TIME_ZONE": "Europe/Berlin",
        },
        code=(
            "db = settings.DATABASES['default'];"
            "print(settings.ALLOWED_HOSTS, db['HOST'], db['PORT'], settings.CELERY_BROKER_URL,"
            " settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_HOST_PASSWORD,"
            " settings.EMAIL_USE_TLS, settings.SITE_URL, settings.TIME_ZONE,"
            " settings.DEFAULT_FROM_EMAIL, settings.CACHES['default']['BACKEND'])"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "['milepost.example',",
        "'www.milepost.example']",
        "db.internal",
        "5433",
        "redis://cache.internal:6380/2",
        "mail.internal",
        "587",
        "p@ss",
        "True",
        "https://milepost.example",
        "Europe/Berlin",
        "Plans",
        "<plans@milepost.example>",
        "django.core.cache.backends.redis.RedisCache",
    ]


def test_the_embedded_default_needs_no_server():
    result = run_django(
        {},
        code=(
            "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL,"
            " settings.EMAIL_BACKEND)"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "filesystem://",
        "django.core.mail.backends.filebased.EmailBackend",
    ]


def test_production_settings_pass_the_deploy_check():
    result = run_django(
        {
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "milepost.example",
        },
        args=[sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_local_env_file_fills_in_only_what_the_environment_leaves_unset(tmp_path, monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from config.env import load_env_file

    env_file = tmp_path / ".env"
    env_file.write_text("# comment\n\nMILEPOST_A=from-file\nMILEPOST_B='quoted'\n")
    monkeypatch.delenv("MILEPOST_A", raising=False)
    monkeypatch.setenv("MILEPOST_B", "from-environment")
    load_env_file(env_file)
    assert os.environ["MILEPOST_A"] == "from-file"
    assert os.environ["MILEPOST_B"] == "from-environment"
    monkeypatch.delenv("MILEPOST_A")

    env_file.write_text("DEBUG=true\nnot a setting\n")
    with pytest.raises(ImproperlyConfigured, match="line 2: expected NAME=value"):
        load_env_file(env_file)
    load_env_file(tmp_path / "missing.env")  # no file is fine


@pytest.mark.django_db
def test_postgresql_connections_run_without_jit():
    """JIT compiling costs more than the short page queries it would speed up."""
    from django.db import connection

    from config.env import database_from_url

    config = database_from_url("DATABASE_URL", "postgres://milepost@db.internal/milepost")
    assert config["OPTIONS"]["options"] == "-c jit=off"
    if connection.vendor == "postgresql":  # the suite's own database, when it is PostgreSQL
        with connection.cursor() as cursor:
            cursor.execute("SHOW jit")
            assert cursor.fetchone()[0] == "off"
