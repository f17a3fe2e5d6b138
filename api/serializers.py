"""Representations and writes of the domain objects.

Writes never save a model directly: `create()` and `update()` call milestones.services, which
run the model's own rules (`full_clean`), save in a transaction, bump `version`, log Activity
and ask for the team's health to be re-evaluated. Their ValidationError becomes a 400 with
per-field messages (api.exceptions).

Every writable serializer refuses, with a 400 naming the field, input it would otherwise
drop: read-only fields (health, forecast, version, team, generated keys, timestamps…), fields
that can only be set on creation, and unknown names.
"""

from collections.abc import Mapping

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Team
from api.permissions import roles, team_ids
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
    SignoffOutcome,
    SignoffRole,
    StatusUpdate,
    progress_percent,
)
from notifications.models import NotificationPreferences
from notifications.preferences import apply_choices, time_zone_names
from specs import check as spec_check

User = get_user_model()

MAX_ID = 2**63 - 1  # beyond this no row exists (and SQLite cannot even be asked)
READ_ONLY = _("This field is read-only; leave it out of the request.")
CREATE_ONLY = _("This field is set when the object is created and cannot be changed.")
UNKNOWN = _("Unknown field.")


def actor(serializer):
    return serializer.context["request"].user


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """An id of an object in one of the requester's teams; any other id “does not exist”."""

    def __init__(self, *, team_path: str, **kwargs):
        self.team_path = team_path
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        ids = team_ids(request) if request else []
        return super().get_queryset().filter(**{f"{self.team_path}__in": ids})

    def to_internal_value(self, data):
        # Whole numbers only: Django would quietly read 1.5 or "1.0" as id 1.
        if isinstance(data, str) and data.isascii() and data.isdigit():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 0 < data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class MemberField(serializers.SlugRelatedField):
    """A user by username, among the people who share a team with the requester.

    Whether they belong to the object's own team is the model's rule (`clean()`).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "username")
        kwargs.setdefault("queryset", User.objects.all())
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        ids = team_ids(request) if request else []
        return User.objects.filter(memberships__team_id__in=ids).distinct()


class UsernameField(serializers.SlugRelatedField):
    """A user shown by username, read-only."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, allow_null=True, **kwargs)


class StrictModelSerializer(serializers.ModelSerializer):
    """Refuses read-only, create-only and unknown fields instead of silently dropping them."""

    create_only_fields: tuple[str, ...] = ()
    updating = False  # True on the classes `for_update()` makes for PUT and PATCH

    def get_validators(self):
        # Uniqueness and every other rule is checked once, by the model's full_clean in the
        # services; DRF's copies would drift (and cannot see the team of a new object).
        return []

    def get_fields(self):
        fields = super().get_fields()
        if self.updating:
            for name in self.create_only_fields:
                fields[name].read_only = True
        return fields

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for name in data:
                field = self.fields.get(name)
                if field is None:
                    errors[name] = [UNKNOWN]
                elif field.read_only:
                    create_only = self.updating and name in self.create_only_fields
                    errors[name] = [CREATE_ONLY if create_only else READ_ONLY]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    # Subclasses say which teams a new object would belong to (each needs the write role).
    def teams_of(self, validated_data) -> set[int]:
        raise NotImplementedError

    def update(self, instance, validated_data):
        services.update_object(instance, actor=actor(self), **validated_data)
        return instance


def for_update(serializer_class):
    """The same serializer for PUT and PATCH, with its create-only fields read-only.

    A class of its own, so the OpenAPI schema shows the update body as it really is.
    """
    name = serializer_class.__name__.replace("Serializer", "UpdateSerializer")
    attrs = {"updating": True, "__module__": serializer_class.__module__}
    attrs["__doc__"] = serializer_class.__doc__
    return type(name, (serializer_class,), attrs)


def scoped(model, team_path: str, **kwargs) -> ScopedRelatedField:
    return ScopedRelatedField(queryset=model.objects.all(), team_path=team_path, **kwargs)


# --- Teams --------------------------------------------------------------------------------


class TeamSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role in this team.")

    class Meta:
        model = Team
        fields = [
            "id",
            "slug",
            "name",
            "role",
            "milestone_key_prefix",
            "health_slip_days",
            "health_behind_points",
            "health_risk_score",
            "health_signoff_days",
            "health_stale_update_days",
            "health_min_confidence",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=["admin", "member", "viewer"]))
    def get_role(self, team) -> str:
        return roles(self.context["request"]).get(team.pk)


