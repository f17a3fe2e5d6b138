"""`manage.py create_api_token USER --name N [--expires-days D]`: print a new token once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiToken


class Command(BaseCommand):
    help = "Create a personal API token for USER and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("user", help="Username or e-mail address")
        parser.add_argument("--name", required=True, help="What the token is for, e.g. CI")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Days until it stops working"
        )

    def handle(self, *args, user, name, expires_days, **options):
        User = get_user_model()
        try:
            owner = User.objects.get_by_login(user)
        except User.DoesNotExist:
            raise CommandError(f"No user “{user}”.") from None
        if not owner.is_active:
            raise CommandError(f"{owner.username} is not active.")
        if expires_days is not None and not 1 <= expires_days <= 3650:
            raise CommandError("--expires-days must be between 1 and 3650.")
        name = name.strip()
        if not name:
            raise CommandError("--name must not be empty.")
        token, secret = ApiToken.objects.create_token(owner, name, expires_days=expires_days)
        self.stderr.write(
            f"Created token “{token.name}” for {owner.username}"
            + (f", expiring {token.expires_at:%Y-%m-%d %H:%M %Z}" if token.expires_at else "")
            + ". It is shown only now; store it safely:"
        )
        self.stdout.write(secret)
