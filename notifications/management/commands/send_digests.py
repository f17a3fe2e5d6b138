"""`python manage.py send_digests`: queue this week's digests now, for operators.

The beat task does the same every 15 minutes; this command shows what it does, one line per
recipient, and can preview (--dry-run) or force one user's digest (--user, whatever the hour,
still once per ISO week).
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from notifications import digest
from notifications.digest import SECTIONS

SHORT_NAMES = {
    "needs_action": "action",
    "off_track": "off track",
    "at_risk": "at risk",
    "due_soon": "due soon",
    "completed": "completed",
    "slipped": "slipped",
    "improved": "improved",
    "new_blockers": "new blockers",
    "new_risks": "new risks",
}


class Command(BaseCommand):
    help = "Queue the weekly digest for every recipient whose chosen hour has come this week."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Build the digests and show what would be queued; write nothing.",
        )
        parser.add_argument(
            "--user",
            metavar="USERNAME_OR_EMAIL",
            help="Only this user, whatever their chosen hour (still once per week).",
        )

    def handle(self, *args, dry_run=False, user=None, **options):
        chosen = None
        if user:
            try:
                chosen = User.objects.get_by_login(user)
            except User.DoesNotExist:
                raise CommandError(
                    f"No user has the username or e-mail address “{user}”."
                ) from None
        records = digest.queue_due_digests(user=chosen, dry_run=dry_run)
        for record in records:
            self.stdout.write(self.describe(record, dry_run))
        queued = sum(record.queued for record in records)
        if dry_run:
            ready = sum(bool(record.subject) for record in records)
            total = f"Dry run: {ready} of {len(records)} digests would be queued; nothing written."
        else:
            total = f"{queued} of {len(records)} digests queued."
        self.stdout.write(self.style.SUCCESS(total) if queued or dry_run else total)

    def describe(self, record, dry_run: bool) -> str:
        if record.queued:
            state = "queued"
        elif dry_run and record.subject:
            state = "would queue"
        else:
            state = "skipped"
        counts = ", ".join(
            f"{SHORT_NAMES[slug]} {record.counts[slug]}"
            for slug, _ in SECTIONS
            if record.counts.get(slug)
        )
        parts = [f"{state:<11} {record.recipient}"]
        if record.subject:
            parts.append(f"“{record.subject}”")
        if counts:
            parts.append(f"({counts})")
        if record.note:
            parts.append(f"— {record.note}")
        return "  ".join(parts)
