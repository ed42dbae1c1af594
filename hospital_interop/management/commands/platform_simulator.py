"""``manage.py platform_simulator``: the municipal platform simulator (same options as
``python -m hospital_interop.simulators.platform``)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from hospital_interop.simulators.platform import cli


class Command(BaseCommand):
    help = "启动市平台模拟器（独立端口与独立 SQLite 数据库）。"

    def add_arguments(self, parser):
        cli.add_arguments(parser)
        # Inside the project the folders follow the settings (HOSPITAL_INTEROP_VAR_DIR / _KEY_DIR).
        parser.set_defaults(db=str(settings.VAR_DIR / "platform-sim.sqlite3"), keys=str(settings.KEY_DIR))

    def handle(self, *args, **options):
        keys = {a.dest for a in cli.build_parser()._actions if a.dest != "help"}
        opts = type("Options", (), {k: v for k, v in options.items() if k in keys})
        code = cli.serve(opts)
        if code:
            raise SystemExit(code)
