"""The CA simulator's state: one SQLite file (WAL) plus the CA key and certificate beside it."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from esign import certs
from hospital_interop.municipal import gm

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    id_type TEXT NOT NULL,
    id_number TEXT NOT NULL UNIQUE,
    staff_no TEXT NOT NULL UNIQUE,
    department TEXT NOT NULL DEFAULT '',
    mobile TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cloud_keys (      -- the server half of the collaborative-signing key
    user_id TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS certs (
    cert_sn TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    media TEXT NOT NULL,                      -- CLOUD | UKEY
    key_serial TEXT NOT NULL DEFAULT '',
    der BLOB NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'VALID',     -- VALID | REVOKED | FROZEN
    is_current INTEGER NOT NULL DEFAULT 1,
    issued_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS certs_user ON certs (user_id, media, is_current);
CREATE TABLE IF NOT EXISTS transactions (    -- QR flows and sign jobs
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                       -- LOGIN | CERTDOWN | AUTOSIGN | PUSHSIGN | AUTO
    token TEXT UNIQUE,                        -- what the QR code carries
    user_id TEXT,
    status TEXT NOT NULL,                     -- TOSIGN | FINISH | REFUSE | EXPIRE | CLOSED
    body TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS transactions_user ON transactions (user_id, kind, created_at);
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class Authority:
    """The CA's key and self-signed root certificate, generated into the data folder at first start."""

    ISSUER = [("C", "CN"), ("O", "模拟数字认证中心"), ("CN", "模拟 SM2 医疗 CA")]

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        key_file, cert_file = data_dir / "ca_sm2.pem", data_dir / "ca_cert.der"
        if not key_file.exists():
            _write_private(key_file, gm.generate_sm2_key().to_pem())
        self.key = gm.load_private_key_pem(key_file.read_bytes())
        if not cert_file.exists() or not certs.load_certificate(cert_file.read_bytes()).subject_key_id:
            # first start, or a root from before certificates carried key identifiers: (re)issue
            # it for the same key, so every certificate issued with that key still chains to it
            cert_file.write_bytes(self._root_certificate())
        self.cert = certs.load_certificate(cert_file.read_bytes())

    def _root_certificate(self) -> bytes:
        now = utcnow()
        return certs.build_certificate(
            ca_key=self.key,
            issuer=self.ISSUER,
            subject=self.ISSUER,
            public_key=self.key.public_key(),
            serial=int.from_bytes(os.urandom(8), "big") | (1 << 63),
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=3650),
            is_ca=True,
        )

    def issue(
        self,
        *,
        public_key: gm.SM2PublicKey,
        name: str,
        staff_no: str,
        user_id: str,
        department: str,
        org: str,
        not_before: datetime,
        not_after: datetime,
    ) -> certs.Certificate:
        subject = [
            ("C", "CN"),
            ("O", org),
            ("OU", department or "检验科"),
            ("CN", name),
            ("serialNumber", staff_no),
            ("UID", user_id),
        ]
        der = certs.build_certificate(
            ca_key=self.key,
            issuer=self.ISSUER,
            subject=subject,
            public_key=public_key,
            serial=int.from_bytes(os.urandom(8), "big") | (1 << 63),
            not_before=not_before,
            not_after=not_after,
        )
        return certs.load_certificate(der)


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    @contextmanager
    def tx(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def one(self, sql: str, *args) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def all(self, sql: str, *args) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def next_number(self, db, name: str) -> int:
        db.execute(
            "INSERT INTO counters(name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (name,),
        )
        return db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0]

    def remember_nonce(self, nonce: str, at_ms: int, window_ms: int) -> bool:
        """False if the nonce was seen inside the window (a replay)."""
        with self.tx() as db:
            db.execute("DELETE FROM nonces WHERE at < ?", (at_ms - 2 * window_ms,))
            try:
                db.execute("INSERT INTO nonces(nonce, at) VALUES (?, ?)", (nonce, at_ms))
            except sqlite3.IntegrityError:
                return False
        return True

    @staticmethod
    def body(row) -> dict:
        return json.loads(row["body"]) if row and row["body"] else {}
