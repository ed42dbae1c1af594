from django.conf import settings
from django.core.management.base import BaseCommand

from hospital_interop.simulators.ca.__main__ import DEFAULT_APP_ID
from hospital_interop.simulators.ca.__main__ import main as run


class Command(BaseCommand):
    help = "Run the CA signing-server simulator (same as python -m hospital_interop.simulators.ca)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8702)
        parser.add_argument("--db", default=str(settings.VAR_DIR / "ca" / "ca.sqlite3"))
        parser.add_argument("--app-id", default=DEFAULT_APP_ID)
        parser.add_argument("--app-secret-file", default="")
        parser.add_argument("--public-url", default="")

    def handle(self, *args, **o):
        argv = ["--host", o["host"], "--port", str(o["port"]), "--db", o["db"], "--app-id", o["app_id"]]
        if o["app_secret_file"]:
            argv += ["--app-secret-file", o["app_secret_file"]]
        if o["public_url"]:
            argv += ["--public-url", o["public_url"]]
        run(argv)
