from django.apps import AppConfig


class SpecsConfig(AppConfig):
    name = "specs"
    verbose_name = "Spec documents"
