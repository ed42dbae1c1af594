"""The lab models were part of mutual_recognition (its migrations 0002, 0004): the same tables,
now the state of the lab app; mutual_recognition 0006 forgets them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('mutual_recognition', '0005_bind_existing_visits'),
        ('uploads', '0004_redriven_at'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],  # the tables exist already, under their mutual_recognition names
            state_operations=[
                migrations.CreateModel(
                    name='LabReport',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('report_id', models.CharField(max_length=20, unique=True, verbose_name='报告单号')),
                        ('version', models.PositiveIntegerField(default=1, verbose_name='当前版本')),
                        ('status', models.CharField(choices=[('approved', '已审核'), ('archived', '已归档')], default='approved', max_length=16, verbose_name='状态')),
                        ('title', models.CharField(max_length=100, verbose_name='报告名称')),
                        ('patient_name', models.CharField(max_length=50, verbose_name='患者姓名')),
                        ('patient_key', models.CharField(db_index=True, max_length=40, verbose_name='证件摘要')),
                        ('id_masked', models.CharField(blank=True, default='', max_length=32, verbose_name='证件号（脱敏）')),
                        ('visit_id', models.CharField(blank=True, db_index=True, default='', max_length=32, verbose_name='就诊流水号')),
                        ('request_dept', models.CharField(blank=True, default='', max_length=20, verbose_name='申请科室')),
                        ('reported_at', models.DateTimeField(db_index=True, verbose_name='报告时间')),
                        ('approved_at', models.DateTimeField(verbose_name='审核时间')),
                        ('archived_at', models.DateTimeField(blank=True, null=True, verbose_name='归档时间')),
                        ('source', models.CharField(blank=True, default='', max_length=64, verbose_name='来源系统')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='接收时间')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='更新时间')),
                    ],
                    options={
                        'verbose_name': '检验报告',
                        'verbose_name_plural': '检验报告',
                        'db_table': 'mutual_recognition_labreport',
                        'ordering': ['-reported_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='LabReportVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('version', models.PositiveIntegerField(verbose_name='版本')),
                        ('content', models.JSONField(verbose_name='报告内容（LIS 格式）')),
                        ('content_hash', models.CharField(max_length=64, verbose_name='内容摘要（SM3）')),
                        ('approved_at', models.DateTimeField(verbose_name='审核时间')),
                        ('archived_at', models.DateTimeField(blank=True, null=True, verbose_name='归档时间')),
                        ('pdf_file', models.CharField(blank=True, default='', max_length=120, verbose_name='PDF 文件名')),
                        ('index_file', models.CharField(blank=True, default='', max_length=120, verbose_name='索引文件名')),
                        ('pdf_sm3', models.CharField(blank=True, default='', max_length=64, verbose_name='PDF SM3')),
                        ('signed', models.BooleanField(default=False, verbose_name='含电子签名')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('report', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='lab.labreport', verbose_name='报告')),
                    ],
                    options={
                        'verbose_name': '检验报告版本',
                        'verbose_name_plural': '检验报告版本',
                        'db_table': 'mutual_recognition_labreportversion',
                        'ordering': ['report', '-version'],
                    },
                ),
                migrations.CreateModel(
                    name='LabArchivedPdf',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('data', models.BinaryField(verbose_name='PDF 原件')),
                        ('sm3', models.CharField(max_length=64, verbose_name='PDF SM3')),
                        ('archived_at', models.DateTimeField(verbose_name='归档时间')),
                        ('version', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='archived_pdf', to='lab.labreportversion', verbose_name='报告版本')),
                    ],
                    options={
                        'verbose_name': '检验报告归档 PDF',
                        'verbose_name_plural': '检验报告归档 PDF',
                        'db_table': 'mutual_recognition_labarchivedpdf',
                    },
                ),
                migrations.CreateModel(
                    name='LabTransfer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('report_id', models.CharField(blank=True, db_index=True, default='', max_length=20, verbose_name='报告单号')),
                        ('report_version', models.PositiveIntegerField(default=0, verbose_name='报告版本')),
                        ('stem', models.CharField(max_length=120, verbose_name='文件名（不含扩展名）')),
                        ('pdf_name', models.CharField(blank=True, default='', max_length=120, verbose_name='PDF 文件')),
                        ('index_name', models.CharField(blank=True, default='', max_length=120, verbose_name='索引文件')),
                        ('pdf_sm3', models.CharField(blank=True, default='', max_length=64, verbose_name='PDF SM3')),
                        ('index_sm3', models.CharField(blank=True, default='', max_length=64, verbose_name='索引 SM3')),
                        ('pdf_size', models.PositiveIntegerField(default=0, verbose_name='PDF 大小')),
                        ('state', models.CharField(choices=[('discovered', '已发现'), ('enqueued', '已入队待上传'), ('accepted', '平台已接收'), ('cleared', '已清理'), ('quarantined', '已隔离'), ('superseded', '已被新版本取代')], default='discovered', max_length=16, verbose_name='状态')),
                        ('reason', models.TextField(blank=True, default='', verbose_name='原因')),
                        ('errors', models.JSONField(blank=True, default=list, verbose_name='错误明细')),
                        ('patient_name', models.CharField(blank=True, default='', max_length=50, verbose_name='患者姓名')),
                        ('disposition', models.CharField(blank=True, default='', help_text='归档目录中的位置，或“已删除”，或隔离目录', max_length=300, verbose_name='处置')),
                        ('discovered_at', models.DateTimeField(auto_now_add=True, verbose_name='发现时间')),
                        ('enqueued_at', models.DateTimeField(blank=True, null=True, verbose_name='入队时间')),
                        ('accepted_at', models.DateTimeField(blank=True, null=True, verbose_name='平台接收时间')),
                        ('cleared_at', models.DateTimeField(blank=True, null=True, verbose_name='清理时间')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='更新时间')),
                        ('detail_record', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='uploads.outboxrecord', verbose_name='明细上传记录')),
                        ('pdf_record', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='uploads.outboxrecord', verbose_name='PDF 上传记录')),
                    ],
                    options={
                        'verbose_name': '检验报告文件传输',
                        'verbose_name_plural': '检验报告文件传输',
                        'db_table': 'mutual_recognition_labtransfer',
                        'ordering': ['-discovered_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='LabTransferLog',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='时间')),
                        ('event', models.CharField(choices=[('started', '服务启动'), ('discovered', '发现文件'), ('enqueued', '已入队'), ('accepted', '平台已接收'), ('cleared', '已清理'), ('quarantined', '已隔离'), ('duplicate', '重复文件'), ('superseded', '被新版本取代'), ('waiting', '等待配对'), ('error', '错误')], max_length=16, verbose_name='事件')),
                        ('file_name', models.CharField(blank=True, default='', max_length=200, verbose_name='文件')),
                        ('report_id', models.CharField(blank=True, db_index=True, default='', max_length=20, verbose_name='报告单号')),
                        ('message', models.TextField(blank=True, default='', verbose_name='说明')),
                        ('transfer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='log', to='lab.labtransfer', verbose_name='传输')),
                    ],
                    options={
                        'verbose_name': '检验报告传输日志',
                        'verbose_name_plural': '检验报告传输日志',
                        'db_table': 'mutual_recognition_labtransferlog',
                        'ordering': ['-at', '-id'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='labreportversion',
                    constraint=models.UniqueConstraint(fields=('report', 'version'), name='lab_report_version_unique'),
                ),
                migrations.AddIndex(
                    model_name='labtransfer',
                    index=models.Index(fields=['state', 'discovered_at'], name='lab_transfer_state'),
                ),
                migrations.AddConstraint(
                    model_name='labtransfer',
                    constraint=models.UniqueConstraint(condition=models.Q(('state', 'quarantined'), _negated=True), fields=('report_id', 'pdf_sm3', 'index_sm3'), name='lab_transfer_once'),
                ),
            ],
        ),
    ]
