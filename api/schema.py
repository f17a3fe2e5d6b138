"""OpenAPI details drf-spectacular cannot guess: error responses, ETag and If-Match headers.

Every operation lists the errors it can answer with, each with its body:
401 and 429 everywhere; 400 on writes (deletes too: a rule may refuse one) and on lists (a
filter it does not understand); 403 on writes; 404 on anything with an id (and on a list page
past the end); 409 where the database refuses (a plan that still has milestones, two writers
at once); 412 and 428 on the writes of editable objects, 412 carrying the current
representation. Views that are not viewsets of team objects list their own `error_codes` (per
action, or per method for a plain APIView: the spec import and check add 415). Every operation
may answer 406 (an Accept header it cannot satisfy) and every one with a body 413. Error
bodies are always JSON.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": "Messages per field (`non_field_errors` for the object as a whole), or "
    "`detail` for a body that could not be read.",
    "additionalProperties": {
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
    },
}
DESCRIPTIONS = {
    "400": "Invalid input, or a change the rules refuse: messages per field.",
    "401": "Not authenticated, or the API token is unknown, expired or revoked.",
    "403": "Authenticated, but your role in this team may not do this (viewers only read).",
    "404": "No such object in your teams (or a page past the end of the list).",
    "406": "The Accept header takes none of the media types this operation answers with.",
    "409": "Refused by the database: still in use, or changed by someone else at once.",
    "412": "If-Match does not match: someone changed it. The body is the current object.",
    "413": "The request body is larger than the operation accepts.",
    "415": "The request's Content-Type is not one this operation reads.",
    "428": "If-Match is required: send the ETag you last read.",
    "429": "Too many requests (per token), or too many bad tokens from this address.",
}
WRITE_ACTIONS = {"create", "update", "partial_update", "destroy", "move"}
ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=["200", "201"],
    description="The object's version; send it back as If-Match to change or delete it.",
)
LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    OpenApiParameter.HEADER,
    response=["201"],
    description="The new object's URL.",
)


class MilepostAutoSchema(AutoSchema):
    @property
    def _action(self) -> str:
        """The viewset action; for a plain APIView, the method ("get", "post")."""
        return getattr(self.view, "action", None) or self.method.lower()

    def _sends_etag(self) -> bool:
        if not getattr(self.view, "sends_etag", True):
            return False
        view_class = type(self.view)
        own_retrieve = "retrieve" in vars(view_class)
        if self._action == "retrieve":
            return not own_retrieve
        return self._action in {"create", "update", "partial_update", "move"}

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if "412" in self._error_codes():
            required = getattr(self.view, "versioned", False)
            parameters.append(
                OpenApiParameter(
                    "If-Match",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=required,
                    description="The ETag you last read. "
                    + ("Required: " if required else "Optional: ")
                    + "without it 428, with an old one 412.",
                )
            )
        if self._sends_etag():
            parameters.append(ETAG)
        if self._action == "create":
            parameters.append(LOCATION)
        return parameters

    def get_response_serializers(self):
        if self._action in {"update", "partial_update", "move"}:
            return self.view.serializer_class
        return super().get_response_serializers()

    def _error_codes(self) -> list[str]:
        # Any operation: 406 for an Accept header it cannot answer; one with a body: 413 for a
        # body over the upload limit (api/exceptions.py).
        always = ["406"] + (["413"] if self.method in ("POST", "PUT", "PATCH") else [])
        return sorted({*self._own_error_codes(), *always})

    def _own_error_codes(self) -> list[str]:
        action = self._action
        own = getattr(self.view, "error_codes", None)  # a view that says its own
        if own is not None:
            return own.get(action, ["401", "429"])
        codes = ["401", "429"]
        if action == "list":
            codes += ["400", "404"]
        if action in WRITE_ACTIONS:
            codes += ["403", "404"]
        if action in {"create", "update", "partial_update", "move", "destroy"}:
            codes.append("400")  # a delete too: e.g. a milestone whose sign-offs are on record
        if action == "retrieve":
            codes.append("404")
        if action in {"create", "update", "partial_update", "destroy"}:
            codes.append("409")
        if action in {"update", "partial_update", "destroy"}:
            codes.append("412")
            if getattr(self.view, "versioned", False):
                codes.append("428")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code in responses:
                continue
            if code == "412":
                body = self.view.serializer_class
            elif code == "400":
                body = FIELD_ERRORS
            else:
                body = DETAIL
            # Errors are JSON even where the operation also answers in another media type.
            response = self._get_response_for_code(body, code, ["application/json"], direction)
            if code == "412":
                response["headers"] = {
                    "ETag": {"schema": {"type": "string"}, "description": "Current version."}
                }
            response["description"] = DESCRIPTIONS[code]
            responses[code] = response
        return responses


def strict_request_bodies(result, generator, request, public):
    """Request bodies say `additionalProperties: false`: the API refuses unknown fields."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (mpt_…) from the tokens page or "
            "`manage.py create_api_token`.",
        }
