"""Exam report PDFs sealed with SM4-GCM (hospital_interop/atrest.py): existing rows are sealed in
batches, then the column is a SealedBytesField (same bytea column). Needs the data key
(``manage.py setup_keys``) when the table has rows."""

from django.db import migrations

import hospital_interop.atrest

PURPOSE = "exam.report_pdf"


def seal_pdfs(apps, schema_editor):
    from hospital_interop.atrest import seal

    Report = apps.get_model("exam", "ExamReport")  # the column still a plain BinaryField here
    last, sealed = 0, 0
    while True:
        rows = list(Report.objects.filter(pk__gt=last).order_by("pk").only("pk", "pdf_content")[:200])
        if not rows:
            break
        for row in rows:
            row.pdf_content = seal(bytes(row.pdf_content), PURPOSE)
        Report.objects.bulk_update(rows, ["pdf_content"])
        sealed, last = sealed + len(rows), rows[-1].pk
    if sealed:
        print(f"\n  exam: {sealed} report PDFs sealed (SM4-GCM)")


class Migration(migrations.Migration):
    dependencies = [
        ("exam", "0001_moved_from_mutual_recognition"),
    ]

    operations = [
        migrations.RunPython(seal_pdfs, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="examreport",
            name="pdf_content",
            field=hospital_interop.atrest.SealedBytesField(
                default=b"", purpose=PURPOSE, verbose_name="PDF"
            ),
        ),
    ]
