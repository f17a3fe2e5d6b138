"""One-click unsubscribe links: a signed token names the recipient and what they leave.

The token needs no log-in (mail clients post to it directly, RFC 8058) and never expires: an
old digest's link must still work. It is signed with SECRET_KEY under its own salt, so it
cannot be forged or reused for anything else.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "milepost.notifications.unsubscribe"


def make_token(recipient_key: str, kind: str) -> str:
    # No timestamp in the token: it never expires, and the same recipient and kind always give
    # the same link (the body and the List-Unsubscribe header of one mail agree).
    return signing.Signer(salt=SALT).sign_object({"r": recipient_key, "k": kind}, compress=True)


def read_token(token: str) -> tuple[str, str] | None:
    """(recipient_key, kind) from a token, or None when it was altered or is not one of ours."""
    try:
        data = signing.Signer(salt=SALT).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(data, dict) or not {"r", "k"} <= data.keys():
        return None
    return str(data["r"]), str(data["k"])


def unsubscribe_url(recipient_key: str, kind: str) -> str:
    path = reverse("notifications:unsubscribe", args=[make_token(recipient_key, kind)])
    return f"{settings.SITE_URL}{path}"


def list_unsubscribe_headers(recipient_key: str, kind: str) -> dict:
    """The headers that let mail clients show their own Unsubscribe button (RFC 2369/8058)."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(recipient_key, kind)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
