from django.contrib import admin

from feeds.models import FeedToken


@admin.register(FeedToken)
class FeedTokenAdmin(admin.ModelAdmin):
    """Read-only: feeds are made on the Calendar feeds page; the secret is never shown."""

    list_display = ["__str__", "kind", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["kind"]
    list_select_related = ["user", "team", "plan"]
    search_fields = ["user__username", "team__name", "plan__key"]
    fields = ["user", "kind", "team", "plan", "created_at", "regenerated_at", "last_used_at",
              "revoked_at"]  # fmt: skip
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected feeds")
    def revoke(self, request, queryset):
        revoked = sum(feed.revoke() for feed in queryset)
        self.message_user(request, f"Revoked {revoked} feed{'' if revoked == 1 else 's'}.")
