from django.apps import AppConfig


class MilestoneTemplatesConfig(AppConfig):
    name = "milestone_templates"
    verbose_name = "Milestone templates"
