"""Key material for the platform link: generated at set-up, kept outside the repo.

Production installs the hospital's key pair, the platform's public key, the SM4 key and the
app secret issued by the platform as files named by environment variables (see settings.PLATFORM).
The demo and the tests generate all of them, plus the platform's private key that only the
simulator uses, under ``var/keys``.
"""

import os
import secrets
from pathlib import Path

from .municipal import gm

DEMO_FILES = (
    "hospital_sm2.pem", "hospital_sm2_pub.pem", "platform_sm2.pem", "platform_sm2_pub.pem", "sm4.key", "app_secret",
)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def ensure_demo_keys(key_dir: Path, force: bool = False) -> list[str]:
    """Generate any missing demo key file (all of them with force). Returns the names written."""
    key_dir.mkdir(parents=True, exist_ok=True)
    if not force and all((key_dir / name).exists() for name in DEMO_FILES):
        return []
    written = []
    for side in ("hospital", "platform"):
        private = gm.generate_sm2_key()
        _write(key_dir / f"{side}_sm2.pem", private.to_pem())
        _write(key_dir / f"{side}_sm2_pub.pem", private.public_key().to_pem())
        written += [f"{side}_sm2.pem", f"{side}_sm2_pub.pem"]
    _write(key_dir / "sm4.key", secrets.token_hex(16).encode())
    _write(key_dir / "app_secret", secrets.token_urlsafe(24).encode())
    return [*written, "sm4.key", "app_secret"]
