"""The archived PDF bytes of lab report versions sealed with SM4-GCM (hospital_interop/atrest.py):
existing rows are sealed in batches, then the column is a SealedBytesField (same bytea column).
Needs the data key (``manage.py setup_keys``) when the table has rows."""

from django.db import migrations

import hospital_interop.atrest

PURPOSE = "lab.archived_pdf"


def seal_pdfs(apps, schema_editor):
    from hospital_interop.atrest import seal

    Pdf = apps.get_model("lab", "LabArchivedPdf")  # the column still a plain BinaryField here
    last, sealed = 0, 0
    while True:
        rows = list(Pdf.objects.filter(pk__gt=last).order_by("pk").only("pk", "data")[:200])
        if not rows:
            break
        for row in rows:
            row.data = seal(bytes(row.data), PURPOSE)
        Pdf.objects.bulk_update(rows, ["data"])
        sealed, last = sealed + len(rows), rows[-1].pk
    if sealed:
        print(f"\n  lab: {sealed} archived PDFs sealed (SM4-GCM)")


class Migration(migrations.Migration):
    dependencies = [
        ("lab", "0001_moved_from_mutual_recognition"),
    ]

    operations = [
        migrations.RunPython(seal_pdfs, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="labarchivedpdf",
            name="data",
            field=hospital_interop.atrest.SealedBytesField(purpose=PURPOSE, verbose_name="PDF 原件"),
        ),
    ]
