# ItemNote held what the item models had no field for; they have now (milestones 0007).

from django.db import migrations


def notes_into_fields(apps, schema_editor):
    ItemNote = apps.get_model("specs", "ItemNote")
    Criterion = apps.get_model("milestones", "Criterion")
    Risk = apps.get_model("milestones", "Risk")
    Blocker = apps.get_model("milestones", "Blocker")
    for note in ItemNote.objects.iterator():
        if note.criterion_id:
            Criterion.objects.filter(pk=note.criterion_id).update(description=note.description)
        elif note.risk_id:
            Risk.objects.filter(pk=note.risk_id).update(owner_label=note.owner_label)
        elif note.blocker_id:
            Blocker.objects.filter(pk=note.blocker_id).update(
                description=note.description, owner_label=note.owner_label
            )


def fields_into_notes(apps, schema_editor):
    ItemNote = apps.get_model("specs", "ItemNote")
    Criterion = apps.get_model("milestones", "Criterion")
    Risk = apps.get_model("milestones", "Risk")
    Blocker = apps.get_model("milestones", "Blocker")
    for pk, description in Criterion.objects.exclude(description="").values_list(
        "pk", "description"
    ):
        ItemNote.objects.create(criterion_id=pk, description=description)
    for pk, label in Risk.objects.exclude(owner_label="").values_list("pk", "owner_label"):
        ItemNote.objects.create(risk_id=pk, owner_label=label)
    blockers = Blocker.objects.exclude(description="", owner_label="")
    for pk, description, label in blockers.values_list("pk", "description", "owner_label"):
        ItemNote.objects.create(blocker_id=pk, description=description, owner_label=label)


class Migration(migrations.Migration):
    dependencies = [
        ("specs", "0001_spec_documents"),
        ("milestones", "0007_item_details"),
    ]

    operations = [
        migrations.RunPython(notes_into_fields, fields_into_notes),
        migrations.DeleteModel(name="ItemNote"),
    ]
