"""The drop-folder settings (``settings.LAB_TRANSFER``), with defaults under ``var/lab``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class TransferConfig:
    drop_dir: Path
    archive_dir: Path | None  # None: accepted files are deleted
    quarantine_dir: Path
    unpaired_timeout: float  # seconds a PDF or index may wait for its partner
    rescan_seconds: float  # full folder scan even without filesystem events
    accept_poll_seconds: float  # how often enqueued pairs are checked for acceptance

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
        )
        if overrides:
            cfg = cls(**{**cfg.__dict__, **overrides})
        return cfg

    def ensure_dirs(self) -> None:
        for d in (self.drop_dir, self.archive_dir, self.quarantine_dir):
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)
