"""The API's spec endpoints: import (with the same preview as the page), check, export.

Same authentication, permissions and throttling as the rest of the API (imported from api/):
another team's objects are 404, writing needs the member or admin role (403). Checking a posted
file reads nothing of any team, so anyone signed in may. Requests are validated by the
serializers below, which the OpenAPI schema is built from; errors are JSON on every endpoint,
the exports' own answer is `text/markdown`.
"""

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Team
from api.authentication import BearerTokenAuthentication
from api.permissions import TeamRolePermission, require_write, team_ids
from api.renderers import FastJSONRenderer
from api.schema import DETAIL, FIELD_ERRORS
from api.serializers import UNKNOWN, SpecCheckSerializer
from api.throttling import TokenRateThrottle
from milestones.models import Milestone, Plan
from specs import check
from specs.document import ERROR, MILESTONE_SHAPE, PLAN_SHAPE, WARNING, ParsedDocument
from specs.exporter import export_milestone, export_plan
from specs.importer import import_document
from specs.parser import MAX_BYTES, UnreadableDocument, decode, parse

MAX_MB = MAX_BYTES // 1024 // 1024
SHAPES = [MILESTONE_SHAPE, PLAN_SHAPE]
SEVERITIES = [ERROR, WARNING]


class MarkdownRenderer(BaseRenderer):
    """An export's markdown, as the view hands it over."""

    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode(self.charset)


class SpecAPIView(APIView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [TeamRolePermission]
    throttle_classes = [TokenRateThrottle]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    too_large_detail = f"The request is too large: spec documents may be at most {MAX_MB} MB."

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response):
            # An export's markdown goes out as markdown, errors (and OPTIONS) as JSON, whatever
            # the Accept header preferred (it only decides a 406): what the schema promises.
            text = isinstance(response.data, str)
            renderer = MarkdownRenderer() if text else FastJSONRenderer()
            response.accepted_renderer = renderer
            response.accepted_media_type = renderer.media_type
        return response


# --- Requests ----------------------------------------------------------------------------------


