from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("notifications/", views.preferences, name="preferences"),
    path(
        "notifications/unsubscribe/<str:token>/",
        views.unsubscribe_page,
        name="unsubscribe",
    ),
    path("t/<slug:team>/deliveries/", views.delivery_log_page, name="delivery_log"),
    path("t/<slug:team>/deliveries/<int:pk>/retry/", views.delivery_retry, name="delivery_retry"),
    path("t/<slug:team>/deliveries/preview/", views.digest_preview, name="digest_preview"),
    path(
        "t/<slug:team>/deliveries/preview/text/",
        views.digest_preview_text,
        name="digest_preview_text",
    ),
]
