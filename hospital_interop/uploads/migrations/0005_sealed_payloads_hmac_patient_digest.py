"""Outbox payloads sealed with SM4-GCM (hospital_interop/atrest.py), and each row's patient digest
recomputed as HMAC-SM3 (patients.models.id_key, with the ID type) from its own payload.

The payload moves from a jsonb column to a bytea one: a new column is filled in batches from the old
one, which is then dropped. Needs the data key and the patient digest key (``manage.py setup_keys``)
when the table has rows. A row whose interface the current catalogue no longer knows keeps no digest
(it cannot be found by patient any more); their number is printed."""

from django.db import migrations

import hospital_interop.atrest

BATCH = 1000


def seal_payloads(apps, schema_editor):
    from hospital_interop.uploads.services import patient_of

    Record = apps.get_model("uploads", "OutboxRecord")
    last, sealed, undigested = 0, 0, 0
    while True:
        rows = list(
            Record.objects.filter(pk__gt=last).order_by("pk").only("pk", "interface", "payload")[:BATCH]
        )
        if not rows:
            break
        for row in rows:
            row.sealed_payload = row.payload
            try:
                row.patient_id_hash = patient_of(row.interface, row.payload).id_hash
            except KeyError:  # an interface the catalogue does not know any more
                row.patient_id_hash = ""
                undigested += 1
        Record.objects.bulk_update(rows, ["sealed_payload", "patient_id_hash"])
        sealed += len(rows)
        last = rows[-1].pk
    if sealed:
        print(f"\n  outbox: {sealed} payloads sealed (SM4-GCM), patient digests recomputed (HMAC-SM3)")
    if undigested:
        print(f"  outbox: {undigested} rows of interfaces no longer in the catalogue keep no patient digest")


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0004_redriven_at"),
        ("patients", "0001_patient_bindings"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxrecord",
            name="sealed_payload",
            field=hospital_interop.atrest.SealedJSONField(null=True, purpose="outbox.payload"),
        ),
        migrations.RunPython(seal_payloads, migrations.RunPython.noop, elidable=False),
        migrations.RemoveField(model_name="outboxrecord", name="payload"),
        migrations.RenameField(model_name="outboxrecord", old_name="sealed_payload", new_name="payload"),
        migrations.AlterField(
            model_name="outboxrecord",
            name="payload",
            field=hospital_interop.atrest.SealedJSONField(purpose="outbox.payload", verbose_name="上传内容"),
        ),
    ]