class TextField(serializers.CharField):
    """Text only (DRF's CharField would take the number 5 as "5")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses unknown fields by name, like every other request body of the API."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = {name: [UNKNOWN] for name in data if name not in self.fields}
            if unknown:
                raise serializers.ValidationError(unknown)
        return super().to_internal_value(data)


class SpecDocumentSerializer(StrictSerializer):
    """A document sent as text (JSON or a form)."""

    markdown = TextField(
        trim_whitespace=False,
        allow_blank=True,
        help_text=f"The document: a milestone spec, or a plan with one `##` per milestone "
        f"(at most {MAX_MB} MB).",
    )
    shape = serializers.ChoiceField(
        choices=SHAPES,
        required=False,
        help_text="Read it as a milestone spec or a plan; left out, Milepost tells from the "
        "headings.",
    )


class SpecDocumentUploadSerializer(SpecDocumentSerializer):
    """A document uploaded as a `file`, or sent as `markdown` text: exactly one of the two."""

    markdown = TextField(
        required=False,
        trim_whitespace=False,
        allow_blank=True,
        help_text="The document as text, instead of a `file`.",
    )
    file = serializers.FileField(
        required=False,
        allow_empty_file=True,  # refused by the spec reader with its own error (`empty`)
        use_url=False,
        help_text=f"The document as a markdown file (UTF-8; at most {MAX_MB} MB).",
    )

    def validate(self, data):
        if "file" in data and data.get("markdown"):
            raise serializers.ValidationError(
                {"non_field_errors": ["Send a file or markdown, not both."]}
            )
        if "file" not in data and "markdown" not in data:
            raise serializers.ValidationError(
                {"markdown": ["Send the document as `markdown` text or a `file`."]}
            )
        return data


class ImportFields(serializers.Serializer):
    """Where the document goes, and whether to save it."""

    team = serializers.SlugField(max_length=60, help_text="The team to import into (its slug).")
    plan = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Key of the team's plan the milestones go into. A milestone spec needs one "
        "(or a `**Plan**:` line naming it); a plan document without it becomes a new plan.",
    )
    dry_run = serializers.BooleanField(
        default=False,
        help_text="true: only the preview (what would be created, every problem); nothing "
        "is saved.",
    )


class SpecImportSerializer(ImportFields, SpecDocumentSerializer):
    """A document to import into a team, sent as text (JSON or a form)."""


class SpecImportUploadSerializer(ImportFields, SpecDocumentUploadSerializer):
    """A document to import into a team, uploaded as a `file` or sent as `markdown` text
    (exactly one of the two)."""


def read_document(data) -> ParsedDocument:
    """The validated document: an uploaded `file`, or `markdown` text, in its `shape`."""
    upload = data.get("file")
    try:
        if upload is not None:
            if upload.size > MAX_BYTES:
                raise UnreadableDocument(
                    "too_large",
                    f"The file is {upload.size / 1024 / 1024:.1f} MB; spec documents may be at "
                    f"most {MAX_MB} MB.",
                )
            text, problems = decode(upload.read())
        else:
            text, problems = decode(data["markdown"].encode("utf-8", errors="replace"))
    except UnreadableDocument as unreadable:
        return ParsedDocument(MILESTONE_SHAPE, problems=[unreadable.problem])
    document = parse(text, shape=data.get("shape"))
    document.problems = problems + document.problems
    return document


# --- Responses (for the schema: the views return the dicts specs/ builds) --------------------


class ProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="1-based line of the document.")
    severity = serializers.ChoiceField(choices=SEVERITIES)
    code = serializers.CharField(help_text="e.g. binary, empty, too_large, no_plan, invalid")
    message = serializers.CharField(help_text="What is wrong and how to fix it.")


class SpecCountsSerializer(serializers.Serializer):
    plans = serializers.IntegerField()
    milestones = serializers.IntegerField()
    deliverables = serializers.IntegerField()
    acceptance_criteria = serializers.IntegerField()
    success_criteria = serializers.IntegerField()
    plan_criteria = serializers.IntegerField()
    risks = serializers.IntegerField()
    blockers = serializers.IntegerField()
    signoff_roles = serializers.IntegerField()
    stakeholders = serializers.IntegerField()
    notes = serializers.IntegerField()


class SpecImportResultSerializer(serializers.Serializer):
    saved = serializers.BooleanField(help_text="Everything was imported (never half of it).")
    dry_run = serializers.BooleanField()
    shape = serializers.ChoiceField(choices=SHAPES)
    counts = SpecCountsSerializer(help_text="What the document holds.")
    created = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="What was (or, in a dry run, would be) created, per kind.",
    )
    plan = serializers.CharField(allow_null=True, help_text="Key of the plan, once saved.")
    milestones = serializers.ListField(
        child=serializers.CharField(), help_text="Keys of the milestones created."
    )
    errors = ProblemSerializer(many=True, help_text="Any error means nothing was saved.")
    warnings = ProblemSerializer(many=True)


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The spec-check rule, e.g. missing_rollback_plan.")
    severity = serializers.ChoiceField(choices=SEVERITIES)
    message = serializers.CharField(help_text="How to fix it.")
    line = serializers.IntegerField(allow_null=True, help_text="In a file: its line.")
    object = serializers.CharField(
        required=False, help_text='On a live milestone: the object, e.g. "deliverable 12".'
    )
    milestone = serializers.CharField(
        required=False, help_text="In a plan document: which milestone."
    )


class SpecFileMilestoneSerializer(SpecCheckSerializer):
    title = serializers.CharField()
    findings = FindingSerializer(many=True)


class SpecFileCheckSerializer(serializers.Serializer):
    valid = serializers.BooleanField(help_text="No errors: the file would import.")
    shape = serializers.ChoiceField(choices=SHAPES)
    problems = ProblemSerializer(
        many=True, help_text="What could not be read as written (an unreadable file: only this)."
    )
    milestones = SpecFileMilestoneSerializer(many=True)


class MilestoneSpecCheckSerializer(SpecCheckSerializer):
    milestone = serializers.CharField(help_text="The milestone's key.")
    findings = FindingSerializer(many=True)


def request_bodies(text, upload) -> dict:
    """Each media type the views parse, with its body: text, or a multipart upload."""
    return {
        "application/json": text,
        "multipart/form-data": upload,
        "application/x-www-form-urlencoded": text,
    }


MARKDOWN = OpenApiResponse(
    OpenApiTypes.STR, description="The markdown, in the format the import reads back."
)
CONTENT_DISPOSITION = OpenApiParameter(
    "Content-Disposition",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=["200"],
    description='inline; filename="<key>.md"',
)
CSRF = OpenApiResponse(DETAIL, description="A browser session's POST without its CSRF token.")


# --- Views -------------------------------------------------------------------------------------


@extend_schema(
    summary="Import a markdown spec or plan (or preview the import)",
    description="The document comes as `markdown` text (JSON or a form) or as an uploaded "
    "`file` (multipart). A milestone spec goes into `plan`; a plan document becomes a new plan "
    "(or, with `plan`, its milestones go into that one). Owners are matched to the team's "
    "members; only team admins' imports set sign-off holders. One transaction: with any error "
    "nothing is saved and the answer is a 400 listing every problem by line. `dry_run` answers "
    "the preview (200) instead. Member or admin of the team (403 for viewers); a team that is "
    "not yours is 404.",
    request=request_bodies(SpecImportSerializer, SpecImportUploadSerializer),
    responses={
        200: OpenApiResponse(SpecImportResultSerializer, description="The dry run's preview."),
        201: OpenApiResponse(SpecImportResultSerializer, description="Imported."),
        400: OpenApiResponse(
            {"oneOf": [FIELD_ERRORS, {"$ref": "#/components/schemas/SpecImportResult"}]},
            description="A request field is wrong (messages per field, e.g. `plan` names no "
            "plan of the team), or the document cannot be imported: `errors` lists every "
            "problem with its line, and nothing is saved.",
        ),
    },
)
class SpecImportView(SpecAPIView):
    error_codes = {"post": ["400", "401", "403", "404", "413", "415", "429"]}

    def post(self, request):
        serializer = SpecImportUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        team = Team.objects.filter(slug=data["team"], pk__in=team_ids(request)).first()
        if team is None:
            raise NotFound()
        require_write(request, team.pk)
        plan = None
        if plan_key := data.get("plan"):
            plan = Plan.objects.filter(team=team, key=plan_key).first()
            if plan is None:
                raise ParseError({"plan": [f"Team {team.slug} has no plan {plan_key}."]})
        result = import_document(
            read_document(data),
            team=team,
            actor=request.user,
            plan=plan,
            dry_run=data["dry_run"],
            filename=getattr(data.get("file"), "name", "") or "API upload",
        )
        if result.has_errors:
            code = status.HTTP_400_BAD_REQUEST
        else:
            code = status.HTTP_200_OK if result.dry_run else status.HTTP_201_CREATED
        return Response(result.as_dict(), status=code)


@extend_schema(
    summary="Spec-check a markdown file",
    description="The findings and completeness score of each milestone in the document "
    "(`markdown` text or an uploaded `file`); nothing is saved and no team is involved, so "
    "anyone signed in may. A file that cannot be read (binary, empty, over "
    f"{MAX_MB} MB) is `valid: false` with the reason under `problems`.",
    request=request_bodies(SpecDocumentSerializer, SpecDocumentUploadSerializer),
    responses={200: SpecFileCheckSerializer, 403: CSRF},
)
class SpecCheckView(SpecAPIView):
    permission_classes = [IsAuthenticated]
    error_codes = {"post": ["400", "401", "403", "413", "415", "429"]}

    def post(self, request):
        serializer = SpecDocumentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = read_document(serializer.validated_data)
        results = check.check_document(document)
        errors = document.errors + [f for _, r in results for f in r.errors]
        return Response(
            {
                "valid": not errors,
                "shape": document.shape,
                "problems": [p.as_dict() for p in document.problems],
                "milestones": [
                    {
                        "title": title,
                        **result.summary(),
                        "findings": [f.as_dict() for f in result.findings],
                    }
                    for title, result in results
                ],
            }
        )


def _milestone(request, pk) -> Milestone:
    milestone = (
        Milestone.objects.filter(pk=pk, team_id__in=team_ids(request))
        .select_related("team", "plan", "owner")
        .first()
    )
    if milestone is None:
        raise NotFound()
    return milestone


class MarkdownExportView(SpecAPIView):
    """GET answers markdown (errors are JSON); an Accept header without it is a 406."""

    renderer_classes = [MarkdownRenderer]
    error_codes = {"get": ["401", "404", "406", "429"]}

    def markdown(self, text: str, name: str) -> Response:
        return Response(text, headers={"Content-Disposition": f'inline; filename="{name}.md"'})


EXPORT_RESPONSES = {(200, MarkdownRenderer.media_type): MARKDOWN}


@extend_schema(
    summary="A milestone's spec as markdown",
    description="The milestone's whole spec in the import's format (importing it reproduces "
    "every structured field). Any member of its team, viewers too.",
    responses=EXPORT_RESPONSES,
    parameters=[CONTENT_DISPOSITION],
)
class MilestoneExportView(MarkdownExportView):
    def get(self, request, pk):
        milestone = _milestone(request, pk)
        return self.markdown(export_milestone(milestone), milestone.key)


@extend_schema(
    summary="A milestone's spec check",
    description="Completeness score, error and warning counts and gaps (as in milestone "
    "reads' `spec_check`), plus every finding with the object it is about. Any member of its "
    "team, viewers too.",
    responses=MilestoneSpecCheckSerializer,
)
class MilestoneCheckView(SpecAPIView):
    error_codes = {"get": ["401", "404", "429"]}

    def get(self, request, pk):
        from milestones.views.milestone import MilestoneSpec

        milestone = _milestone(request, pk)
        result = check.check_spec(MilestoneSpec(milestone))
        return Response(
            {
                "milestone": milestone.key,
                **result.summary(),
                "findings": [f.as_dict() for f in result.findings],
            }
        )


@extend_schema(
    summary="A plan and its milestones as markdown",
    description="The plan document (one `##` per milestone) in the import's format. Any member "
    "of its team, viewers too.",
    responses=EXPORT_RESPONSES,
    parameters=[CONTENT_DISPOSITION],
)
class PlanExportView(MarkdownExportView):
    def get(self, request, pk):
        plan = Plan.objects.filter(pk=pk, team_id__in=team_ids(request)).first()
        if plan is None:
            raise NotFound()
        return self.markdown(export_plan(plan), plan.key)
