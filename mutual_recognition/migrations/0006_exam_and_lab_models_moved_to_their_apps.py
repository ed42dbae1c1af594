"""The exam and lab models moved to apps of their own (same tables): forget them here."""

from django.db import migrations

MOVED = {"exam": ("examreport", "dailysummaryrun", "studysync", "studyinstance"),
         "lab": ("labreport", "labreportversion", "labarchivedpdf", "labtransfer", "labtransferlog")}


def move_content_types(apps, schema_editor):
    """Keep each moved model's content type (and the permissions and admin log hanging on it)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for label, models in MOVED.items():
        for model in models:
            if not ContentType.objects.filter(app_label=label, model=model).exists():
                ContentType.objects.filter(app_label="mutual_recognition", model=model).update(app_label=label)


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('exam', '0001_moved_from_mutual_recognition'),
        ('lab', '0001_moved_from_mutual_recognition'),
        ('esign', '0003_lab_version_in_the_lab_app'),
        ('mutual_recognition', '0005_bind_existing_visits'),
    ]

    operations = [
        migrations.RunPython(move_content_types, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            database_operations=[],  # the tables exist already, under their mutual_recognition names
            state_operations=[
                migrations.DeleteModel(
                    name='DailySummaryRun',
                ),
                migrations.RemoveField(
                    model_name='labarchivedpdf',
                    name='version',
                ),
                migrations.RemoveField(
                    model_name='labreportversion',
                    name='report',
                ),
                migrations.RemoveField(
                    model_name='labtransfer',
                    name='detail_record',
                ),
                migrations.RemoveField(
                    model_name='labtransfer',
                    name='pdf_record',
                ),
                migrations.RemoveField(
                    model_name='labtransferlog',
                    name='transfer',
                ),
                migrations.RemoveField(
                    model_name='studyinstance',
                    name='job',
                ),
                migrations.DeleteModel(
                    name='ExamReport',
                ),
                migrations.DeleteModel(
                    name='LabArchivedPdf',
                ),
                migrations.DeleteModel(
                    name='LabReport',
                ),
                migrations.DeleteModel(
                    name='LabReportVersion',
                ),
                migrations.DeleteModel(
                    name='LabTransfer',
                ),
                migrations.DeleteModel(
                    name='LabTransferLog',
                ),
                migrations.DeleteModel(
                    name='StudyInstance',
                ),
                migrations.DeleteModel(
                    name='StudySync',
                ),
            ],
        ),
    ]
