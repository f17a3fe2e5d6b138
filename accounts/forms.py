from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        label="Username or e-mail",
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username or e-mail and password do not match an account.",
    }


class ResetPasswordForm(PasswordResetForm):
    """Django's reset form, matching e-mail addresses case-insensitively (as our login does)."""

    def get_users(self, email):
        from accounts.models import User

        return (
            user
            for user in User.objects.filter(email__iexact=email, is_active=True)
            if user.has_usable_password()
        )
