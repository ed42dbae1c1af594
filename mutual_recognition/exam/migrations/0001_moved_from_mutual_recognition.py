"""The exam models were part of mutual_recognition (its migrations 0003): the same tables, now
the state of the exam app; mutual_recognition 0006 forgets them."""

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
                    name='DailySummaryRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('stat_date', models.DateField(verbose_name='统计日期')),
                        ('trigger', models.CharField(choices=[('schedule', '定时'), ('ops', '手工重报')], max_length=16, verbose_name='触发方式')),
                        ('requested_by', models.CharField(blank=True, default='', max_length=150, verbose_name='操作人')),
                        ('rows', models.JSONField(default=list, help_text='[{deptCode, deptName, reportCount, studyCount}]', verbose_name='各科室数量')),
                        ('record_ids', models.JSONField(default=list, verbose_name='上传记录')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='生成时间')),
                    ],
                    options={
                        'verbose_name': '检查日报',
                        'verbose_name_plural': '检查日报',
                        'db_table': 'mutual_recognition_dailysummaryrun',
                        'ordering': ['-created_at'],
                        'indexes': [models.Index(fields=['stat_date', 'trigger'], name='exam_daily_date')],
                    },
                ),
                migrations.CreateModel(
                    name='StudySync',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('study_instance_uid', models.CharField(max_length=64, unique=True, verbose_name='Study Instance UID')),
                        ('accession_no', models.CharField(blank=True, default='', max_length=32, verbose_name='检查号')),
                        ('report_id', models.CharField(blank=True, default='', max_length=20, verbose_name='检查报告单编号')),
                        ('patient_display', models.CharField(blank=True, default='', max_length=64, verbose_name='患者')),
                        ('source', models.CharField(choices=[('folder', '检查目录'), ('pacs', 'PACS 调取')], max_length=8, verbose_name='影像来源')),
                        ('folder', models.CharField(blank=True, default='', max_length=500, verbose_name='影像目录')),
                        ('rescan', models.BooleanField(default=True, verbose_name='下次运行重新扫描')),
                        ('state', models.CharField(choices=[('pending', '待同步'), ('running', '同步中'), ('retry', '等待重试'), ('attention', '需人工处理'), ('done', '已完成')], default='pending', max_length=16, verbose_name='状态')),
                        ('attempts', models.PositiveIntegerField(default=0, verbose_name='尝试次数')),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='下次尝试')),
                        ('lease_until', models.DateTimeField(blank=True, null=True, verbose_name='占用至')),
                        ('claimed_by', models.CharField(blank=True, default='', max_length=64, verbose_name='处理进程')),
                        ('total', models.PositiveIntegerField(default=0, verbose_name='实例总数')),
                        ('stored', models.PositiveIntegerField(default=0, verbose_name='已送达')),
                        ('rejected', models.PositiveIntegerField(default=0, verbose_name='被拒收')),
                        ('skipped_files', models.JSONField(blank=True, default=list, verbose_name='跳过的文件')),
                        ('destination', models.CharField(blank=True, default='', max_length=120, verbose_name='前置机')),
                        ('last_error', models.TextField(blank=True, default='', verbose_name='最后错误')),
                        ('event_at', models.DateTimeField(verbose_name='事件时间')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='创建时间')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='更新时间')),
                        ('started_at', models.DateTimeField(blank=True, null=True, verbose_name='最近开始')),
                        ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='完成时间')),
                        ('source_system', models.CharField(blank=True, default='', max_length=64, verbose_name='来源系统')),
                    ],
                    options={
                        'verbose_name': '影像同步任务',
                        'verbose_name_plural': '影像同步任务',
                        'db_table': 'mutual_recognition_studysync',
                        'indexes': [models.Index(condition=models.Q(('state__in', ['pending', 'retry'])), fields=['next_attempt_at'], name='study_sync_due'), models.Index(condition=models.Q(('state', 'running')), fields=['lease_until'], name='study_sync_leased'), models.Index(fields=['state', 'updated_at'], name='study_sync_state')],
                    },
                ),
                migrations.CreateModel(
                    name='ExamReport',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('report_id', models.CharField(max_length=20, unique=True, verbose_name='检查报告单编号')),
                        ('accession_no', models.CharField(blank=True, db_index=True, default='', max_length=32, verbose_name='检查号')),
                        ('state', models.CharField(choices=[('held', '待对照'), ('active', '已审核上传'), ('withdrawn', '已撤回作废')], default='held', max_length=16, verbose_name='状态')),
                        ('version', models.PositiveIntegerField(default=0, help_text='每次审核（含重新审核）加一', verbose_name='审核版本')),
                        ('content', models.JSONField(default=dict, help_text='RIS 提交的内容（院内代码），不含 PDF', verbose_name='报告内容')),
                        ('content_hash', models.CharField(blank=True, default='', max_length=64, verbose_name='内容摘要')),
                        ('problems', models.JSONField(blank=True, default=list, verbose_name='对照问题')),
                        ('pdf_name', models.CharField(blank=True, default='', max_length=100, verbose_name='PDF 文件名')),
                        ('pdf_size', models.PositiveIntegerField(default=0, verbose_name='PDF 大小')),
                        ('pdf_content', models.BinaryField(default=b'', verbose_name='PDF')),
                        ('patient_display', models.CharField(blank=True, default='', max_length=64, verbose_name='患者')),
                        ('patient_id_hash', models.CharField(blank=True, default='', max_length=64, verbose_name='患者标识摘要')),
                        ('exam_item', models.CharField(blank=True, default='', max_length=130, verbose_name='检查项目')),
                        ('dept_std_code', models.CharField(blank=True, default='', max_length=20, verbose_name='执行科室标准代码')),
                        ('dept_std_name', models.CharField(blank=True, default='', max_length=50, verbose_name='执行科室标准名称')),
                        ('study_instance_uid', models.CharField(blank=True, default='', max_length=64, verbose_name='Study Instance UID')),
                        ('void_reason', models.CharField(blank=True, default='', max_length=200, verbose_name='作废原因')),
                        ('source', models.CharField(blank=True, default='', max_length=64, verbose_name='来源系统')),
                        ('received_at', models.DateTimeField(auto_now_add=True, verbose_name='首次接收')),
                        ('approved_at', models.DateTimeField(blank=True, null=True, verbose_name='最近审核')),
                        ('withdrawn_at', models.DateTimeField(blank=True, null=True, verbose_name='撤回时间')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='更新时间')),
                        ('pdf_record', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='uploads.outboxrecord', verbose_name='PDF 上传')),
                        ('result_record', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='uploads.outboxrecord', verbose_name='结果上传')),
                        ('void_record', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='uploads.outboxrecord', verbose_name='作废上传')),
                    ],
                    options={
                        'verbose_name': '检查报告',
                        'verbose_name_plural': '检查报告',
                        'db_table': 'mutual_recognition_examreport',
                        'indexes': [models.Index(fields=['state', 'updated_at'], name='exam_report_state')],
                    },
                ),
                migrations.CreateModel(
                    name='StudyInstance',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('sop_instance_uid', models.CharField(max_length=64, verbose_name='SOP Instance UID')),
                        ('sop_class_uid', models.CharField(max_length=64, verbose_name='SOP Class UID')),
                        ('transfer_syntax_uid', models.CharField(max_length=64, verbose_name='传输语法')),
                        ('series_instance_uid', models.CharField(blank=True, default='', max_length=64, verbose_name='Series Instance UID')),
                        ('path', models.CharField(max_length=1000, verbose_name='文件')),
                        ('size', models.PositiveBigIntegerField(default=0, verbose_name='大小')),
                        ('data_offset', models.PositiveIntegerField(default=0, verbose_name='数据集起点')),
                        ('state', models.CharField(choices=[('pending', '待发送'), ('stored', '已送达'), ('rejected', '被拒收')], default='pending', max_length=16, verbose_name='状态')),
                        ('status', models.PositiveIntegerField(blank=True, null=True, verbose_name='前置机状态码')),
                        ('sent_count', models.PositiveIntegerField(default=0, verbose_name='发送次数')),
                        ('stored_at', models.DateTimeField(blank=True, null=True, verbose_name='送达时间')),
                        ('last_error', models.CharField(blank=True, default='', max_length=500, verbose_name='最后错误')),
                        ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='instances', to='exam.studysync')),
                    ],
                    options={
                        'verbose_name': '影像实例',
                        'verbose_name_plural': '影像实例',
                        'db_table': 'mutual_recognition_studyinstance',
                        'indexes': [models.Index(fields=['job', 'state'], name='study_instance_state')],
                        'constraints': [models.UniqueConstraint(fields=('job', 'sop_instance_uid'), name='study_instance_unique')],
                    },
                ),
            ],
        ),
    ]
