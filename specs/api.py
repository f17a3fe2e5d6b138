"""The API's spec endpoints: import (with the same preview as the page), check, export.

Same authentication, permissions and throttling as the rest of the API (imported from api/):
another team's objects are 404, writing needs the member or admin role (403). Left out of the
OpenAPI schema for now (see the report to the API's owner).
"""

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Team
from api.authentication import BearerTokenAuthentication
from api.permissions import VIEWER_DENIED, TeamRolePermission, can_write, team_ids
from api.throttling import TokenRateThrottle
from milestones.models import Milestone, Plan
from specs import check
from specs.document import MILESTONE_SHAPE, PLAN_SHAPE, ParsedDocument
from specs.exporter import export_milestone, export_plan
from specs.importer import import_document
from specs.parser import MAX_BYTES, UnreadableDocument, decode, parse


class SpecAPIView(APIView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [TeamRolePermission]
    throttle_classes = [TokenRateThrottle]
    parser_classes = [JSONParser, MultiPartParser, FormParser]


def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def read_document(request) -> ParsedDocument:
    """The posted document: a multipart `file`, or `markdown` text; `shape` optional."""
    shape = request.data.get("shape") or None
    if shape not in (None, MILESTONE_SHAPE, PLAN_SHAPE):
        raise ParseError({"shape": ["Use “milestone” or “plan”, or leave it out."]})
    upload = request.FILES.get("file")
    markdown = request.data.get("markdown")
    if upload is not None and markdown:
        raise ParseError({"non_field_errors": ["Send a file or markdown, not both."]})
    try:
        if upload is not None:
            if upload.size > MAX_BYTES:
                raise UnreadableDocument(
                    "too_large",
                    f"The file is {upload.size / 1024 / 1024:.1f} MB; spec documents may be at "
                    f"most {MAX_BYTES // 1024 // 1024} MB.",
                )
            text, problems = decode(upload.read())
        elif isinstance(markdown, str):
            text, problems = decode(markdown.encode("utf-8", errors="replace"))
        else:
            raise ParseError({"markdown": ["Send the document as `markdown` text or a `file`."]})
    except UnreadableDocument as unreadable:
        return ParsedDocument(MILESTONE_SHAPE, problems=[unreadable.problem])
    document = parse(text, shape=shape)
    document.problems = problems + document.problems
    return document


@extend_schema(exclude=True)
class SpecImportView(SpecAPIView):
    """POST `team` (slug), `markdown` or `file`, optional `plan` (key), `shape`, `dry_run`.

    201 with what was created; 200 for a dry run (the preview); 400 with every problem and its
    line number when the document cannot be imported (nothing is saved).
    """

    def post(self, request):
        slug = request.data.get("team")
        if not slug or not isinstance(slug, str):
            raise ParseError({"team": ["Say which team to import into (its slug)."]})
        team = Team.objects.filter(slug=slug, pk__in=team_ids(request)).first()
        if team is None:
            raise NotFound()
        if not can_write(request, team.pk):
            raise PermissionDenied(VIEWER_DENIED)
        plan = None
        if plan_key := request.data.get("plan"):
            plan = Plan.objects.filter(team=team, key=plan_key).first()
            if plan is None:
                raise ParseError({"plan": [f"Team {team.slug} has no plan {plan_key}."]})
        document = read_document(request)
        result = import_document(
            document,
            team=team,
            actor=request.user,
            plan=plan,
            dry_run=_flag(request.data.get("dry_run", "")),
            filename=getattr(request.FILES.get("file"), "name", "") or "API upload",
        )
        if result.has_errors:
            code = status.HTTP_400_BAD_REQUEST
        else:
            code = status.HTTP_200_OK if result.dry_run else status.HTTP_201_CREATED
        return Response(result.as_dict(), status=code)


@extend_schema(exclude=True)
class SpecCheckView(SpecAPIView):
    """POST a document (`markdown` or `file`): its findings and score; nothing is saved."""

    permission_classes = [IsAuthenticated]

    def post(self, request):
        document = read_document(request)
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


def _markdown(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{name}.md"'
    return response


@extend_schema(exclude=True)
class MilestoneExportView(SpecAPIView):
    def get(self, request, pk):
        milestone = _milestone(request, pk)
        return _markdown(export_milestone(milestone), milestone.key)


@extend_schema(exclude=True)
class MilestoneCheckView(SpecAPIView):
    """The milestone's `spec_check`: score, counts and gaps, plus every finding."""

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


@extend_schema(exclude=True)
class PlanExportView(SpecAPIView):
    def get(self, request, pk):
        plan = Plan.objects.filter(pk=pk, team_id__in=team_ids(request)).first()
        if plan is None:
            raise NotFound()
        return _markdown(export_plan(plan), plan.key)
