"""`manage.py seed_demo [--if-empty]`: a Demo team with three plans in every state.

All dates are offsets in days from `today()`, so overdue stays overdue and planned stays in
the future whenever the seed runs. Domain writes go through `milestones.services`, so the
activity feed reads as if the team had done the work.
"""

import datetime
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Role, Team, User
from milestones import services, signoffs
from milestones.health import evaluate_team
from milestones.models import (
    Activity,
    Blocker,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    Plan,
    Risk,
    SignoffOutcome,
    Stakeholder,
    StatusUpdate,
    today,
)

PASSWORD = "milepost-demo"
TEAM_NAME, TEAM_SLUG = "Demo", "demo"


@dataclass(frozen=True)
class P:
    """A plan; dates are days from today. criteria: (text, ticked).

    stakeholders: (member or None, name, e-mail, channel, frequency, what they are told).
    """

    title: str
    owner: str
    start: int
    target: int
    summary: str
    criteria: tuple = ()
    stakeholders: tuple = ()


@dataclass(frozen=True)
class M:
    """A milestone; dates are days from today.

    criteria: (category, level, text, ticked), or with a measure as the last item:
        (comparator, target, unit, actual or None).
    deliverables: (title, member or group label, status, target, ((acceptance, ticked), ...)).
    risks: (title, likelihood, impact, mitigation, status).
    updates: (posted, author, health, percent, confidence, narrative, next update).
    """

    ref: str
    plan: str
    title: str
    owner: str
    group: str
    priority: str
    status: str
    start: int
    target: int
    effort: str
    summary: str
    baseline: int | None = None
    completed: int | None = None
    rollback: str = ""
    retro: tuple = ("", "", "", "")  # went well, went badly, actions, learnings
    deliverables: tuple = ()
    criteria: tuple = ()
    risks: tuple = ()
    blockers: tuple = ()
    updates: tuple = ()


@dataclass(frozen=True)
class B:
    """A blocker; dates are days from today, named as on the model."""

    title: str
    priority: str
    owner: str
    raised_on: int
    target_resolution_date: int
    resolved_on: int | None = None
    impact: str = ""
    next_action: str = ""
    resolution: str = ""


# fmt: off
PEOPLE = [  # username, first name, last name, role, job
    ("alice", "Alice", "Moreau", Role.ADMIN, "tech lead"),
    ("bob", "Bob", "Okafor", Role.MEMBER, "engineer"),
    ("priya", "Priya", "Raman", Role.MEMBER, "product owner"),
    ("omar", "Omar", "Haddad", Role.MEMBER, "operations lead"),
    ("vera", "Vera", "Lindqvist", Role.VIEWER, "stakeholder"),
]

PLANS = {
    "export": P(
        "Bulk export service rollout", "alice", -120, 75,
        "Let customers export a whole workspace as CSV or JSON in the background, replacing "
        "the synchronous download that times out on large accounts.",
        criteria=(("Support tickets about export timeouts drop to zero", False),),
        stakeholders=(
            ("priya", "", "", "Weekly product sync", "weekly", "Progress, scope changes"),
            (None, "", "cs-leads@milepost.example", "E-mail", "at_milestones",
             "What ships, and what to tell customers"),
        ),
    ),
    "mobile": P(
        "Mobile app beta", "priya", -90, 60,
        "A closed beta of the iOS and Android apps for 200 customers, with offline use and "
        "reminders, to decide whether the apps are ready for the stores.",
        criteria=(("Beta testers rate the app 4 or more out of 5", False),),
        stakeholders=(
            ("omar", "", "", "#mobile-beta channel", "on_change", "Crash spikes, store reviews"),
            (None, "Hannah Cole", "hannah.cole@milepost.example", "Monthly review", "monthly",
             "Beta sign-ups and the launch decision"),
        ),
    ),
    "data": P(
        "Data platform migration", "omar", -150, 90,
        "Move product analytics from the self-hosted cluster to a managed warehouse, then "
        "switch the old cluster off before its hardware contract renews.",
        criteria=(("Old cluster switched off before the contract renewal", False),),
        stakeholders=(
            ("alice", "", "", "Architecture review", "biweekly", "Pipeline design, cut-over"),
            (None, "", "analytics@milepost.example", "E-mail", "on_change",
             "Dashboard outages and cut-over dates"),
        ),
    ),
}

