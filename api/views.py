"""The REST API's resources: one viewset per kind of object.

Every queryset is narrowed to the requester's teams (api.permissions.team_ids), so another
team's object answers 404. Writes go through the serializers to milestones.services inside
one transaction, after the If-Match check (api.concurrency) on the locked row.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.models import Team
from api import filters, readers, serializers
from api.concurrency import PreconditionFailed, check_precondition, etag_for
from api.permissions import HolderDecidesPermission, TeamRolePermission, require_write, team_ids
from milestones import services, signoffs
from milestones.models import (
    Activity,
    Blocker,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    Plan,
    Risk,
    SignoffDecision,
    SignoffRole,
    StatusUpdate,
    subquery_count,
)
from notifications.models import NotificationPreferences

ID_PATTERN = r"[0-9]{1,18}"


class ScopedViewSetMixin:
    """Team scoping, role checks, ETags and If-Match for one kind of object."""

    permission_classes = [TeamRolePermission]
    lookup_value_regex = ID_PATTERN
    team_path = "team_id"  # from the model to its team's id, in ORM lookup syntax
    versioned = True  # writes must name the version they read (If-Match)
    update_serializer_class = None

    def base_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        ids = team_ids(self.request)
        return self.base_queryset().filter(**{f"{self.team_path}__in": ids})

    def team_id_of(self, obj) -> int:
        value = obj
        for part in self.team_path.split("__"):
            value = getattr(value, part)
        return value

    def get_serializer_class(self):
        if self.action in ("update", "partial_update") and self.update_serializer_class:
            return self.update_serializer_class
        return self.serializer_class

    def represent(self, pk, *, status_code=status.HTTP_200_OK, headers=None) -> Response:
        """The object as a GET shows it now, with its ETag."""
        obj = self.get_queryset().get(pk=pk)
        data = self.serializer_class(obj, context=self.get_serializer_context()).data
        return Response(
            data, status=status_code, headers={"ETag": etag_for(obj), **(headers or {})}
        )

    def locked(self, obj):
        return type(obj).objects.select_for_update().get(pk=obj.pk)

    def retrieve(self, request, *args, **kwargs):
        obj = self.get_object()
        data = self.get_serializer(obj).data
        return Response(data, headers={"ETag": etag_for(obj)})


class CreateMixin:
    """POST: validate, check the role in the new object's team, save through the services."""

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        for team_id in serializer.teams_of(serializer.validated_data):
            require_write(request, team_id)
        with transaction.atomic():
            obj = serializer.save()
        location = self.reverse_action("detail", kwargs={self.lookup_field: obj.pk})
        headers = {"Location": request.build_absolute_uri(location)}
        return self.represent(obj.pk, status_code=status.HTTP_201_CREATED, headers=headers)


class UpdateMixin:
    """PUT and PATCH: If-Match checked on the locked row, then saved through the services."""

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        obj = self.get_object()
        # Malformed input is a 400 whatever the version; then If-Match on the locked row; then
        # the model's own rules (full_clean in the services).
        serializer = self.get_serializer(obj, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                current = self.locked(obj)
                check_precondition(request, current, required=self.versioned)
                serializer.instance = current
                serializer.save()
        except PreconditionFailed:
            return self.represent(obj.pk, status_code=status.HTTP_412_PRECONDITION_FAILED)
        return self.represent(obj.pk)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)


class DestroyMixin:
    """DELETE through services.delete_object (logged), after the If-Match check."""

    def destroy(self, request, *args, **kwargs):
        obj = self.get_object()
        try:
            with transaction.atomic():
                current = self.locked(obj)
                check_precondition(request, current, required=self.versioned)
                services.delete_object(current, actor=request.user)
        except PreconditionFailed:
            return self.represent(obj.pk, status_code=status.HTTP_412_PRECONDITION_FAILED)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MoveMixin:
    """POST …/{id}/move/ {"offset": -1}: re-order within its list (services.move_in_order)."""

    @extend_schema(request=serializers.MoveSerializer, summary="Move up or down in its list")
    @action(detail=True, methods=["post"])
    def move(self, request, *args, **kwargs):
        obj = self.get_object()
        serializer = serializers.MoveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            current = self.locked(obj)
            services.move_in_order(
                current, actor=request.user, offset=serializer.validated_data["offset"]
            )
        return self.represent(obj.pk)


