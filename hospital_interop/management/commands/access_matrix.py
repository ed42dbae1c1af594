"""Print the role x URL matrix (hospital_interop/access.py) as the README's Markdown table."""

from django.core.management.base import BaseCommand

from hospital_interop.access import markdown_table


class Command(BaseCommand):
    help = "打印角色 × 页面访问矩阵（README 中的表格）"

    def handle(self, *args, **options):
        self.stdout.write(markdown_table())
