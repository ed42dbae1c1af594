from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from hospital_interop.keys import ensure_at_rest_keys, ensure_demo_keys


class Command(BaseCommand):
    help = (
        "Generate demo SM2 key pairs, SM4 key and app secret under the key folder, and the hospital's "
        "own keys where missing: lab index key, patient digest key, data keys (never committed)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir", default=str(settings.KEY_DIR), help="target folder (default: settings.KEY_DIR)"
        )
        parser.add_argument("--force", action="store_true", help="replace existing platform keys")

    def handle(self, *args, dir, force, **options):
        written = ensure_demo_keys(Path(dir), force=force)
        if Path(dir) == Path(settings.KEY_DIR):  # and where the settings name them, if elsewhere
            written += ensure_at_rest_keys(
                Path(settings.DATA_KEY_DIR), Path(settings.PATIENT_DIGEST_KEY_FILE)
            )
        if written:
            self.stdout.write(self.style.SUCCESS(f"已生成演示密钥 {', '.join(written)} → {dir}"))
        else:
            self.stdout.write(f"演示密钥已存在：{dir}")
