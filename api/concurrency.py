"""Optimistic concurrency over HTTP: `ETag` from the object's version, `If-Match` on writes.

Editable objects carry a `version` that every change made through the services bumps, so their
ETag is `"<version>"`. Objects that are never edited after creation (dependencies, status
updates) take theirs from the creation time. A write to an editable object must name the
version it read (`If-Match`); without one the answer is 428, and with an old one 412 with the
current representation, so nobody overwrites a change they never saw.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException


class PreconditionRequired(APIException):
    status_code = 428
    default_detail = _(
        "Send If-Match with the ETag you last read (GET the object first), so a change "
        "someone else made in between is not overwritten."
    )
    default_code = "precondition_required"


class PreconditionFailed(Exception):
    """Raised inside the write's transaction; the view answers 412 with the current object."""

    status_code = status.HTTP_412_PRECONDITION_FAILED


def etag_for(obj) -> str:
    version = getattr(obj, "version", None)
    if version is None:
        version = f"c{int(obj.created_at.timestamp() * 1_000_000)}"
    return f'"{version}"'


def parse_if_match(header: str) -> list[str]:
    """The entity tags of an If-Match header; `*` stays `*`. Weak tags compare by their value."""
    tags = []
    for part in header.split(","):
        part = part.strip()
        if part.startswith("W/"):
            part = part[2:]
        if part:
            tags.append(part)
    return tags


def matches(header: str, obj) -> bool:
    tags = parse_if_match(header)
    return "*" in tags or etag_for(obj) in tags


def check_precondition(request, obj, *, required: bool) -> None:
    """428 when If-Match is required but missing; PreconditionFailed when it is stale."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        if required:
            raise PreconditionRequired()
        return
    if not matches(header, obj):
        raise PreconditionFailed()
