from django.contrib import admin

from milestone_templates.models import MilestoneTemplate


@admin.register(MilestoneTemplate)
class MilestoneTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "duration_days", "saved_from", "created_by", "updated_at"]
    list_filter = ["team"]
    search_fields = ["name", "description"]
    list_select_related = ["team", "created_by"]
    readonly_fields = ["saved_from", "created_by", "created_at", "updated_at"]
