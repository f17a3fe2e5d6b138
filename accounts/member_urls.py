"""Team-scoped account pages, mounted under /t/<team>/members/ (which supplies `team`)."""

from django.urls import path

from accounts import members

urlpatterns = [
    path("", members.members_page, name="members"),
    path("invite/", members.member_invite, name="member_invite"),
    path("<int:pk>/role/", members.member_role, name="member_role"),
    path("<int:pk>/remove/", members.member_remove, name="member_remove"),
    path("invitations/<int:pk>/resend/", members.invitation_resend, name="invitation_resend"),
    path("invitations/<int:pk>/revoke/", members.invitation_revoke, name="invitation_revoke"),
]
