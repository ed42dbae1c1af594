"""ReviewReport.lab_version points at the same table, now the lab app's model."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('esign', '0002_signatures_bound_to_report_versions'),
        ('lab', '0001_moved_from_mutual_recognition'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],  # the tables exist already, under their mutual_recognition names
            state_operations=[
                migrations.AlterField(
                    model_name='reviewreport',
                    name='lab_version',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='reviews', to='lab.labreportversion', verbose_name='检验报告版本'),
                ),
            ],
        ),
    ]
