"""The drop-folder settings (``settings.LAB_TRANSFER``), with defaults under ``var/lab`` and the index
key under ``var/keys``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class TransferConfig:
    drop_dir: Path
    archive_dir: Path | None  # None: accepted files are deleted
    quarantine_dir: Path
    unpaired_timeout: float  # seconds a PDF or index may wait for its partner
    rescan_seconds: float  # full folder scan even without filesystem events
    accept_poll_seconds: float  # how often enqueued pairs are checked for acceptance
    index_key_file: Path  # HMAC-SM3 key of the index files, hex (docs/lab-transfer.md §2)

    @classmethod
    def from_settings(cls, **overrides) -> TransferConfig:
        raw = dict(getattr(settings, "LAB_TRANSFER", {}) or {})
        var = Path(settings.VAR_DIR) / "lab"
        archive = raw.get("ARCHIVE_DIR", str(var / "archive"))
        if str(raw.get("AFTER_ACCEPT", "archive")).lower() == "delete":
            archive = ""
        cfg = cls(
            drop_dir=Path(raw.get("DROP_DIR") or var / "drop"),
            archive_dir=Path(archive) if archive else None,
            quarantine_dir=Path(raw.get("QUARANTINE_DIR") or var / "quarantine"),
            unpaired_timeout=float(raw.get("UNPAIRED_TIMEOUT_SECONDS", 600)),
            rescan_seconds=float(raw.get("RESCAN_SECONDS", 30)),
            accept_poll_seconds=float(raw.get("ACCEPT_POLL_SECONDS", 1)),
            index_key_file=Path(raw.get("INDEX_KEY_FILE") or Path(settings.KEY_DIR) / "lab_index.key"),
        )
        if overrides:
            cfg = cls(**{**cfg.__dict__, **overrides})
        return cfg

    def ensure_dirs(self) -> None:
        for d in (self.drop_dir, self.archive_dir, self.quarantine_dir):
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)

    def index_key(self) -> bytes:
        """The HMAC-SM3 key of the index files: the hex text of ``index_key_file`` decoded.

        A missing or malformed key file is a set-up error (``manage.py setup_keys`` generates it),
        never a reason to write or accept index files without it."""
        try:
            text = self.index_key_file.read_text("ascii").strip()
        except FileNotFoundError:
            raise ImproperlyConfigured(
                f"检验报告索引校验密钥文件不存在：{self.index_key_file}（运行 manage.py setup_keys 生成，"
                f"或用 LAB_INDEX_KEY_FILE 指定）"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ImproperlyConfigured(
                f"无法读取检验报告索引校验密钥文件 {self.index_key_file}：{exc}"
            ) from None
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text) or len(text) < 2 * MIN_KEY_BYTES:
            raise ImproperlyConfigured(
                f"检验报告索引校验密钥文件 {self.index_key_file} 应为十六进制文本（至少 {MIN_KEY_BYTES} 字节）"
            )
        return bytes.fromhex(text)


def sealed_folders() -> list[Path | None]:
    """Where the transfer service keeps sealed files: the archive (None: files deleted) and quarantine."""
    cfg = TransferConfig.from_settings()
    return [cfg.archive_dir, cfg.quarantine_dir]
