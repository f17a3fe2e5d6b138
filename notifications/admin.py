"""Admin for the outbox and recipients' choices.

Messages are read-only (the outbox owns their state); the one thing staff do to them is put
failed ones back in the queue, through the same `outbox.retry_now` as the delivery log's
Retry button. Non-superuser staff see only what the admins of their teams see in the
delivery log.
"""

from django.contrib import admin
from django.db import transaction
from django.db.models.functions import Lower

from accounts.admin import admin_team_ids
from accounts.models import Membership
from milestones.models import Stakeholder
from notifications import delivery_log, outbox
from notifications.models import EmailOptOut, Message, NotificationPreferences


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient_email", "kind", "subject", "state", "attempts"]
    list_filter = ["state", "kind"]
    search_fields = ["recipient_email", "subject"]
    list_select_related = ["team"]
    date_hierarchy = "created_at"
    fields = [
        "kind", "state", "attempts", "last_error", "recipient_user", "recipient_email",
        "recipient_key", "dedupe_key", "team", "subject", "body_text", "body_html", "headers",
        "created_at", "next_attempt_at", "dispatched_at", "claimed_at", "finished_at",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["retry_failed"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(
            pk__in=delivery_log.team_messages(admin_team_ids(request)).values("pk")
        )

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the selected failed messages", permissions=["change"])
    def retry_failed(self, request, queryset):
        pks = list(queryset.values_list("pk", flat=True))
        with transaction.atomic():  # the delivery tasks are published once this commits
            retried = sum(outbox.retry_now(Message, pk) for pk in pks)
        skipped = len(pks) - retried
        note = f"Queued {retried} message{'' if retried == 1 else 's'} again."
        if skipped:
            note += f" {skipped} had not failed and were left alone."
        self.message_user(request, note)


@admin.register(NotificationPreferences)
class NotificationPreferencesAdmin(admin.ModelAdmin):
    list_display = ["user", "digest_enabled", "digest_weekday", "digest_hour", "at_risk_alerts"]
    list_filter = ["digest_enabled", "digest_weekday", "digest_when_empty"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    filter_horizontal = ["muted_plans"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        members = Membership.objects.filter(team__in=admin_team_ids(request)).values("user_id")
        return queryset.filter(user__in=members)

    def get_exclude(self, request, obj=None):
        # Muted plans may belong to teams this staff member does not administer: neither show
        # them nor let a save drop them.
        return [] if request.user.is_superuser else ["muted_plans"]

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["user"]


@admin.register(EmailOptOut)
class EmailOptOutAdmin(admin.ModelAdmin):
    list_display = ["email", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["email"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        addresses = (
            Stakeholder.objects.filter(plan__team__in=admin_team_ids(request))
            .annotate(address=Lower("email"))
            .values("address")
        )
        return queryset.filter(email__in=addresses)
