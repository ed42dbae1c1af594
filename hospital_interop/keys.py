"""Key material for the platform link: generated at set-up, kept outside the repo.

Production installs the hospital's key pair, the platform's public key, the SM4 key and the
app secret issued by the platform as files named by environment variables (see settings.PLATFORM).
The demo and the tests generate all of them, plus the platform's private key that only the
simulator uses, under ``var/keys``. The same set-up generates the hospital's own keys, which
production keeps the same way (files, 0600, never in the repo):

* the HMAC-SM3 key of the lab drop-folder index files (``lab_index.key``,
  settings.LAB_TRANSFER["INDEX_KEY_FILE"]);
* the HMAC-SM3 key of the security audit trail's chain (``audit.key``, settings.AUDIT["KEY_FILE"]);
* the HMAC-SM3 key of the patient digest (``patient_digest.key``, settings.PATIENT_DIGEST_KEY_FILE);
* the SM4 data keys that seal patient data at rest (``data/<id>.key`` and ``data/current``,
  settings.DATA_KEY_DIR; ``atrest.py``). ``manage.py rotate_data_key`` adds keys with
  ``add_data_key``.

The hospital's own keys are generated only when missing, and ``force`` leaves the audit key, the
digest key and the data keys alone: replacing them would make the audit chain, stored digests and
sealed data unusable.
"""

import os
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
PATIENT_DIGEST_KEY = "patient_digest.key"
DATA_KEY_DIR = "data"
CURRENT = "current"  # in the data key folder: the id of the key new values are sealed with
KEY_SUFFIX = ".key"  # in the data key folder: <id>.key, one per data key
OWN_KEYS = (LAB_INDEX_KEY, AUDIT_KEY)  # the hospital's own HMAC-SM3 keys, each standing alone
DEMO_FILES = (*PLATFORM_FILES, *OWN_KEYS, PATIENT_DIGEST_KEY)


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


def ensure_patient_digest_key(path: Path) -> bool:
    """Write the patient digest key (32 random bytes as hex) if there is none; True if written."""
    path = Path(path)
    if path.exists():
        return False
    _write(path, secrets.token_hex(32).encode())
    return True


def add_data_key(folder: Path) -> str:
    """A new SM4 data key in ``folder``, made current (the key file first, then ``current``
    renamed into place: a reader never sees a current id without its key). Returns its id."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    while True:
        key_id = secrets.token_hex(4)
        if not (folder / f"{key_id}{KEY_SUFFIX}").exists():
            break
    _write(folder / f"{key_id}{KEY_SUFFIX}", secrets.token_hex(16).encode())
    _write(folder / CURRENT, key_id.encode())
    return key_id


def ensure_data_keys(folder: Path) -> str | None:
    """A first data key if ``folder`` has no current one; its id, or None if one was there."""
    if (Path(folder) / CURRENT).exists():
        return None
    return add_data_key(folder)


def ensure_at_rest_keys(data_key_dir: Path, digest_key_file: Path) -> list[str]:
    """The data keys and the patient digest key where the settings name them, if missing."""
    written = []
    if ensure_patient_digest_key(digest_key_file):
        written.append(Path(digest_key_file).name)
    if key_id := ensure_data_keys(data_key_dir):
        written.append(f"{Path(data_key_dir).name}/{key_id}.key")
    return written


def ensure_demo_keys(key_dir: Path, force: bool = False) -> list[str]:
    """Generate the missing demo key files (all of them with force). Returns the names written.

    The platform files belong together (key pairs, the secrets the simulator shares): one missing
    renews the set. The hospital's own keys (lab index, audit chain) stand alone: each generated
    only when missing, so adding one to an existing installation leaves the others as they are.
    ``force`` never replaces an existing audit key (the chain written under it would no longer
    verify); the patient digest key and the data keys (``data/``) are generated when missing,
    never replaced."""
    key_dir.mkdir(parents=True, exist_ok=True)
    written = ensure_at_rest_keys(key_dir / DATA_KEY_DIR, key_dir / PATIENT_DIGEST_KEY)
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
