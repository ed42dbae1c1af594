import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hospital_interop import atrest
from hospital_interop.filemodes import write_private


class Command(BaseCommand):
    help = "Open a sealed archive or quarantine file (<name>.sm4) for a person: to --out (0600) or stdout."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the sealed file (.sm4)")
        parser.add_argument("--out", help="write the opened file here (mode 0600) instead of stdout")

    def handle(self, *args, path, out, **options):
        try:
            data = atrest.read_sealed_file(Path(path))
        except FileNotFoundError:
            raise CommandError(f"文件不存在：{path}") from None
        except atrest.SealBroken as broken:
            raise CommandError(f"无法解密 {path}：{broken.message}") from None
        if out:
            target = Path(out)
            write_private(target.parent, target.name, data)
            self.stderr.write(f"已解密到 {target}（{len(data)} 字节）")
        else:
            sys.stdout.buffer.write(data)
