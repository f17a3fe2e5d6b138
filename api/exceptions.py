"""One error shape for the whole API, with the model's own validation messages.

- a model ValidationError (from full_clean in the services: constraints, `clean()`, cycles)
  becomes 400 with `{field: [messages]}`; errors not tied to a field go under
  `non_field_errors`, as in DRF;
- deleting something other rows still need (a plan with milestones) is 409;
- a unique or check constraint that only the database caught (two writers at once) is 409;
- a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413, a form with too many fields or files 400
  (Django refuses those before DRF parses anything; uncaught, they were its HTML 400 page).
Everything else is DRF's own handling (`{"detail": "…"}`).
"""

import logging

from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def as_drf_errors(error: DjangoValidationError) -> dict | list:
    if hasattr(error, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if name == "__all__" else name): messages
            for name, messages in error.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: error.messages}


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        view = context.get("view")
        exc = RequestTooLarge(getattr(view, "too_large_detail", None))
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = exceptions.ParseError(str(exc))
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_drf_errors(exc))
    elif isinstance(exc, ProtectedError | RestrictedError):
        objects = getattr(exc, "protected_objects", None) or exc.restricted_objects
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in objects})
        detail = f"Still in use by {', '.join(kinds)}; remove those first."
        return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
    elif isinstance(exc, IntegrityError):
        logger.info("Integrity error answered with 409: %s", exc)
        detail = "Someone else changed this at the same time; read it again and retry."
        return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)
