from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("t/<slug:team>/webhooks/", views.index, name="index"),
    path("t/<slug:team>/webhooks/new/", views.create, name="create"),
    path("t/<slug:team>/webhooks/<int:pk>/", views.endpoint_log, name="endpoint"),
    path("t/<slug:team>/webhooks/<int:pk>/edit/", views.edit, name="edit"),
    path("t/<slug:team>/webhooks/<int:pk>/delete/", views.delete, name="delete"),
    path("t/<slug:team>/webhooks/<int:pk>/rotate/", views.rotate, name="rotate"),
    path("t/<slug:team>/webhooks/<int:pk>/ping/", views.ping, name="ping"),
    path("t/<slug:team>/webhooks/<int:pk>/enable/", views.enable, name="enable"),
    path("t/<slug:team>/webhooks/<int:pk>/disable/", views.disable, name="disable"),
    path(
        "t/<slug:team>/webhooks/<int:pk>/deliveries/<int:delivery_pk>/redeliver/",
        views.redeliver,
        name="redeliver",
    ),
]
