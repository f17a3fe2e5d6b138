"""Admin for every domain model.

Non-superuser staff see only the teams they administer. Saves go through the same services as
the app, so admin edits are validated by the model rules and appear in the activity log.
"""

from django.contrib import admin
from django.db.models import Q

from accounts.admin import admin_team_ids
from accounts.models import Team
from milestones import services
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
    Stakeholder,
    StatusUpdate,
)


class TeamScopedAdmin(admin.ModelAdmin):
    team_path = "team"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.team_path}__in": admin_team_ids(request)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            related = db_field.related_model
            if related is Team:
                kwargs["queryset"] = Team.objects.filter(pk__in=admin_team_ids(request))
            elif related in (Plan, Milestone):
                kwargs["queryset"] = related.objects.filter(team__in=admin_team_ids(request))
            elif related is Deliverable:
                kwargs["queryset"] = Deliverable.objects.filter(
                    milestone__team__in=admin_team_ids(request)
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            fresh = type(obj).objects.get(pk=obj.pk)
            services.update_object(fresh, actor=request.user, **changes)
        else:
            services.create_object(obj, actor=request.user)

    def delete_model(self, request, obj):
        services.delete_object(obj, actor=request.user)


@admin.register(Plan)
class PlanAdmin(TeamScopedAdmin):
    list_display = ("key", "title", "team", "status", "owner", "target_date")
    list_filter = ("status", "team")
    search_fields = ("key", "title")


@admin.register(Milestone)
class MilestoneAdmin(TeamScopedAdmin):
    list_display = ("key", "title", "plan", "status", "priority", "owner", "target_date")
    list_filter = ("status", "priority", "team")
    search_fields = ("key", "title")
    list_select_related = ("plan", "owner")
    readonly_fields = ("version", "baseline_target_date", "completed_on")


@admin.register(Deliverable)
class DeliverableAdmin(TeamScopedAdmin):
    team_path = "milestone__team"
    list_display = ("title", "milestone", "status", "owner", "target_date")
    list_filter = ("status",)
    search_fields = ("title", "milestone__key")
    list_select_related = ("milestone", "owner")


@admin.register(Criterion)
class CriterionAdmin(TeamScopedAdmin):
    list_display = ("text", "milestone", "deliverable", "plan", "level", "met")
    list_filter = ("level", "category", "met")
    search_fields = ("text",)
    readonly_fields = ("met", "checked_by", "checked_at")

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        teams = admin_team_ids(request)
        return queryset.filter(
            Q(milestone__team__in=teams)
            | Q(deliverable__milestone__team__in=teams)
            | Q(plan__team__in=teams)
        )


@admin.register(Risk)
class RiskAdmin(TeamScopedAdmin):
    team_path = "milestone__team"
    list_display = ("title", "milestone", "likelihood", "impact", "score", "status")
    list_filter = ("status", "likelihood", "impact")
    readonly_fields = ("score",)


@admin.register(Blocker)
class BlockerAdmin(TeamScopedAdmin):
    team_path = "milestone__team"
    list_display = ("title", "milestone", "priority", "target_resolution_date", "resolved_on")
    list_filter = ("priority",)


@admin.register(Dependency)
class DependencyAdmin(TeamScopedAdmin):
    list_display = ("predecessor", "successor", "lag_days")
    exclude = ("team",)


@admin.register(StatusUpdate)
class StatusUpdateAdmin(TeamScopedAdmin):
    team_path = "milestone__team"
    list_display = ("milestone", "health", "percent_complete", "confidence", "created_at")
    list_filter = ("health",)


@admin.register(Stakeholder)
class StakeholderAdmin(TeamScopedAdmin):
    team_path = "plan__team"
    list_display = ("__str__", "plan", "frequency", "channel")


class ReadOnlyAdmin(TeamScopedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    """The activity log is a record: readable, never edited."""

    list_display = ("created_at", "actor", "verb", "object_type", "object_repr", "team")
    list_filter = ("verb", "object_type")


@admin.register(SignoffRole)
class SignoffRoleAdmin(ReadOnlyAdmin):
    """Roles and holders change on the milestone page, where the rules and the log apply."""

    team_path = "milestone__team"
    list_display = ("name", "milestone", "holder", "removed_at")
    list_select_related = ("milestone", "holder")


@admin.register(SignoffDecision)
class SignoffDecisionAdmin(ReadOnlyAdmin):
    """Decisions are an append-only record: nobody edits or deletes one, here or anywhere."""

    team_path = "milestone__team"
    list_display = ("decided_at", "milestone", "role_name", "outcome", "decided_by_name")
    list_filter = ("outcome", "with_exceptions")
    list_select_related = ("milestone",)
    readonly_fields = [field.name for field in SignoffDecision._meta.fields]
