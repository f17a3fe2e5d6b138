from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from accounts.forms import LoginForm, ResetPasswordForm
from accounts.models import access_team


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked_for:
            # Locked out (accounts/lockout.py): say so to scripts too, and when to come back.
            response.status_code = 429
            response["Retry-After"] = str(form.locked_for)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = ResetPasswordForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def get_extra_email_context(self):
        return {"site_url": settings.SITE_URL}

    def dispatch(self, *args, **kwargs):
        self.extra_email_context = self.get_extra_email_context()
        return super().dispatch(*args, **kwargs)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        messages.success(self.request, "Your password was changed.")
        return super().form_valid(form)


@login_required
@require_POST
def switch_team(request):
    membership = access_team(request.user, request.POST.get("team", ""))
    if request.user.last_team_id != membership.team_id:
        request.user.last_team = membership.team
        request.user.save(update_fields=["last_team"])
    return redirect("dashboard", team=membership.team.slug)