MILESTONES = [
    M("queue", "export", "Export job queue in production", "alice", "Backend team",
      "critical", "completed", -118, -75, "5 weeks",
      "A managed queue and a pool of export workers in production, with dashboards and "
      "alerts, for the export API to build on.",
      completed=-77,
      rollback="Scale the workers to zero and send exports back to the synchronous endpoint; "
      "the queue can stay up since nothing else reads from it.",
      retro=("Load testing in week two caught a connection leak long before launch.",
             "The infrastructure request waited a week for approval.",
             "Request infrastructure two sprints before it is needed.",
             "A managed service only saves time when it is asked for early."),
      deliverables=(
          ("Managed Redis queue", "Infra team", "accepted", -95,
           (("Running in staging and production", True), ("Failover rehearsed", True))),
          ("Export worker pool", "bob", "accepted", -82,
           (("Workers finish their job before a deploy stops them", True),
            ("Failed jobs retry with growing delays", True))),
      ),
      criteria=(
          ("technical", "must", "Sustained export throughput", (">=", 10, "jobs/s", 12)),
          ("operational", "must", "A backed-up queue pages the on-call engineer", True),
          ("quality", "must", "10,000 queued jobs in a load test, none lost", True),
          ("documentation", "should", "Runbook for scaling and draining workers", True),
      ),
      risks=(("A burst of large exports fills queue memory", "medium", "high",
              "Keep payloads small; results go to object storage, not the queue", "closed"),),
      updates=((-79, "alice", "on_track", 95, 90,
                "Load test passed at 12 jobs/s. Only the runbook review is left.", -77),)),
    M("api", "export", "Export API and job status endpoint", "bob", "Backend team",
      "critical", "completed", -74, -30, "6 weeks",
      "Endpoints to start an export, follow its progress and download the result.",
      baseline=-38, completed=-31,
      rollback="Hide the endpoints behind the feature flag; queued jobs finish on their own.",
      retro=("Contract tests between API and worker stopped a whole class of bugs.",
             "The security review of download links came late and moved the date a week.",
             "Book security reviews when the design is agreed, not when the code is done.",
             "Signed links need an expiry agreed with security up front."),
      deliverables=(
          ("Start, poll and download endpoints", "bob", "accepted", -36,
           (("OpenAPI description published", True), ("Download links expire in 24 h", True))),
      ),
      criteria=(
          ("technical", "must", "p95 time to accept an export request", ("<=", 300, "ms", 180)),
          ("quality", "must", "Contract tests run in CI against the real worker", True),
          ("documentation", "must", "API reference has a worked example per format", True),
          ("operational", "should", "Per-team rate limit changeable without a deploy", True),
      ),
      blockers=(B("Security review of signed download links", "high", "alice", -50, -45, -41,
                  resolution="Approved with a 24-hour expiry instead of seven days."),),
      updates=((-45, "bob", "at_risk", 70, 60,
                "Waiting on the security review; target moved out by a week.", -40),)),
    M("ui", "export", "Export screens in the web app", "bob", "Web team",
      "required", "in_progress", -21, 24, "6 weeks",
      "An export dialog, a history page and an e-mail when a large export is ready.",
      rollback="Turn the feature flag off per team; the old download button is still there.",
      deliverables=(
          ("Export dialog with format and scope options", "bob", "accepted", -5,
           (("Usable with the keyboard alone", True), ("Shows the expected file size", True))),
          ("Export history page", "bob", "in_review", 6,
           (("Lists the last 30 days of exports", True),
            ("A failed export shows why and offers a retry", False))),
          ("E-mail when a large export is ready", "Notifications team", "in_progress", 15,
           (("The link opens the download page after sign-in", False),)),
      ),
      criteria=(
          ("technical", "must", "History page time to first byte", ("<=", 800, "ms", 640)),
          ("operational", "must", "Feature flag can enable teams one by one", True),
          ("quality", "must", "Usability sessions with five customers", False),
          ("documentation", "should", "Help centre article drafted", False),
      ),
      risks=(("Large workspaces produce files too big to e-mail", "low", "medium",
              "E-mail a link to the download page instead of the file", "mitigating"),),
      updates=((-14, "bob", "on_track", 30, 80,
                "Dialog merged behind the flag; history page started.", -7),
               (-3, "bob", "on_track", 50, 85, "Priya accepted the dialog. History page is in "
                "review; the retry flow is next.", 4))),
    M("ga", "export", "General availability and end of the old download", "alice",
      "Backend team", "required", "planned", 30, 70, "3 weeks",
      "Exports on for every team, and the synchronous download endpoint removed.",
      rollback="Re-enable the synchronous endpoint from the admin flag; it stays deployable "
      "until the end of the quarter.",
      deliverables=(("Deprecation notice to API customers", "priya", "planned", 35,
                     (("Sent 30 days before the endpoint goes", False),)),),
      criteria=(
          ("operational", "must", "Export job failure rate over 7 days", ("<", 0.5, "%", None)),
          ("documentation", "must", "Changelog and deprecation page published", False),
      ),
      risks=(("Customer scripts still call the old endpoint", "medium", "high",
              "Log who calls it and contact the twenty heaviest callers", "open"),)),
    M("metering", "export", "Usage metering for exports", "omar", "Platform team",
      "recommended", "planned", 20, 50, "2 weeks",
      "Count exports per team so that heavy users can be billed fairly.",
      criteria=(("technical", "should", "Exports per team appear in the billing report", False),)),
    M("pipeline", "mobile", "Beta build pipeline and crash reporting", "omar", "Mobile platform",
      "required", "completed", -88, -55, "4 weeks",
      "Every merge produces signed test builds for both stores, and crashes reach us.",
      completed=-55, rollback="Fall back to building releases by hand from the release branch.",
      retro=("Builds went from a half-day chore to 17 minutes.",
             "Store signing rules cost three days of trial and error.",
             "Write down the signing setup before the person who did it goes on leave.",
             "Automating the boring release steps pays for itself within a month."),
      deliverables=(("Signed builds for both stores from CI", "omar", "accepted", -60,
                     (("A merge to main ships internal test builds", True),
                      ("Signing keys live in the secrets store, not on laptops", True))),),
      criteria=(
          ("technical", "must", "Crash-free sessions in internal testing",
           (">=", 99, "%", Decimal("99.4"))),
          ("operational", "must", "Crash alerts go to the mobile channel", True),
          ("quality", "should", "CI build time", ("<=", 20, "min", 17)),
          ("documentation", "should", "Wiki page on cutting a beta build", True),
      ),
      updates=((-56, "omar", "on_track", 100, 95,
                "Both store pipelines green; handing over to the app team.", None),)),
    M("sync", "mobile", "Offline mode and background sync", "bob", "Mobile team",
      "critical", "in_progress", -48, 6, "8 weeks",
      "The app works without a connection and syncs changes once it is back online.",
      baseline=-8, rollback="Ship the beta online-only; offline mode stays behind a remote flag.",
      deliverables=(
          ("Local store for milestones and updates", "bob", "in_progress", -10,
           (("Data survives an app restart", True), ("Upgrades migrate the store", False))),
          ("Conflict handling for concurrent edits", "bob", "planned", 3,
           (("Last write wins per field and the user is told", False),
            ("Conflicts are logged for support", False))),
          ("Sync indicator in the app bar", "Design team", "planned", 5,
           (("Shows how many changes wait to be sent", False),)),
      ),
      criteria=(
          ("technical", "must", "Time to sync 500 changed items", ("<=", 10, "s", 31)),
          ("technical", "must", "No data lost in 1,000 random offline sessions", False),
          ("quality", "must", "Tested on slow and flaky network profiles", False),
          ("documentation", "should", "Support guide for sync conflicts", False),
      ),
      risks=(("Conflict rules need server changes nobody has planned", "high", "high", "", "open"),
             ("Old Android phones run out of storage", "low", "medium",
              "Cap the local cache at 50 MB", "open")),
      updates=((-30, "bob", "at_risk", 20, 60, "The local store took longer than estimated; "
                "target moved by two weeks.", -23),
               (-4, "bob", "off_track", 15, 40, "Syncing a large workspace is three times slower "
                "than the target, and conflict handling has not started.", 3))),
    M("push", "mobile", "Reminders and mention notifications", "priya", "Mobile team",
      "required", "in_progress", -40, -6, "3 weeks",
      "Push notifications for due dates and for @mentions.",
      rollback="Switch notifications off server-side; the apps cope with none arriving.",
      deliverables=(
          ("Push provider integration", "bob", "in_review", -12,
           (("Delivered on iOS and Android", True), ("Quiet hours respected", False))),
          ("Notification settings screen", "bob", "accepted", -15,
           (("Each kind of notification can be turned off", True),)),
      ),
      criteria=(
          ("technical", "must", "Time from event to notification", ("<=", 60, "s", 45)),
          ("quality", "must", "Support has reviewed the wording of every notification", False),
          ("operational", "should", "Failed deliveries visible on the dashboard", True),
      ),
      risks=(("Store review objects to the permission prompt", "low", "high",
              "Ask for permission only when someone turns reminders on", "mitigating"),),
      updates=((-9, "priya", "at_risk", 70, 65, "Quiet hours failed review. The fix is in "
                "progress and the date will slip by a few days.", -2),)),
    M("beta", "mobile", "Closed beta with 200 customers", "priya", "Product",
      "critical", "planned", 22, 55, "5 weeks",
      "Invite 200 customers, collect their feedback and decide on the store launch.",
      deliverables=(("Beta invitations and feedback form", "priya", "planned", 22,
                     (("Invitations tracked per customer", False),)),),
      criteria=(
          ("operational", "must", "Testers enrolled", (">=", 200, "people", None)),
          ("quality", "must", "Crash-free sessions during the beta",
           (">=", Decimal("99.5"), "%", None)),
          ("documentation", "should", "Known-issues page for testers", False),
      )),
    M("tablet", "mobile", "Tablet layout", "bob", "Mobile team",
      "recommended", "cancelled", -30, 20, "3 weeks",
      "Two-pane layouts for tablets. Cancelled: under 3% of beta sign-ups use one.",
      updates=((-12, "priya", "off_track", 10, 90, "Dropped from the beta after the sign-up "
                "survey; Bob moves to offline sync. We revisit after launch.", None),)),
    M("warehouse", "data", "Warehouse provisioned with access controls", "omar",
      "Data platform team", "critical", "completed", -145, -100, "4 weeks",
      "The managed warehouse exists, is private, and analysts can get access.",
      completed=-103, rollback="Nothing depends on the warehouse yet; delete the account.",
      retro=("Group-based access made onboarding an analyst a one-line change.",
             "Cost alerts were missing for the first two weeks.",
             "Add budget alerts on day one of any paid service.",
             "A security review goes faster with a diagram than with a meeting."),
      deliverables=(("Warehouse account and network policy", "Infra team", "accepted", -115,
                     (("Reachable only from the private network", True),
                      ("Access granted through groups, not people", True))),),
      criteria=(
          ("technical", "must", "30-day events query", ("<", 5, "s", Decimal("2.1"))),
          ("operational", "must", "Cost alert at 80% of the monthly budget", True),
          ("quality", "should", "Access review signed off by security", True),
          ("documentation", "must", "Onboarding guide for analysts", True),
      )),
    M("dualwrite", "data", "Dual-write of product events", "omar", "Data platform team",
      "critical", "in_progress", -60, 14, "5 weeks",
      "Every product event goes to both the old and the new pipeline, compared nightly.",
      rollback="Stop the second writer; the old pipeline never stopped receiving events.",
      deliverables=(
          ("Event writer publishing to both pipelines", "bob", "accepted", -20,
           (("Retries without duplicating events", True),)),
          ("Nightly reconciliation report", "omar", "in_progress", 7,
           (("Mismatches listed per event type", True), ("Sent to the data channel", False))),
      ),
      criteria=(
          ("technical", "must", "Events missing from the new pipeline",
           ("<=", Decimal("0.01"), "%", Decimal("0.3"))),
          ("operational", "must", "Reconciliation runs every night", True),
          ("quality", "must", "A week of production traffic without gaps", False),
      ),
      risks=(("Dashboards count events twice while both pipelines run", "medium", "medium",
              "Dashboards read only the old pipeline until cut-over", "mitigating"),),
      blockers=(
          B("Firewall rule for the event collector not opened yet", "high", "omar", -20, -6,
            impact="No production traffic reaches the new pipeline; only staging is tested.",
            next_action="Raised with the network team lead; on Thursday's change board."),
          B("Schema registry credentials for staging", "medium", "bob", -30, -25, -26,
            resolution="Issued by the platform on-call engineer."),
      ),
      updates=((-16, "omar", "on_track", 45, 75,
                "Writer accepted; the reconciliation report runs on staging.", -9),
               (-2, "omar", "at_risk", 55, 50,
                "Still waiting for the firewall change, now six days late. Escalated.", 5))),
    M("dashboards", "data", "Dashboards rebuilt on the warehouse", "priya", "Analytics",
      "required", "in_progress", -10, 40, "6 weeks",
      "The forty scheduled reports and dashboards, rebuilt on the new warehouse.",
      deliverables=(("Revenue and usage dashboards", "Analytics", "in_progress", 20,
                     (("Numbers match the old dashboards within 1%", False),)),),
      criteria=(
          ("technical", "must", "Dashboards rebuilt", (">=", 40, "dashboards", 9)),
          ("documentation", "must", "Each dashboard lists its source tables", True),
          ("quality", "should", "Spot checks by finance", False),
      ),
      updates=((-1, "priya", "on_track", 20, 80, "Nine of forty dashboards done, on pace.", 6),)),
    M("backfill", "data", "Backfill three years of history", "omar", "Data platform team",
      "required", "planned", 16, 45, "4 weeks",
      "Copy historical events into the warehouse so that reports reach back three years.",
      rollback="Drop the backfilled partitions; the old cluster stays the source of truth.",
      criteria=(("technical", "must", "Row count difference per month", ("=", 0, "rows", None)),),
      risks=(("The backfill competes with nightly jobs for warehouse credits", "medium",
              "medium", "Run off-peak on a separately sized warehouse", "open"),)),
    M("cutover", "data", "Reporting cut-over and old cluster shutdown", "omar",
      "Data platform team", "critical", "planned", 50, 85, "3 weeks",
      "Reports read only the warehouse, and the old cluster is switched off.",
      rollback="Point dashboards back at the old cluster, kept read-only for 30 days.",
      criteria=(
          ("operational", "must", "All scheduled reports compared side by side", False),
          ("documentation", "must", "Decommission checklist signed by security", False),
      )),
]

