"""Typed readers for environment variables.

Each reader fails at start-up with an ImproperlyConfigured error that names the variable and
says what was expected, so a typo in a deployment never turns into a silent default.
"""

import os
import zoneinfo
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def load_env_file(path) -> None:
    """Read KEY=VALUE lines from a local `.env` file; variables already set win."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ImproperlyConfigured(f"{path}, line {number}: expected NAME=value, got {line!r}.")
        os.environ.setdefault(name.strip(), value.strip().strip("'\""))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (1/0, yes/no, on/off), got {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str = "", *, schemes: tuple[str, ...]) -> str:
    """A URL whose scheme is one of `schemes`; an empty value returns the default."""
    raw = env_str(name) or default
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ImproperlyConfigured(f"{name} must start with one of {allowed}; got {raw!r}.")
    if parts.scheme.startswith("http") and not parts.netloc:
        raise ImproperlyConfigured(f"{name} must include a host name, got {raw!r}.")
    return raw.rstrip("/") if parts.scheme.startswith("http") else raw


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value


def env_time_zone(name: str, default: str) -> str:
    value = env_str(name) or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be an IANA time zone name such as 'Europe/Berlin', got {value!r}."
        ) from None
    return value


def database_from_url(name: str, default: str) -> dict:
    import dj_database_url

    raw = env_str(name) or default
    try:
        config = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except (ValueError, dj_database_url.UnknownSchemeError) as error:
        raise ImproperlyConfigured(
            f"{name} must be a database URL such as postgres://user@host:5432/milepost "
            f"or sqlite:///path/to/file.sqlite3; got {raw!r} ({error})."
        ) from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Web, worker and beat share one SQLite file in `make run`: WAL lets readers and the
        # single writer proceed together; IMMEDIATE avoids lock upgrades failing mid-way.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # Page queries are short; PostgreSQL's JIT compiles the costlier ones (the dashboard's
        # per-milestone progress counts on a large team) for longer than they take to run.
        options = config.setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    else:
        raise ImproperlyConfigured(f"{name} must point at PostgreSQL or SQLite, got {raw!r}.")
    return config


def email_from_url(name: str, raw: str) -> dict:
    """Turn EMAIL_URL into Django e-mail settings.

    smtp://user:password@host:587?tls=true, smtps://host:465 (implicit TLS),
    file:///path/to/folder, console://, memory://.
    """
    parts = urlsplit(raw)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if parts.scheme in {"smtp", "smtps"}:
        if not parts.hostname:
            raise ImproperlyConfigured(f"{name} must name the SMTP host, got {raw!r}.")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError:
            raise ImproperlyConfigured(f"{name} has an invalid port: {raw!r}.") from None
        use_tls = query.get("tls", "").lower() in TRUE_WORDS
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": port,
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_SSL": parts.scheme == "smtps",
            "EMAIL_USE_TLS": use_tls and parts.scheme == "smtp",
        }
    if parts.scheme == "file":
        folder = unquote(parts.netloc + parts.path)
        if not folder:
            raise ImproperlyConfigured(f"{name} must name a folder, e.g. file:///var/mail.")
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": folder,
        }
    if parts.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parts.scheme == "memory":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    raise ImproperlyConfigured(
        f"{name} must start with smtp://, smtps://, file://, console:// or memory://; got {raw!r}."
    )