class ModelViewSet(
    ScopedViewSetMixin,
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    pass


class AppendOnlyViewSet(
    ScopedViewSetMixin, CreateMixin, DestroyMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """Objects that are created and deleted but never edited; If-Match is optional."""

    versioned = False


class ReadOnlyViewSet(ScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    pass


# --- Resources ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Your teams, with your role in each"),
    retrieve=extend_schema(summary="One of your teams"),
)
class TeamViewSet(ReadOnlyViewSet):
    serializer_class = serializers.TeamSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,60}"
    team_path = "pk"

    def base_queryset(self):
        return Team.objects.order_by("name", "pk")

    def retrieve(self, request, *args, **kwargs):
        obj = self.get_object()
        return Response(self.get_serializer(obj).data)


class PlanViewSet(ModelViewSet):
    serializer_class = serializers.PlanSerializer
    update_serializer_class = serializers.for_update(serializers.PlanSerializer)
    filterset_class = filters.PlanFilter

    def base_queryset(self):
        return Plan.objects.select_related("team", "owner").order_by("team_id", "key", "pk")


def acceptance_criteria() -> Prefetch:
    return Prefetch(
        "criteria",
        queryset=Criterion.objects.select_related("checked_by").order_by("position", "pk"),
    )


@extend_schema_view(
    list=extend_schema(
        summary="Milestones with their whole spec",
        description="Each milestone comes with its deliverables (with acceptance criteria), "
        "success criteria, open risk and blocker counts, progress and health with reasons, "
        "in a fixed number of queries whatever the page size.",
    )
)
class MilestoneViewSet(MoveMixin, ModelViewSet):
    """Reads are built by api.readers from `.values()` rows (the same JSON as
    MilestoneSerializer, much faster); writes go through MilestoneSerializer."""

    serializer_class = serializers.MilestoneSerializer
    update_serializer_class = serializers.for_update(serializers.MilestoneSerializer)
    filterset_class = filters.MilestoneFilter

    def base_queryset(self):
        return filters.sort_milestones(Milestone.objects.select_related("team"))

    def serializer_queryset(self):
        """What MilestoneSerializer needs to render without extra queries (tests compare it
        with api.readers)."""
        deliverables = (
            Deliverable.objects.select_related("owner")
            .prefetch_related(acceptance_criteria())
            .order_by("position", "pk")
        )
        success = Criterion.objects.select_related("checked_by").order_by("position", "pk")
        return (
            self.get_queryset()
            .select_related("plan", "owner")
            .with_progress()
            .annotate(
                open_risks=subquery_count(Risk.objects.unresolved(), "milestone"),
                open_blockers=subquery_count(Blocker.objects.unresolved(), "milestone"),
            )
            .prefetch_related(
                Prefetch("deliverables", queryset=deliverables),
                Prefetch("criteria", queryset=success),
            )
        )

    def list(self, request, *args, **kwargs):
        queryset = readers.annotate_rows(self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(readers.rows(list(page)))

    def _read(self, pk) -> dict:
        row = readers.annotate_rows(self.get_queryset().filter(pk=pk)).get()
        return readers.rows([row])[0]

    def retrieve(self, request, *args, **kwargs):
        obj = self.get_object()
        return Response(self._read(obj.pk), headers={"ETag": etag_for(obj)})

    def represent(self, pk, *, status_code=status.HTTP_200_OK, headers=None) -> Response:
        data = self._read(pk)
        etag = f'"{data["version"]}"'
        return Response(data, status=status_code, headers={"ETag": etag, **(headers or {})})


class HealthViewSet(ReadOnlyViewSet):
    """Computed health, reasons, forecast, slip, slack and the critical flag per milestone."""

    serializer_class = serializers.HealthSerializer
    filterset_class = filters.MilestoneFilter

    def base_queryset(self):
        return filters.sort_milestones(Milestone.objects.select_related("team", "plan"))

    def retrieve(self, request, *args, **kwargs):
        obj = self.get_object()
        return Response(self.get_serializer(obj).data)


class DeliverableViewSet(MoveMixin, ModelViewSet):
    serializer_class = serializers.DeliverableSerializer
    update_serializer_class = serializers.for_update(serializers.DeliverableSerializer)
    filterset_class = filters.DeliverableFilter
    team_path = "milestone__team_id"

    def base_queryset(self):
        return (
            Deliverable.objects.select_related("milestone", "owner")
            .prefetch_related(acceptance_criteria())
            .order_by("milestone_id", "position", "pk")
        )


class CriterionViewSet(MoveMixin, ModelViewSet):
    serializer_class = serializers.CriterionSerializer
    update_serializer_class = serializers.for_update(serializers.CriterionSerializer)
    filterset_class = filters.CriterionFilter

    def base_queryset(self):
        return Criterion.objects.select_related(
            "checked_by", "plan", "milestone", "deliverable__milestone"
        ).order_by("pk")

    def get_queryset(self):
        ids = team_ids(self.request)
        return self.base_queryset().filter(
            Q(plan__team_id__in=ids)
            | Q(milestone__team_id__in=ids)
            | Q(deliverable__milestone__team_id__in=ids)
        )

    def team_id_of(self, obj) -> int:
        if obj.plan_id:
            return obj.plan.team_id
        if obj.milestone_id:
            return obj.milestone.team_id
        return obj.deliverable.milestone.team_id


class RiskViewSet(ModelViewSet):
    serializer_class = serializers.RiskSerializer
    update_serializer_class = serializers.for_update(serializers.RiskSerializer)
    filterset_class = filters.RiskFilter
    team_path = "milestone__team_id"

    def base_queryset(self):
        return Risk.objects.select_related("milestone", "owner").order_by(
            "milestone_id", "position", "pk"
        )


class BlockerViewSet(ModelViewSet):
    serializer_class = serializers.BlockerSerializer
    update_serializer_class = serializers.for_update(serializers.BlockerSerializer)
    filterset_class = filters.BlockerFilter
    team_path = "milestone__team_id"

    def base_queryset(self):
        return Blocker.objects.select_related("milestone", "owner").order_by(
            "milestone_id", "resolved_on", "target_resolution_date", "pk"
        )


class DependencyViewSet(AppendOnlyViewSet):
    serializer_class = serializers.DependencySerializer
    filterset_class = filters.DependencyFilter

    def base_queryset(self):
        return Dependency.objects.select_related("team", "predecessor", "successor").order_by("pk")


class StatusUpdateViewSet(AppendOnlyViewSet):
    serializer_class = serializers.StatusUpdateSerializer
    filterset_class = filters.StatusUpdateFilter
    team_path = "milestone__team_id"

    def base_queryset(self):
        return StatusUpdate.objects.select_related("milestone", "author").order_by(
            "-created_at", "-pk"
        )


class ActivityViewSet(ReadOnlyViewSet):
    """Who changed what, when, from what to what; newest first."""

    serializer_class = serializers.ActivitySerializer
    filterset_class = filters.ActivityFilter

    def base_queryset(self):
        return Activity.objects.select_related("team", "actor", "milestone").order_by(
            "-created_at", "-pk"
        )

    def retrieve(self, request, *args, **kwargs):
        obj = self.get_object()
        return Response(self.get_serializer(obj).data)


# --- Sign-offs ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Sign-off roles and their holders"),
    retrieve=extend_schema(summary="One sign-off role"),
    create=extend_schema(summary="Add a sign-off role to a milestone (team admins)"),
    partial_update=extend_schema(summary="Give the role to another holder (team admins)"),
    destroy=extend_schema(summary="Drop the role from its milestone (team admins)"),
)
class SignoffRoleViewSet(ScopedViewSetMixin, CreateMixin, UpdateMixin, mixins.ListModelMixin,
                         viewsets.GenericViewSet):  # fmt: skip
    """Roles, holders and whether each awaits a decision. Writes call signoffs.add_role,
    set_holder and drop_role, which only a team admin may (403 for anybody else)."""

    serializer_class = serializers.SignoffRoleSerializer
    update_serializer_class = serializers.for_update(serializers.SignoffRoleSerializer)
    filterset_class = filters.SignoffRoleFilter
    team_path = "milestone__team_id"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def base_queryset(self):
        return signoffs.with_latest_decision(
            SignoffRole.objects.active().select_related("milestone", "holder")
        ).order_by("milestone_id", "position", "pk")

    def locked(self, obj):
        return SignoffRole.objects.select_for_update().get(pk=obj.pk)

    def destroy(self, request, *args, **kwargs):
        obj = self.get_object()
        try:
            with transaction.atomic():
                current = self.locked(obj)
                check_precondition(request, current, required=self.versioned)
                signoffs.drop_role(current, actor=request.user)
        except PreconditionFailed:
            return self.represent(obj.pk, status_code=status.HTTP_412_PRECONDITION_FAILED)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Sign-off decisions, oldest first per milestone"),
    retrieve=extend_schema(summary="One sign-off decision"),
    create=extend_schema(
        summary="Decide for a sign-off role you hold",
        description="Approve, request changes or reject, through signoffs.decide: only the "
        "role's holder may (403), a comment is required except for a plain approval, and an "
        "approval is refused (400, reasons listed under `outcome`) while criteria or "
        "deliverables are open, unless `with_exceptions` names them in the comment. "
        "Decisions are never changed or deleted.",
    ),
)
class SignoffDecisionViewSet(ScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Append-only: POST to decide; PUT, PATCH and DELETE answer 405."""

    serializer_class = serializers.SignoffDecisionSerializer
    permission_classes = [HolderDecidesPermission]
    filterset_class = filters.SignoffDecisionFilter
    team_path = "milestone__team_id"
    http_method_names = ["get", "post", "head", "options"]
    sends_etag = False  # never changed, so nothing to send back in If-Match

    def base_queryset(self):
        return (
            SignoffDecision.objects.select_related("milestone", "role", "decided_by")
            .annotate(latest_pk=signoffs.latest_decision_subquery("pk", role_ref="role_id"))
            .order_by("milestone_id", "sequence")
        )

    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            decision = serializer.save()
        except DjangoValidationError as error:
            # decide() calls the scope the client saw `scope`; the request field is scope_hash.
            if hasattr(error, "error_dict") and "scope" in error.error_dict:
                raise DjangoValidationError({"scope_hash": error.error_dict["scope"]}) from error
            raise
        data = self.get_serializer(self.get_queryset().get(pk=decision.pk)).data
        location = request.build_absolute_uri(
            self.reverse_action("detail", kwargs={self.lookup_field: decision.pk})
        )
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})


# --- The requester's own settings ----------------------------------------------------------


@extend_schema_view(
    retrieve=extend_schema(summary="Your notification preferences"),
    update=extend_schema(summary="Replace your notification preferences (every field)"),
    partial_update=extend_schema(summary="Change some of your notification preferences"),
)
class NotificationPreferencesViewSet(viewsets.GenericViewSet):
    """`me/notification-preferences/`: the requesting user's own preferences, whatever their
    role in their teams (a viewer chooses their e-mails too). No If-Match: only the user
    themselves writes them, and each save takes the row's lock."""

    serializer_class = serializers.NotificationPreferencesSerializer
    permission_classes = [IsAuthenticated]
    filter_backends = []
    pagination_class = None
    sends_etag = False
    error_codes = {
        "retrieve": ["401", "429"],
        # 403: a session write without its CSRF token.
        "update": ["400", "401", "403", "409", "429"],
        "partial_update": ["400", "401", "403", "409", "429"],
    }

    def get_object(self):
        return NotificationPreferences.for_user(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        preferences = serializer.save()
        return Response(self.get_serializer(preferences).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)


@csrf_exempt
def not_found(request, *args, **kwargs):
    return JsonResponse({"detail": "Not found."}, status=404)