DEPENDENCIES = [  # predecessor, successor, lag in days; the last three cross plans
    ("queue", "api", 0), ("api", "ui", 0), ("ui", "ga", 5), ("api", "metering", 0),
    ("pipeline", "sync", 0), ("sync", "beta", 0), ("push", "beta", 0),
    ("warehouse", "dualwrite", 0), ("dualwrite", "backfill", 2), ("backfill", "cutover", 0),
    ("warehouse", "dashboards", 0), ("dashboards", "cutover", 0),
    ("dualwrite", "beta", 7), ("warehouse", "metering", 0), ("api", "dashboards", 0),
]
# fmt: on


# Field names for the positional rows above.
RETRO = ("retro_went_well", "retro_went_badly", "retro_actions", "retro_learnings")
MEASURE = ("comparator", "target", "unit", "actual")
STAKEHOLDER = ("user", "name", "email", "channel", "frequency", "content")
RISK = ("title", "likelihood", "impact", "mitigation", "status")


def named(names: tuple, values: tuple) -> dict:
    return dict(zip(names, values, strict=True))


SIGNOFF_HOLDERS = {"Tech lead": "alice", "Product owner": "priya", "Operations lead": "omar"}
SIGNOFF_APPROVALS = {  # milestone ref: the comment naming what is accepted as an exception
    "dualwrite": "Accepting the open items: the nightly comparison keeps running until cut-over "
    "and any gap found there blocks the cut-over, not this milestone.",
    "sync": "Accepting the remaining items as known gaps for the beta; they are tracked as "
    "blockers and must close before general availability.",
}


