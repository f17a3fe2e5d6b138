from django.contrib import admin

from accounts.admin import admin_team_ids
from webhooks.models import WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Read and fix endpoints; the secret is never shown here (rotate it on the team's page)."""

    list_display = ("__str__", "team", "is_active", "consecutive_failures", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "name")
    fields = ("team", "name", "url", "event_types", "is_active", "disabled_at",
              "disabled_reason", "consecutive_failures", "created_by", "created_at")  # fmt: skip
    readonly_fields = ("team", "is_active", "disabled_at", "disabled_reason",
                       "consecutive_failures", "created_by", "created_at")  # fmt: skip

    def has_add_permission(self, request):
        return False  # added by team admins on the team's webhooks page (secret shown there)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("team")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(team_id__in=admin_team_ids(request))


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log, read-only (redeliver from the team's webhooks page)."""

    list_display = ("event_type", "endpoint", "state", "attempts", "response_status", "created_at")
    list_filter = ("state", "event_type")
    search_fields = ("event_id",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("endpoint")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(endpoint__team_id__in=admin_team_ids(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
