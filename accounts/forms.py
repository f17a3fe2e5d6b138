from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm

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
    }


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
