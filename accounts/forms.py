import datetime
import math

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts import lockout
from accounts.models import Role, User


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        label="Username or e-mail",
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That username or e-mail and password do not match an account.",
        "locked": "Too many failed log-in attempts. Try again in %(wait)s (after %(until)s). "
        "You can still reset your password with “Forgot your password?” below.",
    }

    # Seconds until a locked-out login may try again; 0 unless the form refused for that reason.
    locked_for = 0

    @sensitive_variables("password")
    def clean(self):
        """Authenticate unless the login name or the client address is locked out.

        Every refused password counts against both (see accounts/lockout.py), whether or not
        the name belongs to an account, so the lock says nothing about which accounts exist.
        A successful log-in clears the name's count; the address's count runs out on its own,
        so logging in to one's own account cannot buy more guesses at someone else's.
        """
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()
        keys = [lockout.login_key(username)]
        if self.request is not None:
            keys.append(lockout.ip_key(lockout.client_ip(self.request)))
        if any(lockout.is_locked(key) for key in keys):
            raise self.get_locked_error(keys)
        try:
            super().clean()
        except ValidationError as error:
            if error.code == "invalid_login":
                for key in keys:
                    lockout.record_failure(key)
                if any(lockout.is_locked(key) for key in keys):
                    raise self.get_locked_error(keys) from None
            raise
        lockout.reset(keys[0])
        return self.cleaned_data

    def get_locked_error(self, keys: list[str]) -> ValidationError:
        self.locked_for = max(lockout.seconds_left(key) for key in keys)
        minutes = max(1, math.ceil(self.locked_for / 60))
        until = timezone.localtime() + datetime.timedelta(seconds=self.locked_for)
        return ValidationError(
            self.error_messages["locked"],
            code="locked",
            params={
                "wait": f"{minutes} minute{'' if minutes == 1 else 's'}",
                "until": f"{until:%H:%M} {until.tzname()}",
            },
        )


class AdminLoginForm(LoginForm, AdminAuthenticationForm):
    """The admin's log-in with the same lockout (set as `admin.site.login_form`), so /admin/
    is not a second door for guessing passwords. Staff only, as Django's admin form."""


class ResetPasswordForm(PasswordResetForm):
    """Django's reset form, matching e-mail addresses case-insensitively (as our login does)."""

    def get_users(self, email):
        return (
            user
            for user in User.objects.filter(email__iexact=email, is_active=True)
            if user.has_usable_password()
        )


class InviteForm(forms.Form):
    """Who to invite and as what; whether they may be invited is Invitation.clean()'s call."""

    email = forms.EmailField(
        label="E-mail address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)

    def clean_email(self):
        return User.objects.normalize_email(self.cleaned_data["email"].strip())


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class InvitationSignupForm(UserCreationForm):
    """A new account for an invited address: the e-mail address comes from the invitation.

    UserCreationForm brings the case-insensitive username check and Django's password
    validators (AUTH_PASSWORD_VALIDATORS), which also compare the password with the address.
    """

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "first_name", "last_name")

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.email = email  # before validation, for UserAttributeSimilarityValidator
        self.fields[
            "username"
        ].help_text = (
            "Letters, digits and @ . + - _ only. You can also log in with your e-mail address."
        )
        for name, autocomplete in [
            ("username", "username"),
            ("first_name", "given-name"),
            ("last_name", "family-name"),
            ("password1", "new-password"),
            ("password2", "new-password"),
        ]:
            self.fields[name].widget.attrs["autocomplete"] = autocomplete
