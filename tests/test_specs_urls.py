"""The site's URLs with the spec API reachable: config/urls.py includes `api.urls` (which ends in
a catch-all 404) before `specs.urls`, so /api/v1/specs/… needs specs.urls first. Until the lead
moves that include (see the report), the API tests use this URLconf. No tests in this module."""

from django.urls import include, path

from config.urls import urlpatterns as site_patterns

urlpatterns = [path("", include("specs.urls")), *site_patterns]
