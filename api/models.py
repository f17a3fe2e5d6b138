"""Personal API tokens: what integrations send as `Authorization: Bearer <token>`.

A token is shown once, when it is made; only its SHA-256 hash is stored, with a short prefix so
people can tell their tokens apart. A token acts as its user, with the user's role in each team.
"""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "mpt_"  # recognisable in logs and by secret scanners
TOKEN_BYTES = 32
SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
# last_used_at is written at most this often per token, so reads stay read-only in the database.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, on: datetime.datetime | None = None):
        """Neither revoked nor expired."""
        now = on or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )

    def create_token(
        self, user, name: str, *, expires_days: int | None = None
    ) -> tuple["ApiToken", str]:
        """Make a token for `user`; returns the row and the secret, which is never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        expires_at = (
            timezone.now() + datetime.timedelta(days=expires_days) if expires_days else None
        )
        token = ApiToken(
            user=user,
            name=name,
            prefix=raw[:SHOWN_PREFIX_LENGTH],
            token_hash=hash_token(raw),
            expires_at=expires_at,
        )
        token.full_clean()
        token.save()
        return token, raw

    def from_secret(self, raw: str) -> "ApiToken | None":
        """The token `raw` stands for, whatever its state, or None."""
        if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
            return None
        return self.select_related("user").filter(token_hash=hash_token(raw)).first()


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What uses it, e.g. “CI pipeline”.")
    prefix = models.CharField(max_length=SHOWN_PREFIX_LENGTH, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return not (self.is_revoked or self.is_expired)

    @property
    def state(self) -> str:
        if self.is_revoked:
            return "revoked"
        return "expired" if self.is_expired else "active"

    def revoke(self) -> bool:
        """Stop the token working; False when it already was revoked."""
        now = timezone.now()
        changed = ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if changed:
            self.revoked_at = now
        return bool(changed)

    def touch(self) -> None:
        """Record a use, at most once per LAST_USED_RESOLUTION (one UPDATE, no read)."""
        now = timezone.now()
        if self.last_used_at and now - self.last_used_at < LAST_USED_RESOLUTION:
            return
        ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
        self.last_used_at = now
