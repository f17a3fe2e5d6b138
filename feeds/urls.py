from django.urls import path

from feeds import views

app_name = "feeds"

urlpatterns = [
    path("", views.feeds_page, name="index"),
    path("<int:pk>/<slug:action>/", views.feed_action, name="action"),
    path("<str:token>.ics", views.feed_ics, name="ics"),
]
