"""Key material for the platform link: generated at set-up, kept outside the repo.

Production installs the hospital's key pair, the platform's public key, the SM4 key and the
app secret issued by the platform as files named by environment variables (see settings.PLATFORM).
The demo and the tests generate all of them, plus the platform's private key that only the
simulator uses, under ``var/keys``. The same set-up generates the hospital's own HMAC-SM3 keys: of
the lab drop-folder index files (``lab_index.key``, settings.LAB_TRANSFER["INDEX_KEY_FILE"]) and of
the security audit trail's chain (``audit.key``, settings.AUDIT["KEY_FILE"]).
"""

import secrets
from pathlib import Path

from .filemodes import write_private
from .municipal import gm

PLATFORM_FILES = (
    "hospital_sm2.pem",
    "hospital_sm2_pub.pem",
    "platform_sm2.pem",
    "platform_sm2_pub.pem",
    "sm4.key",
    "app_secret",
)
LAB_INDEX_KEY = "lab_index.key"
AUDIT_KEY = "audit.key"
OWN_KEYS = (LAB_INDEX_KEY, AUDIT_KEY)  # the hospital's own HMAC-SM3 keys, each standing alone
DEMO_FILES = (*PLATFORM_FILES, *OWN_KEYS)


def _write(path: Path, data: bytes) -> None:
    write_private(path.parent, path.name, data)


def new_lab_index_key() -> bytes:
    """The content of an HMAC-SM3 key file (lab index, audit chain): 32 random bytes as 64 hex characters."""
    return secrets.token_hex(32).encode()


def ensure_key_file(path: Path) -> bool:
    """Write a new HMAC-SM3 key file at ``path`` unless one is there; True when written."""
    if path.exists():
        return False
    _write(path, new_lab_index_key())
    return True


def ensure_demo_keys(key_dir: Path, force: bool = False) -> list[str]:
    """Generate the missing demo key files (all of them with force). Returns the names written.

    The platform files belong together (key pairs, the secrets the simulator shares): one missing
    renews the set. The hospital's own keys (lab index, audit chain) stand alone: each generated
    only when missing, so adding one to an existing installation leaves the others as they are.
    ``force`` never replaces an existing audit key: the chain written under it would no longer verify."""
    key_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in OWN_KEYS:
        if not (key_dir / name).exists() or (force and name != AUDIT_KEY):
            _write(key_dir / name, new_lab_index_key())
            written.append(name)
    if not force and all((key_dir / name).exists() for name in PLATFORM_FILES):
        return written
    for side in ("hospital", "platform"):
        private = gm.generate_sm2_key()
        _write(key_dir / f"{side}_sm2.pem", private.to_pem())
        _write(key_dir / f"{side}_sm2_pub.pem", private.public_key().to_pem())
        written += [f"{side}_sm2.pem", f"{side}_sm2_pub.pem"]
    _write(key_dir / "sm4.key", secrets.token_hex(16).encode())
    _write(key_dir / "app_secret", secrets.token_urlsafe(24).encode())
    return [*written, "sm4.key", "app_secret"]
