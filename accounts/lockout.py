"""Lock out a login name or a client address after repeated failed log-ins.

The counters live in Django's cache (Redis in production, so every web process sees the same
counts; files under var/cache on the embedded default). Callers speak in keys:

    key = lockout.login_key(username)          # or lockout.ip_key(lockout.client_ip(request))
    if lockout.is_locked(key): refuse
    ...wrong password → lockout.record_failure(key)
    ...success        → lockout.reset(key)

A key fails at most LOGIN_LOCKOUT_FAILURES times (default 5) within LOGIN_LOCKOUT_WINDOW
seconds (default 900, counted from the first failure) and is then locked for
LOGIN_LOCKOUT_SECONDS (default 900). Keys made by `ip_key()` are shared by everyone behind
one address, so they allow LOGIN_LOCKOUT_IP_FAILURES (default 4 × LOGIN_LOCKOUT_FAILURES).

Keys are hashed before they reach the cache: no login names in Redis, and any text is a valid
cache key. The lock only says "no more tries for now"; it never says whether an account exists.
"""

import hashlib
import ipaddress
import math
import time

from django.conf import settings
from django.core.cache import cache

LOGIN_PREFIX = "login:"
IP_PREFIX = "ip:"


def _failures_allowed(key: str) -> int:
    failures = max(1, int(getattr(settings, "LOGIN_LOCKOUT_FAILURES", 5)))
    if key.startswith(IP_PREFIX):
        return max(1, int(getattr(settings, "LOGIN_LOCKOUT_IP_FAILURES", 4 * failures)))
    return failures


def _window() -> int:
    return max(1, int(getattr(settings, "LOGIN_LOCKOUT_WINDOW", 900)))


def _lock_seconds() -> int:
    return max(1, int(getattr(settings, "LOGIN_LOCKOUT_SECONDS", 900)))


def _cache_keys(key: str) -> tuple[str, str, str]:
    """(failure count, start of the counting window, locked-until time) for `key`."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return (
        f"lockout:failures:{digest}",
        f"lockout:window:{digest}",
        f"lockout:until:{digest}",
    )


# --- Keys ----------------------------------------------------------------------------------


def login_key(login: str) -> str:
    """The key for a login name as typed: trimmed and case-folded, whether or not it exists."""
    return LOGIN_PREFIX + (login or "").strip().casefold()


def ip_key(address: str) -> str:
    """The key for a client address; IPv6 addresses count per /64 (one household or host)."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return IP_PREFIX + (address or "unknown")
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return IP_PREFIX + str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return IP_PREFIX + str(ip)


def client_ip(request) -> str:
    """The address a request came from.

    Behind a TLS proxy (settings.SECURE_PROXY_SSL_HEADER set, i.e. BEHIND_TLS_PROXY=true) the
    socket address is the proxy's, so the last X-Forwarded-For entry, the one the proxy
    appended, is used; a client cannot forge that one. LOGIN_LOCKOUT_TRUST_FORWARDED_FOR
    overrides the choice either way.
    """
    trust = getattr(
        settings,
        "LOGIN_LOCKOUT_TRUST_FORWARDED_FOR",
        bool(getattr(settings, "SECURE_PROXY_SSL_HEADER", None)),
    )
    if trust:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


# --- The API -------------------------------------------------------------------------------


def is_locked(key: str) -> bool:
    """True while `key` is locked out."""
    return seconds_left(key) > 0


def seconds_left(key: str) -> int:
    """Whole seconds until `key` may try again (0 when it is not locked)."""
    until = cache.get(_cache_keys(key)[2])
    if until is None:
        return 0
    return max(0, math.ceil(until - time.time()))


def record_failure(key: str) -> None:
    """Count one failed attempt for `key`; lock it once it reaches its allowance.

    Failures while the key is locked are not counted (nothing was tried), so a lock always
    ends LOGIN_LOCKOUT_SECONDS after it started.
    """
    if is_locked(key):
        return
    failures_key, window_key, until_key = _cache_keys(key)
    now = time.time()
    window = _window()
    if not cache.add(window_key, now, timeout=window):  # a window is already running
        started = cache.get(window_key, now)
        if started + window > now:
            remaining = max(1, math.ceil(started + window - now))
        else:  # over, though the cache still holds it (another host's clock, say)
            cache.set(window_key, now, timeout=window)
            cache.delete(failures_key)
            remaining = window
    else:
        cache.delete(failures_key)
        remaining = window
    cache.add(failures_key, 0, timeout=remaining)
    try:
        failures = cache.incr(failures_key)  # atomic on Redis
    except ValueError:  # the window ran out between add() and incr()
        cache.set(failures_key, 1, timeout=remaining)
        failures = 1
    else:
        # Some backends (the file cache) give an incremented key the default timeout.
        cache.touch(failures_key, remaining)
    if failures >= _failures_allowed(key):
        seconds = _lock_seconds()
        cache.set(until_key, now + seconds, timeout=seconds)
        cache.delete_many([failures_key, window_key])


def reset(key: str) -> None:
    """Forget the failures and any lock of `key` (after a successful log-in)."""
    cache.delete_many(list(_cache_keys(key)))
