"""Who may read what the service writes: files holding patient data are the service user's alone.

Two layers:

* ``restrict_umask()`` runs when the ``hospital_interop`` package is imported (its ``__init__``).
  Every process of the project imports the package before it writes anything under ``var/``:
  ``manage.py`` and its commands such as ``lab_transfer`` (through the settings), the gunicorn
  master (``-c python:hospital_interop.gunicorn_conf``: its own log file too) and workers
  (``wsgi.py``), Celery worker and beat (``-A hospital_interop``), the platform and CA simulators
  (``python -m simulators…``: ``simulators/__init__.py`` calls it explicitly) and the test suite. So this one call covers them all:
  anything they create is at most ``rw-r-----`` (files) / ``rwxr-x---`` (folders), never
  world-readable. ``scripts/demo.sh`` sets the same umask for what the shell itself creates (the
  process logs under ``var/log``) and for the UKey agent.
* Files that hold patient data are written ``0600`` explicitly, whatever the umask:
  ``write_private`` (atomic; the drop-folder PDFs and indexes, quarantine and archive copies, keys,
  DICOM instances retrieved from the PACS),
  ``make_private`` (a file moved into one of our folders), and ``private_database_file`` for the
  SQLite demo database, which SQLite would otherwise create on the first connection with the
  umask's mode (its ``-wal``, ``-shm`` and ``-journal`` files take the database file's mode).

Standard library only: the package ``__init__`` and ``settings.py`` import it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

UMASK = 0o027
PRIVATE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def restrict_umask() -> int:
    """Add 027 to the process umask (a stricter umask set by the operator is kept); returns the new one."""
    current = os.umask(UMASK)
    os.umask(current | UMASK)
    return current | UMASK


def write_private(folder: Path, name: str, data: bytes, *, durable: bool = True) -> Path:
    """Write ``folder/name`` with mode 0600 so that readers see either nothing or the whole file.

    The bytes go to a hidden temporary file in the same folder (``.<name>.<pid>.<thread>.part``;
    readers of the drop folder ignore names starting with a dot), which is renamed into place; with
    ``durable`` (the default) the file and the rename are fsynced first. Transient copies that can
    be fetched again (retrieved DICOM instances) skip the fsyncs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    tmp = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), PRIVATE)  # a temporary left over by a crash kept its old mode
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, final)
    if durable:
        fsync_dir(folder)
    return final


def make_private(path: Path) -> None:
    """Set 0600 on a file that was moved into one of our folders (a LIS may have written it 0644).

    A file another user owns cannot be changed; it is logged and left, inside our folder (0750)."""
    try:
        os.chmod(path, PRIVATE)
    except PermissionError:
        log.warning("cannot make %s private (owned by another user)", path)


def private_database_file(name: str) -> None:
    """Create the SQLite database file ``name`` with mode 0600 before the first connection does, and
    set 0600 on an existing one and its journal files. Never truncates; in-memory names are skipped."""
    if not name or name == ":memory:" or str(name).startswith("file:"):
        return
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    except FileExistsError:
        pass
    for p in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        try:
            os.chmod(p, PRIVATE)
        except FileNotFoundError:
            pass


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
