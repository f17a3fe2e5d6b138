from django.contrib import admin
from django.urls import include, path

from config import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("specs.urls")),  # before api.urls: it owns api/v1/specs/…
    path("api/v1/", include("api.urls")),
    path("tokens/", include("api.page_urls")),
    path("calendar/", include("feeds.urls")),
    path("", include("notifications.urls")),
    path("", include("webhooks.urls")),
    path("", include("milestone_templates.urls")),
    path("", include("milestones.urls")),
]