# --- Plans --------------------------------------------------------------------------------


class PlanSerializer(StrictModelSerializer):
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), help_text="The team's slug."
    )
    owner = MemberField(help_text="Username of a team member, or null.")
    create_only_fields = ("team",)

    class Meta:
        model = Plan
        fields = [
            "id",
            "team",
            "key",
            "title",
            "summary",
            "owner",
            "start_date",
            "target_date",
            "status",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["key", "version", "created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        if not fields["team"].read_only:
            request = self.context.get("request")
            fields["team"].queryset = Team.objects.filter(
                pk__in=team_ids(request) if request else []
            )
        return fields

    def teams_of(self, validated_data):
        return {validated_data["team"].pk}

    def create(self, validated_data):
        return services.create_object(Plan(**validated_data), actor=actor(self))


# --- Criteria -----------------------------------------------------------------------------


class CriterionSerializer(StrictModelSerializer):
    plan = scoped(Plan, "team_id", required=False, allow_null=True)
    milestone = scoped(Milestone, "team_id", required=False, allow_null=True)
    deliverable = scoped(Deliverable, "milestone__team_id", required=False, allow_null=True)
    kind = serializers.ChoiceField(
        choices=["success", "acceptance", "plan"],
        read_only=True,
        help_text="success (on a milestone), acceptance (on a deliverable) or plan.",
    )
    checked = serializers.BooleanField(
        required=False,
        help_text="Tick or untick; who and when are recorded. Measured criteria are met by "
        "their actual value instead.",
    )
    checked_by = UsernameField()
    create_only_fields = ("plan", "milestone", "deliverable")

    class Meta:
        model = Criterion
        fields = [
            "id",
            "kind",
            "plan",
            "milestone",
            "deliverable",
            "text",
            "description",
            "category",
            "level",
            "target",
            "comparator",
            "unit",
            "actual",
            "checked",
            "checked_by",
            "checked_at",
            "met",
            "position",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["checked_at", "met", "position", "version", "created_at", "updated_at"]

    def teams_of(self, validated_data):
        teams = set()
        if validated_data.get("plan"):
            teams.add(validated_data["plan"].team_id)
        if validated_data.get("milestone"):
            teams.add(validated_data["milestone"].team_id)
        if validated_data.get("deliverable"):
            teams.add(validated_data["deliverable"].milestone.team_id)
        return teams

    def create(self, validated_data):
        checked = validated_data.pop("checked", False)
        criterion = Criterion(**validated_data)
        siblings = _criterion_siblings(criterion)
        if siblings is not None:
            criterion.position = services.next_position(siblings)
        services.create_object(criterion, actor=actor(self))
        if checked:
            services.set_criterion_checked(criterion, actor=actor(self), checked=True)
        return criterion

    def update(self, instance, validated_data):
        checked = validated_data.pop("checked", None)
        if validated_data:
            services.update_object(instance, actor=actor(self), **validated_data)
        if checked is not None:
            services.set_criterion_checked(instance, actor=actor(self), checked=checked)
        return instance


def _criterion_siblings(criterion):
    for owner in ("deliverable", "milestone", "plan"):
        parent = getattr(criterion, owner)
        if parent is not None:
            return Criterion.objects.filter(**{owner: parent})
    return None


# --- Deliverables -------------------------------------------------------------------------


class DeliverableSerializer(StrictModelSerializer):
    milestone = scoped(Milestone, "team_id")
    owner = MemberField(help_text="Username of a team member, or null.")
    criteria = CriterionSerializer(
        many=True, read_only=True, help_text="Acceptance criteria, in order."
    )
    create_only_fields = ("milestone",)

    class Meta:
        model = Deliverable
        fields = [
            "id",
            "milestone",
            "title",
            "description",
            "owner",
            "owner_label",
            "status",
            "target_date",
            "position",
            "criteria",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["position", "version", "created_at", "updated_at"]

    def teams_of(self, validated_data):
        return {validated_data["milestone"].team_id}

    def create(self, validated_data):
        deliverable = Deliverable(**validated_data)
        deliverable.position = services.next_position(deliverable.milestone.deliverables.all())
        return services.create_object(deliverable, actor=actor(self))


# --- Milestones ---------------------------------------------------------------------------


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="e.g. overdue, forecast_late, behind_schedule")
    health = serializers.ChoiceField(choices=["on_track", "at_risk", "off_track"])
    message = serializers.CharField()
    link = serializers.CharField(help_text="Fragment on the milestone page, e.g. #risk-12")


OUTCOMES = " | ".join(SignoffOutcome.values)


class SignoffRoleSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    holder = serializers.CharField(allow_null=True, help_text="Username, or null.")
    decision = serializers.CharField(
        allow_null=True, help_text=f"The current decision ({OUTCOMES}), or null: awaiting."
    )
    with_exceptions = serializers.BooleanField()
    decided_at = serializers.DateTimeField(allow_null=True, help_text="Of the latest decision.")
    stale = serializers.BooleanField(
        help_text="The latest decision no longer counts (scope or holder changed since)."
    )


class SignoffSummarySerializer(serializers.Serializer):
    governed = serializers.BooleanField(help_text="Some role has a holder.")
    approved = serializers.IntegerField(help_text="Roles with a current approval.")
    required = serializers.IntegerField(help_text="Roles.")
    complete = serializers.BooleanField(help_text="Every role has a current approval.")
    scope_hash = serializers.CharField(
        allow_null=True,
        help_text="The milestone's current scope hash: send it with a decision as the scope "
        "you saw.",
    )
    roles = SignoffRoleSummarySerializer(many=True)


class SpecGapSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The spec-check rule, e.g. deliverable_without_owner.")
    severity = serializers.ChoiceField(choices=["error", "warning"])
    count = serializers.IntegerField(help_text="How many places break the rule.")
    message = serializers.CharField(help_text="How to fix it.")


class SpecCheckSerializer(serializers.Serializer):
    score = serializers.IntegerField(help_text="Completeness 0–100 (see the README's formula).")
    errors = serializers.IntegerField()
    warnings = serializers.IntegerField()
    gaps = SpecGapSerializer(many=True)


class MilestoneSerializer(StrictModelSerializer):
    """The whole milestone spec, in a fixed number of queries for a page of any size."""

    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    plan = scoped(Plan, "team_id", help_text="Id of a plan of one of your teams.")
    plan_key = serializers.CharField(source="plan.key", read_only=True)
    owner = MemberField(help_text="Username of a team member, or null.")
    progress = serializers.SerializerMethodField(help_text="Percent of checkable items met.")
    health_reasons = ReasonSerializer(many=True, read_only=True)
    slip_days = serializers.IntegerField(
        source="forecast_slip_days",
        read_only=True,
        allow_null=True,
        help_text="Forecast finish minus baseline target date, in days.",
    )
    open_risks = serializers.IntegerField(read_only=True, help_text="Open or mitigating risks.")
    open_blockers = serializers.IntegerField(read_only=True, help_text="Unresolved blockers.")
    deliverables = DeliverableSerializer(
        many=True, read_only=True, help_text="With their acceptance criteria, in order."
    )
    success_criteria = CriterionSerializer(
        source="criteria", many=True, read_only=True, help_text="In order."
    )
    signoffs = serializers.SerializerMethodField(
        help_text="Sign-off state: each role, its holder and current decision, stale flags."
    )

    spec_check = serializers.SerializerMethodField(
        help_text="The spec check: completeness score and the rules it breaks (specs/check.py)."
    )

    class Meta:
        model = Milestone
        fields = [
            "id",
            "team",
            "plan",
            "plan_key",
            "key",
            "title",
            "summary",
            "owner",
            "owning_group",
            "priority",
            "status",
            "start_date",
            "target_date",
            "baseline_target_date",
            "completed_on",
            "estimated_effort",
            "position",
            "rollback_plan",
            "retro_went_well",
            "retro_went_badly",
            "retro_actions",
            "retro_learnings",
            "progress",
            "health",
            "health_reasons",
            "health_evaluated_at",
            "forecast_start",
            "forecast_finish",
            "slip_days",
            "slack_days",
            "is_critical",
            "open_risks",
            "open_blockers",
            "deliverables",
            "success_criteria",
            "signoffs",
            "spec_check",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "key",
            "baseline_target_date",
            "completed_on",
            "position",
            "health",
            "health_evaluated_at",
            "forecast_start",
            "forecast_finish",
            "slack_days",
            "is_critical",
            "version",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.IntegerField(min_value=0, max_value=100))
    def get_progress(self, milestone) -> int:
        return progress_percent(milestone.status, milestone.progress_counts()) or 0

    @extend_schema_field(SpecCheckSerializer)
    def get_spec_check(self, milestone) -> dict:
        return spec_check.spec_check_summary(milestone)

    @extend_schema_field(SignoffSummarySerializer)
    def get_signoffs(self, milestone) -> dict:
        """Sign-off state (signoffs.summary). For a list, the whole list's state is loaded at
        once (`signoffs.states_for`, 2 queries) and kept in the context for the other rows."""
        states = self.context.get("_signoff_states")
        if states is None or milestone.pk not in states:
            parent = self.parent
            batch = list(parent.instance) if isinstance(parent, serializers.ListSerializer) else []
            if milestone not in batch:
                batch = [milestone]
            states = signoffs.states_for(batch)
            self.context["_signoff_states"] = states
        return signoffs.summary(states[milestone.pk])

    def teams_of(self, validated_data):
        return {validated_data["plan"].team_id}

    def create(self, validated_data):
        plan = validated_data["plan"]
        milestone = Milestone(team_id=plan.team_id, **validated_data)
        milestone.position = services.next_position(plan.milestones.all())
        return services.create_object(milestone, actor=actor(self))


class HealthSerializer(serializers.ModelSerializer):
    """Computed schedule and health of a milestone (never written; see the README)."""

    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    plan_key = serializers.CharField(source="plan.key", read_only=True)
    health_reasons = ReasonSerializer(many=True, read_only=True)
    slip_days = serializers.IntegerField(
        source="forecast_slip_days",
        read_only=True,
        allow_null=True,
        help_text="Forecast finish minus baseline target date, in days.",
    )
    target_slip_days = serializers.IntegerField(
        source="slip_days",
        read_only=True,
        allow_null=True,
        help_text="Target date minus baseline target date, in days.",
    )

    class Meta:
        model = Milestone
        fields = [
            "id",
            "team",
            "plan",
            "plan_key",
            "key",
            "title",
            "status",
            "health",
            "health_reasons",
            "health_evaluated_at",
            "start_date",
            "target_date",
            "baseline_target_date",
            "forecast_start",
            "forecast_finish",
            "slip_days",
            "target_slip_days",
            "slack_days",
            "is_critical",
        ]
        read_only_fields = fields


# --- Risks, blockers, dependencies, status updates ----------------------------------------


class RiskSerializer(StrictModelSerializer):
    milestone = scoped(Milestone, "team_id")
    owner = MemberField(help_text="Username of a team member, or null.")
    create_only_fields = ("milestone",)

    class Meta:
        model = Risk
        fields = [
            "id",
            "milestone",
            "title",
            "description",
            "likelihood",
            "impact",
            "score",
            "mitigation",
            "fallback",
            "owner",
            "owner_label",
            "status",
            "position",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["score", "position", "version", "created_at", "updated_at"]

    def teams_of(self, validated_data):
        return {validated_data["milestone"].team_id}

    def create(self, validated_data):
        risk = Risk(**validated_data)
        risk.position = services.next_position(risk.milestone.risks.all())
        return services.create_object(risk, actor=actor(self))


class BlockerSerializer(StrictModelSerializer):
    milestone = scoped(Milestone, "team_id")
    owner = MemberField(help_text="Username of a team member, or null.")
    is_resolved = serializers.BooleanField(read_only=True)
    create_only_fields = ("milestone",)

    class Meta:
        model = Blocker
        fields = [
            "id",
            "milestone",
            "title",
            "description",
            "impact",
            "owner",
            "owner_label",
            "next_action",
            "priority",
            "target_resolution_date",
            "raised_on",
            "resolved_on",
            "resolution",
            "is_resolved",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["version", "created_at", "updated_at"]

    def teams_of(self, validated_data):
        return {validated_data["milestone"].team_id}

    def create(self, validated_data):
        return services.create_object(Blocker(**validated_data), actor=actor(self))


class DependencySerializer(StrictModelSerializer):
    """`predecessor` must finish before `successor` starts (plus `lag_days`). Never edited."""

    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    predecessor = scoped(Milestone, "team_id")
    successor = scoped(Milestone, "team_id")
    predecessor_key = serializers.CharField(source="predecessor.key", read_only=True)
    successor_key = serializers.CharField(source="successor.key", read_only=True)

    class Meta:
        model = Dependency
        fields = [
            "id",
            "team",
            "predecessor",
            "predecessor_key",
            "successor",
            "successor_key",
            "lag_days",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def teams_of(self, validated_data):
        return {validated_data["predecessor"].team_id, validated_data["successor"].team_id}

    def create(self, validated_data):
        return services.add_dependency(
            validated_data["predecessor"],
            validated_data["successor"],
            actor=actor(self),
            lag_days=validated_data.get("lag_days", 0),
        )


class StatusUpdateSerializer(StrictModelSerializer):
    """A dated post on a milestone; posted, never edited (delete and post again)."""

    milestone = scoped(Milestone, "team_id")
    author = UsernameField()

    class Meta:
        model = StatusUpdate
        fields = [
            "id",
            "milestone",
            "author",
            "health",
            "percent_complete",
            "confidence",
            "narrative",
            "next_update_on",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def teams_of(self, validated_data):
        return {validated_data["milestone"].team_id}

    def create(self, validated_data):
        fields = dict(validated_data)
        milestone = fields.pop("milestone")
        return services.post_status_update(milestone, actor=actor(self), **fields)


class ActivitySerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    milestone_key = serializers.CharField(source="milestone.key", read_only=True, allow_null=True)
    actor = UsernameField()
    description = serializers.CharField(source="describe", read_only=True)

    class Meta:
        model = Activity
        fields = [
            "id",
            "team",
            "plan",
            "milestone",
            "milestone_key",
            "actor",
            "verb",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "description",
            "created_at",
        ]
        read_only_fields = fields


# --- Sign-offs ----------------------------------------------------------------------------


class SignoffRoleSerializer(StrictModelSerializer):
    """A role that must sign a milestone off, its holder and the state of its decision.

    Created, given a holder and dropped by team admins only (signoffs.add_role, set_holder,
    drop_role); a dropped role with decisions is kept for the record but no longer listed.
    """

    milestone = scoped(Milestone, "team_id", help_text="Id of a milestone of one of your teams.")
    milestone_key = serializers.CharField(source="milestone.key", read_only=True)
    name = serializers.CharField(max_length=60, help_text="e.g. Product owner.")
    holder = MemberField(help_text="Username of a team member who decides for it, or null.")
    decision = serializers.SerializerMethodField(
        help_text="The holder's current decision (null: awaiting)."
    )
    stale = serializers.SerializerMethodField(
        help_text="The latest decision no longer counts (scope or holder changed since)."
    )

    create_only_fields = ("milestone", "name")

    class Meta:
        model = SignoffRole
        fields = [
            "id",
            "milestone",
            "milestone_key",
            "name",
            "holder",
            "position",
            "decision",
            "stale",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["position", "version", "created_at", "updated_at"]

    @staticmethod
    def _latest_counts(role) -> bool | None:
        """None: no decision yet; else whether the latest one is current."""
        if getattr(role, "latest_scope", None) is None:
            return None
        return signoffs.counts(
            role.latest_scope, role.latest_by, role.milestone.scope_hash, role.holder_id
        )

    @extend_schema_field(
        serializers.CharField(allow_null=True, help_text=f"{OUTCOMES}, or null: awaiting.")
    )
    def get_decision(self, role) -> str | None:
        return role.latest_outcome if self._latest_counts(role) else None

    def get_stale(self, role) -> bool:
        return self._latest_counts(role) is False

    def teams_of(self, validated_data):
        return {validated_data["milestone"].team_id}

    def create(self, validated_data):
        return signoffs.add_role(
            validated_data["milestone"],
            actor=actor(self),
            name=validated_data["name"],
            holder=validated_data.get("holder"),
        )

    def update(self, instance, validated_data):
        if "holder" in validated_data:
            signoffs.set_holder(instance, actor=actor(self), holder=validated_data["holder"])
        return instance


class SignoffDecisionSerializer(StrictModelSerializer):
    """One decision by a role's holder: append-only, bound to the scope it was made on.

    Posted by the role's holder (whatever their team role, viewers included) through
    signoffs.decide; never changed or deleted.
    """

    role = scoped(SignoffRole, "milestone__team_id", help_text="Id of the sign-off role you hold.")
    decided_by = UsernameField()
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Required to request changes, to reject, and to approve with exceptions "
        "(name them).",
    )
    with_exceptions = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Approve although criteria or deliverables are open; name them in the comment.",
    )
    scope_hash = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="On a request: the scope hash you saw (the milestone's `signoffs.scope_hash`);"
        " refused if the scope has moved since. On a response: the scope decided on.",
    )
    current = serializers.SerializerMethodField(
        help_text="Still counts: the latest of its role, on today's scope, by today's holder."
    )

    class Meta:
        model = SignoffDecision
        fields = [
            "id",
            "milestone",
            "role",
            "role_name",
            "decided_by",
            "outcome",
            "with_exceptions",
            "comment",
            "scope_hash",
            "sequence",
            "previous_hash",
            "record_hash",
            "decided_at",
            "current",
        ]
        read_only_fields = [
            "milestone",
            "role_name",
            "sequence",
            "previous_hash",
            "record_hash",
            "decided_at",
        ]

    def get_current(self, decision) -> bool:
        role = decision.role
        return bool(
            role.removed_at is None
            and getattr(decision, "latest_pk", None) == decision.pk
            and signoffs.counts(
                decision.scope_hash,
                decision.decided_by_id,
                decision.milestone.scope_hash,
                role.holder_id,
            )
        )

    def create(self, validated_data):
        role = validated_data["role"]
        return signoffs.decide(
            role.milestone,
            user=actor(self),
            role=role,
            outcome=validated_data["outcome"],
            comment=validated_data.get("comment", ""),
            with_exceptions=validated_data.get("with_exceptions", False),
            seen_scope_hash=validated_data.get("scope_hash") or None,
        )


class MoveSerializer(serializers.Serializer):
    offset = serializers.IntegerField(
        min_value=-10_000,
        max_value=10_000,
        help_text="Places to move within its list: negative is up (earlier), positive down.",
    )


# --- Notification preferences -------------------------------------------------------------


class NotificationPreferencesSerializer(StrictModelSerializer):
    """What the requesting user receives by e-mail, when, and about which plans.

    The user's own row (the defaults until they first save); `time_zone` is the user's.
    `muted_plans` lists the plans of your teams left out of your digest; mutes of plans in
    teams you have left are kept (they hold again if you come back) but never shown. PUT
    takes every field, PATCH any of them; the whole change is saved at once or not at all.
    """

    time_zone = serializers.ChoiceField(
        choices=time_zone_names(),
        help_text="IANA time zone (e.g. Europe/Berlin): the digest hour and the times in "
        "e-mails follow it.",
    )
    # The form offers whole hours; the model's check constraint enforces the same 0–23.
    digest_hour = serializers.IntegerField(
        min_value=0, max_value=23, help_text="Hour of the digest in your time zone, 0–23."
    )
    muted_plans = ScopedRelatedField(
        many=True,
        queryset=Plan.objects.all(),
        team_path="team_id",
        help_text="Ids of plans of your teams to leave out of your digest.",
    )

    class Meta:
        model = NotificationPreferences
        fields = [
            "digest_enabled",
            "digest_weekday",
            "digest_hour",
            "digest_when_empty",
            "at_risk_alerts",
            "signoff_requests",
            "signoff_decisions",
            "update_reminders",
            "completion_notices",
            "muted_plans",
            "time_zone",
        ]

    def get_fields(self):
        fields = super().get_fields()
        if not self.partial:  # PUT replaces the whole set of preferences
            for field in fields.values():
                field.required = True
        return fields

    def to_representation(self, preferences):
        user = self.context["request"].user
        visible = team_ids(self.context["request"])
        muted = (
            preferences.muted_plans.filter(team_id__in=visible).order_by("pk")
            if preferences.pk
            else []
        )
        data = {
            name: getattr(preferences, name)
            for name in self.Meta.fields
            if name not in ("muted_plans", "time_zone")
        }
        return {**data, "muted_plans": [plan.pk for plan in muted], "time_zone": user.time_zone}

    @transaction.atomic
    def update(self, preferences, validated_data):
        user = self.context["request"].user
        time_zone = validated_data.pop("time_zone", None)
        muted = validated_data.pop("muted_plans", None)
        # Locked, so two integrations saving at once apply one after the other.
        saved = NotificationPreferences.objects.select_for_update().filter(user=user).first()
        preferences = saved or NotificationPreferences(user=user)
        for name, value in validated_data.items():
            setattr(preferences, name, value)
        preferences.full_clean()
        preferences.save()
        shown = wanted = set()
        if muted is not None:
            visible = team_ids(self.context["request"])
            shown = set(preferences.muted_plans.filter(team_id__in=visible))
            wanted = set(muted)
        apply_choices(
            user, preferences, mute=wanted - shown, unmute=shown - wanted, time_zone=time_zone
        )
        return preferences