def day(offset: int | None) -> datetime.date | None:
    return None if offset is None else today() + datetime.timedelta(days=offset)


class Command(BaseCommand):
    help = "Create the Demo team (alice, bob, priya, omar, vera) with plans in every state."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty", action="store_true", help="Only seed when the database has no teams."
        )

    def handle(self, *args, if_empty=False, **options):
        if Team.objects.filter(slug=TEAM_SLUG).exists():
            self.stdout.write("Demo data is already present (team “demo”); nothing changed.")
            return
        if if_empty and Team.objects.exists():
            self.stdout.write("The database already has teams; not adding demo data.")
            return
        clash = Q()
        for username, *_ in PEOPLE:
            clash |= Q(username__iexact=username) | Q(email__iexact=f"{username}@milepost.example")
        taken = sorted(User.objects.filter(clash).values_list("username", flat=True))
        if taken:
            raise CommandError(f"Users {', '.join(taken)} exist but team “demo” does not.")
        with transaction.atomic():
            team = Team.objects.create(name=TEAM_NAME, slug=TEAM_SLUG)
            self.users = {}
            for username, first, last, role, _job in PEOPLE:
                email = f"{username}@milepost.example"
                user = User.objects.create_user(
                    username, email, PASSWORD, first_name=first, last_name=last, last_team=team
                )
                Membership.objects.create(team=team, user=user, role=role)
                self.users[username] = user
            self.seed(team)
        evaluate_team(team.pk)  # so the first page already shows health and forecasts
        if options["verbosity"] > 0:
            self.summarise(team)

    def make(self, model, actor: str, **fields):
        """Create through the services; day offsets become dates, usernames become users."""
        for name, value in fields.items():
            if name.endswith(("_on", "_date")) and isinstance(value, int):
                fields[name] = day(value)
            elif name in ("owner", "user") and isinstance(value, str):
                fields[name] = self.users[value]
        return services.create_object(model(**fields), actor=self.users[actor])

    def add_criterion(self, actor: str, text: str, state, **fields):
        """`state`: ticked (True/False), or a measure (comparator, target, unit, actual)."""
        measure = named(MEASURE, state if isinstance(state, tuple) else ("", None, "", None))
        criterion = self.make(Criterion, actor, text=text, **measure, **fields)
        if state is True:
            services.set_criterion_checked(criterion, actor=self.users[actor], checked=True)

    def seed(self, team):
        plans, milestones = {}, {}
        for ref, p in PLANS.items():
            plans[ref] = plan = self.make(
                Plan,
                p.owner,
                team=team,
                title=p.title,
                summary=p.summary,
                owner=p.owner,
                start_date=p.start,
                target_date=p.target,
            )
            for text, ticked in p.criteria:
                self.add_criterion(p.owner, text, ticked, plan=plan)
            for index, row in enumerate(p.stakeholders):
                fields = named(STAKEHOLDER, row)
                self.make(Stakeholder, p.owner, plan=plan, position=index, **fields)

        for position, m in enumerate(MILESTONES):
            plan, actor = plans[m.plan], m.owner
            # Closed milestones start out open and are closed at the end, as a team would.
            opened = {"completed": "in_progress", "cancelled": "planned"}.get(m.status)
            milestones[m.ref] = milestone = self.make(
                Milestone,
                plan.owner.username,
                team=team,
                plan=plan,
                title=m.title,
                summary=m.summary,
                owner=actor,
                owning_group=m.group,
                priority=m.priority,
                status=opened or m.status,
                start_date=m.start,
                target_date=m.target,
                baseline_target_date=m.baseline,
                estimated_effort=m.effort,
                position=position,
                rollback_plan=m.rollback,
            )
            for index, (title, owner, status, target, acceptance) in enumerate(m.deliverables):
                label = "" if owner in self.users else owner
                deliverable = self.make(
                    Deliverable,
                    actor,
                    milestone=milestone,
                    title=title,
                    status=status,
                    owner=None if label else owner,
                    owner_label=label,
                    target_date=target,
                    position=index,
                )
                for number, (text, ticked) in enumerate(acceptance):
                    self.add_criterion(
                        actor, text, ticked, deliverable=deliverable, position=number
                    )
            for index, (category, level, text, state) in enumerate(m.criteria):
                self.add_criterion(
                    actor,
                    text,
                    state,
                    milestone=milestone,
                    category=category,
                    level=level,
                    position=index,
                )
            for index, row in enumerate(m.risks):
                fields = named(RISK, row)
                self.make(Risk, actor, milestone=milestone, owner=actor, position=index, **fields)
            for blocker in m.blockers:
                self.make(Blocker, actor, milestone=milestone, **asdict(blocker))
            for days, author, health, percent, confidence, narrative, next_on in m.updates:
                services.post_status_update(
                    milestone,
                    actor=self.users[author],
                    health=health,
                    percent_complete=percent,
                    confidence=confidence,
                    narrative=narrative,
                    next_update_on=day(next_on),
                    created_at=timezone.now() + datetime.timedelta(days=days),
                )
            if m.status == "completed":
                services.update_object(
                    milestone,
                    actor=self.users[actor],
                    status=m.status,
                    completed_on=day(m.completed),
                    **named(RETRO, m.retro),
                )
            elif opened:
                services.update_object(milestone, actor=plan.owner, status=m.status)

        for before, after, lag in DEPENDENCIES:
            successor = milestones[after]
            services.add_dependency(
                milestones[before], successor, actor=successor.plan.owner, lag_days=lag
            )
        self.seed_signoffs(milestones)

    def seed_signoffs(self, milestones):
        """Holders on every open milestone; two near their target already approved by the tech
        and operations leads, so Priya (product owner) finds them on My sign-offs."""
        admin = self.users["alice"]
        for milestone in milestones.values():
            if milestone.is_closed:
                continue  # closed before the team signed off in Milepost
            for role in milestone.signoff_roles.active():
                holder = self.users[SIGNOFF_HOLDERS[role.name]]
                signoffs.set_holder(role, actor=admin, holder=holder)
        for ref, comment in SIGNOFF_APPROVALS.items():
            milestone = milestones[ref]
            for role in milestone.signoff_roles.active().exclude(name="Product owner"):
                unmet = signoffs.unmet_items(milestone)
                signoffs.decide(
                    milestone,
                    user=role.holder,
                    role=role,
                    outcome=SignoffOutcome.APPROVED,
                    comment=comment if unmet else "",
                    with_exceptions=bool(unmet),
                )

    def summarise(self, team):
        counts = {
            "plans": Plan.objects.in_team(team),
            "milestones": Milestone.objects.in_team(team),
            "deliverables": Deliverable.objects.filter(milestone__team=team),
            "criteria": Criterion.objects.filter(
                Q(plan__team=team) | Q(milestone__team=team) | Q(deliverable__milestone__team=team)
            ),
            "risks": Risk.objects.in_team(team),
            "blockers": Blocker.objects.in_team(team),
            "dependencies": Dependency.objects.in_team(team),
            "status updates": StatusUpdate.objects.filter(milestone__team=team),
            "stakeholders": Stakeholder.objects.filter(plan__team=team),
            "activity entries": Activity.objects.in_team(team),
        }
        self.stdout.write(self.style.SUCCESS("Created the Demo team: /t/demo/"))
        self.stdout.write(", ".join(f"{qs.count()} {name}" for name, qs in counts.items()) + ".")
        logins = ", ".join(
            f"{name} ({role.label.lower()}, {job})" for name, *_, role, job in PEOPLE
        )
        self.stdout.write(f"Logins, all with password “{PASSWORD}”: {logins}.")
