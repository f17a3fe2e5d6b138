from django.urls import path

from milestones import views

urlpatterns = [
    path("", views.home, name="home"),
    path("t/<slug:team>/", views.dashboard, name="dashboard"),
]
