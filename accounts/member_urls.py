"""Team-scoped account pages, mounted under /t/<team>/members/."""

from django.urls import path

from accounts import members

urlpatterns = [
    path("", members.members_page, name="members"),
]
