from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from hospital_interop import atrest, keys, rekey


class Command(BaseCommand):
    help = (
        "Make a new SM4 data key current, then re-seal every sealed column and file under it in "
        "batches (resumable with --resume; old keys are kept: backups still need them)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--resume",
            action="store_true",
            help="keep the current key and finish re-sealing what is still under older ones",
        )
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")

    def handle(self, *args, resume, batch_size, **options):
        if resume:
            key_id = atrest.data_keys().current_id()
            self.stdout.write(f"继续使用当前数据密钥 {key_id} 重新加密")
        else:
            key_id = keys.add_data_key(Path(settings.DATA_KEY_DIR))
            self.stdout.write(f"新数据密钥 {key_id} 已启用：新写入的数据从现在起用它加密")
        outcome = rekey.Outcome()
        for field in atrest.sealed_fields():
            total = rekey.pending(field, key_id)
            with tqdm(total=total, desc=f"{field.model._meta.label}.{field.name}", unit="条") as bar:
                rekey.reseal_column(
                    field, key_id, batch_size=batch_size, progress=bar.update, outcome=outcome
                )
        files = rekey.files_pending(key_id)
        with tqdm(total=len(files), desc="归档/隔离文件", unit="个") as bar:
            rekey.reseal_files(files, key_id, progress=bar.update, outcome=outcome)
        self.stdout.write(f"已重新加密 {outcome.resealed} 项。")
        left = {f"{f.model._meta.label}.{f.name}": rekey.pending(f, key_id) for f in atrest.sealed_fields()}
        left["files"] = len(rekey.files_pending(key_id))
        if outcome.broken:
            self.stderr.write(
                self.style.ERROR(
                    f"{len(outcome.broken)} 项无法解密（已被改动或缺少密钥），保持原样，请检查：\n  "
                    + "\n  ".join(outcome.broken[:50])
                )
            )
        elif any(left.values()):  # written under the old key while this ran: run again with --resume
            self.stdout.write(
                self.style.WARNING(
                    "仍有数据在旧密钥下（运行期间写入），请再运行 rotate_data_key --resume：" + str(left)
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(f"全部数据均已使用密钥 {key_id} 加密；旧密钥文件请在确认备份后妥善归档。")
            )
