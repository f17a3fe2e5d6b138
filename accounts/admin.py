from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.forms import AdminLoginForm
from accounts.models import Invitation, Membership, Role, Team, User

# The admin's log-in counts failures and locks out like the app's (accounts/lockout.py).
admin.site.login_form = AdminLoginForm


def admin_team_ids(request):
    """Teams a non-superuser staff member administers; superusers see every team."""
    return Membership.objects.filter(user=request.user, role=Role.ADMIN).values("team_id")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Milepost", {"fields": ("time_zone", "last_team")}))
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(memberships__team_id__in=admin_team_ids(request)).distinct()


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "milestone_key_prefix", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk__in=admin_team_ids(request))


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "team", "role", "created_at")
    list_filter = ("role", "team")
    autocomplete_fields = ["user"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user", "team")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(team_id__in=admin_team_ids(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team" and not request.user.is_superuser:
            kwargs["queryset"] = Team.objects.filter(pk__in=admin_team_ids(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-mostly: invitations are made (and mailed) on a team's Members page.

    The admin can look them up and revoke pending ones, through the same function as the page.
    Deleting stays allowed (by model permission) so that deleting a team is not blocked.
    """

    list_display = ("email", "team", "role", "invited_by", "created_at", "sent_at", "state")
    list_filter = ("role", "team")
    search_fields = ("email",)
    list_select_related = ("team", "invited_by")
    readonly_fields = [field.name for field in Invitation._meta.fields]
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, invitation):
        return invitation.state

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(team_id__in=admin_team_ids(request))

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected pending invitations")
    def revoke(self, request, queryset):
        from accounts.members import revoke_invitation

        revoked = sum(revoke_invitation(invitation, actor=request.user) for invitation in queryset)
        self.message_user(request, f"Revoked {revoked} invitation(s).")
