"""`Authorization: Bearer <token>` with a personal API token; session login for the browser.

A missing header leaves the request to the next authenticator (the session). A header that is
present but wrong — unknown, expired or revoked token, or not a bearer token — is a 401 with a
`WWW-Authenticate: Bearer` challenge, never a silent fall-back to the session. Failures are
counted per client address with `accounts.lockout`; a locked-out address gets 429 without its
token being looked at.
"""

import logging

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from api.models import ApiToken

logger = logging.getLogger(__name__)

REALM = "api"


def _lockout():
    """The lockout module (accounts.lockout), or None while it is not installed."""
    try:
        from accounts import lockout
    except ImportError:  # pragma: no cover - only before accounts.lockout exists
        logger.warning("accounts.lockout is missing: bad API tokens are not rate limited")
        return None
    return lockout


def lockout_key(request, lockout) -> str:
    """Bad tokens are counted per client address, apart from failed log-ins."""
    return f"api-token:{lockout.client_ip(request)}"


class LockedOut(exceptions.Throttled):
    default_detail = _("Too many requests with a bad API token from this address; wait and retry.")


class BearerTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, __, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed(_("Use “Authorization: Bearer <token>”."))
        raw = raw.strip()
        lockout = _lockout()
        key = lockout_key(request, lockout) if lockout else ""
        if lockout and lockout.is_locked(key):
            raise LockedOut(wait=lockout.seconds_left(key))
        token = ApiToken.objects.from_secret(raw) if raw else None
        if token is None or not token.is_usable or not token.user.is_active:
            if lockout:
                lockout.record_failure(key)
            if token is not None and token.is_revoked:
                raise exceptions.AuthenticationFailed(_("This API token has been revoked."))
            if token is not None and token.is_expired:
                raise exceptions.AuthenticationFailed(_("This API token has expired."))
            raise exceptions.AuthenticationFailed(_("Invalid API token."))
        token.touch()
        return token.user, token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="{REALM}"'
