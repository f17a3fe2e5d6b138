"""Every model change ships with its migration (a clean checkout migrates to the models)."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"makemigrations --check found changes without a migration:\n{out.getvalue()}")


@pytest.mark.django_db(transaction=True)
def test_item_notes_move_into_the_item_fields_and_back():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("specs", "0001_spec_documents"), ("milestones", "0007_item_details")]
    after = [("specs", "0002_item_notes_into_fields")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        team = old.get_model("accounts", "Team").objects.create(name="Old", slug="old")
        plan = old.get_model("milestones", "Plan").objects.create(team=team, key="PLN-1", title="P")
        milestone = old.get_model("milestones", "Milestone").objects.create(
            team=team, plan=plan, key="MLS-1", title="M"
        )
        criterion = old.get_model("milestones", "Criterion").objects.create(
            milestone=milestone, text="Fast"
        )
        risk = old.get_model("milestones", "Risk").objects.create(milestone=milestone, title="R")
        blocker = old.get_model("milestones", "Blocker").objects.create(
            milestone=milestone, title="B"
        )
        notes = old.get_model("specs", "ItemNote").objects
        notes.create(criterion=criterion, description="p95 under 200 ms")
        notes.create(risk=risk, owner_label="Vendor")
        notes.create(blocker=blocker, description="Waiting on legal", owner_label="Legal team")

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        assert new.get_model("milestones", "Criterion").objects.get().description == (
            "p95 under 200 ms"
        )
        assert new.get_model("milestones", "Risk").objects.get().owner_label == "Vendor"
        moved = new.get_model("milestones", "Blocker").objects.get()
        assert (moved.description, moved.owner_label) == ("Waiting on legal", "Legal team")

        executor = MigrationExecutor(connection)
        executor.migrate(before)  # and back: the notes come back from the fields
        back = executor.loader.project_state(before).apps.get_model("specs", "ItemNote")
        assert sorted(back.objects.values_list("description", "owner_label")) == [
            ("", "Vendor"),
            ("Waiting on legal", "Legal team"),
            ("p95 under 200 ms", ""),
        ]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
