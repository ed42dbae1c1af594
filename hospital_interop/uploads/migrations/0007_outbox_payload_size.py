from django.db import migrations, models


class Migration(migrations.Migration):
    """The size of each row's payload, set at enqueue (rows stored before stay 0: claimed as small)."""

    dependencies = [("uploads", "0006_generate_switch")]

    operations = [
        migrations.AddField(
            model_name="outboxrecord",
            name="payload_size",
            field=models.PositiveIntegerField(default=0, verbose_name="上传内容大小(字节)"),
        ),
    ]
