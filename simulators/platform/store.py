"""The simulator's own SQLite database (WAL): records, external results, faults, stats, feedback,
the console's journal of exchanges.

Every thread gets its own connection; every process opening the same file sees the same state,
so faults set through one worker apply to all of them. Writes use ``BEGIN IMMEDIATE`` so two
threads never dead-lock upgrading a read lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    interface TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    voided INTEGER NOT NULL DEFAULT 0,
    void_info TEXT,
    receipt TEXT NOT NULL,
    first_received_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    org_code TEXT,
    id_no TEXT,
    PRIMARY KEY (interface, key)
);
CREATE INDEX IF NOT EXISTS records_id_no ON records (id_no) WHERE id_no IS NOT NULL;
CREATE TABLE IF NOT EXISTS externals (
    org_code TEXT NOT NULL,
    report_id TEXT NOT NULL,
    kind TEXT NOT NULL,            -- 'lab' | 'exam'
    id_no TEXT NOT NULL,
    body TEXT NOT NULL,            -- the report as the recognition queries return it
    patient TEXT NOT NULL,         -- {"name", "idNo", "sexCode", ...}
    created_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (org_code, report_id)
);
CREATE INDEX IF NOT EXISTS externals_id_no ON externals (id_no, kind, seq);
CREATE TABLE IF NOT EXISTS seeded_patients (
    id_no TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stats (
    service TEXT NOT NULL,
    code TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (service, code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    app_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (app_id, nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    interface TEXT NOT NULL,
    key TEXT NOT NULL,
    field TEXT NOT NULL,
    rule TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exchanges (  -- the console's journal of protocol requests (journal.py)
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    interface TEXT NOT NULL,
    received_at TEXT NOT NULL,
    key TEXT,
    http_status INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    answer TEXT,
    payload TEXT,
    payload_source TEXT NOT NULL,
    envelope TEXT,
    faults TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_interface ON exchanges (interface, id);
-- data-quality findings and the hospital's replies (quality.py)
CREATE TABLE IF NOT EXISTS qc_findings (
    feedback_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    org_code TEXT NOT NULL,
    body TEXT NOT NULL,
    issued INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS qc_replies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    feedback_id TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""

RECORD_COLUMNS = (
    "interface",
    "key",
    "version",
    "payload",
    "voided",
    "void_info",
    "receipt",
    "first_received_at",
    "received_at",
)


class Store:
    """Thread-safe access to one SQLite file; one connection per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    # -- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # OFF: a commit costs 70 us instead of 190 us (no fsync at WAL checkpoints). A process
            # crash loses nothing; only an OS crash could, which is acceptable for a simulator.
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(self) -> sqlite3.Connection:
        return self._conn()

    # -- records -------------------------------------------------------------------------------
    @staticmethod
    def get_record(db: sqlite3.Connection, interface: str, key: str) -> dict | None:
        row = db.execute(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM records WHERE interface = ? AND key = ?",
            (interface, key),
        ).fetchone()
        return _record(row) if row else None

    @staticmethod
    def upsert_record(
        db: sqlite3.Connection,
        *,
        interface: str,
        key: str,
        payload: dict,
        receipt: str,
        now: str,
        org_code: str | None,
        id_no: str | None,
    ) -> int:
        """Insert version 1 or replace the payload with version + 1 (un-voiding it); returns the version."""
        row = db.execute(
            "INSERT INTO records (interface, key, version, payload, voided, void_info, receipt,"
            " first_received_at, received_at, org_code, id_no)"
            " VALUES (?, ?, 1, ?, 0, NULL, ?, ?, ?, ?, ?)"
            " ON CONFLICT (interface, key) DO UPDATE SET version = version + 1,"
            " payload = excluded.payload, voided = 0, void_info = NULL, receipt = excluded.receipt,"
            " received_at = excluded.received_at, org_code = excluded.org_code, id_no = excluded.id_no"
            " RETURNING version",
            (interface, key, _dumps(payload), receipt, now, now, org_code, id_no),
        ).fetchone()
        return row[0]

    @staticmethod
    def void_record(db: sqlite3.Connection, interface: str, key: str, info: dict) -> bool:
        cur = db.execute(
            "UPDATE records SET voided = 1, void_info = ? WHERE interface = ? AND key = ?",
            (_dumps(info), interface, key),
        )
        return cur.rowcount > 0

    def records(self, interface: str | None = None, *, include_voided: bool = True) -> list[dict]:
        sql = f"SELECT {', '.join(RECORD_COLUMNS)} FROM records"
        clauses, params = [], []
        if interface:
            clauses.append("interface = ?")
            params.append(interface)
        if not include_voided:
            clauses.append("voided = 0")
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY interface, first_received_at, key"
        return [_record(r) for r in self.read().execute(sql, params)]

    def live_records(
        self, interfaces: Iterable[str], *, org_code: str | None = None, id_no: str | None = None
    ) -> list[dict]:
        names = list(interfaces)
        if not names:
            return []
        sql = (
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM records WHERE voided = 0"
            f" AND interface IN ({', '.join('?' * len(names))})"
        )
        params: list[object] = list(names)
        if org_code is not None:
            sql += " AND org_code = ?"
            params.append(org_code)
        if id_no is not None:
            sql += " AND id_no = ?"
            params.append(id_no)
        return [_record(r) for r in self.read().execute(sql, params)]

    # -- external results (other hospitals) ---------------------------------------------------
    def externals(
        self, *, id_no: str | None = None, kind: str | None = None, org_code: str | None = None
    ) -> list[dict]:
        sql, clauses, params = "SELECT kind, id_no, body, patient, created_at FROM externals", [], []
        for column, value in (("id_no", id_no), ("kind", kind), ("org_code", org_code)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id_no, kind, seq"
        return [
            {
                "kind": r["kind"],
                "idNo": r["id_no"],
                "report": json.loads(r["body"]),
                "patient": json.loads(r["patient"]),
                "created_at": r["created_at"],
            }
            for r in self.read().execute(sql, params)
        ]

    def external(self, org_code: str, report_id: str) -> dict | None:
        r = (
            self.read()
            .execute(
                "SELECT kind, id_no, body, patient, created_at FROM externals WHERE org_code = ? AND report_id = ?",
                (org_code, report_id),
            )
            .fetchone()
        )
        if r is None:
            return None
        return {
            "kind": r["kind"],
            "idNo": r["id_no"],
            "report": json.loads(r["body"]),
            "patient": json.loads(r["patient"]),
            "created_at": r["created_at"],
        }

    @staticmethod
    def is_seeded(db: sqlite3.Connection, id_no: str) -> bool:
        return db.execute("SELECT 1 FROM seeded_patients WHERE id_no = ?", (id_no,)).fetchone() is not None

    @staticmethod
    def mark_seeded(db: sqlite3.Connection, id_no: str, name: str, now: str) -> None:
        db.execute(
            "INSERT INTO seeded_patients (id_no, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (id_no, name, now),
        )

    @staticmethod
    def add_external(
        db: sqlite3.Connection,
        *,
        kind: str,
        id_no: str,
        report: dict,
        patient: dict,
        org_code: str,
        report_id: str,
        now: str,
    ) -> None:
        seq = db.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM externals WHERE id_no = ?", (id_no,)
        ).fetchone()[0]
        db.execute(
            "INSERT INTO externals (org_code, report_id, kind, id_no, body, patient, created_at, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org_code, report_id) DO UPDATE SET"
            " kind = excluded.kind, id_no = excluded.id_no, body = excluded.body, patient = excluded.patient",
            (org_code, report_id, kind, id_no, _dumps(report), _dumps(patient), now, seq),
        )

    @staticmethod
    def clear_externals(db: sqlite3.Connection, id_no: str) -> None:
        db.execute("DELETE FROM externals WHERE id_no = ?", (id_no,))

    # -- faults --------------------------------------------------------------------------------
    def faults_row(self) -> tuple[dict, int]:
        row = self.read().execute("SELECT body, generation FROM faults WHERE id = 1").fetchone()
        return (json.loads(row[0]), row[1]) if row else ({}, 0)

    def save_faults(self, body: dict) -> int:
        with self.write() as db:
            row = db.execute(
                "INSERT INTO faults (id, body, generation) VALUES (1, ?, 1) ON CONFLICT (id) DO UPDATE"
                " SET body = excluded.body, generation = generation + 1 RETURNING generation",
                (_dumps(body),),
            ).fetchone()
        return row[0]

    # -- stats ---------------------------------------------------------------------------------
    @staticmethod
    def count(db: sqlite3.Connection, service: str, code: str) -> None:
        db.execute(
            "INSERT INTO stats (service, code, count) VALUES (?, ?, 1)"
            " ON CONFLICT (service, code) DO UPDATE SET count = count + 1",
            (service, code),
        )

    def stats_rows(self) -> list[tuple[str, str, int]]:
        return [tuple(r) for r in self.read().execute("SELECT service, code, count FROM stats ORDER BY 1, 2")]

    # -- feedback ------------------------------------------------------------------------------
    def add_feedback(self, items: list[dict], now: str) -> list[dict]:
        out = []
        with self.write() as db:
            for it in items:
                cur = db.execute(
                    "INSERT INTO feedback (interface, key, field, rule, message, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (it["interface"], it["key"], it["field"], it["rule"], it["message"], now),
                )
                out.append({"id": cur.lastrowid, **it, "created_at": now})
        return out

    def feedback(self, *, interface: str | None = None, since_id: int = 0) -> list[dict]:
        sql = "SELECT id, interface, key, field, rule, message, created_at FROM feedback WHERE id > ?"
        params: list[object] = [since_id]
        if interface:
            sql += " AND interface = ?"
            params.append(interface)
        return [
            {
                "id": r["id"],
                "interface": r["interface"],
                "key": r["key"],
                "field": r["field"],
                "rule": r["rule"],
                "message": r["message"],
                "created_at": r["created_at"],
            }
            for r in self.read().execute(sql + " ORDER BY id", params)
        ]

    # -- reset ---------------------------------------------------------------------------------
    def reset(self, *, keep_faults: bool = False) -> None:
        with self.write() as db:
            for table in (
                "records",
                "externals",
                "seeded_patients",
                "stats",
                "feedback",
                "exchanges",
                "qc_findings",
                "qc_replies",
            ):
                db.execute(f"DELETE FROM {table}")
            if not keep_faults:
                db.execute(
                    "INSERT INTO faults (id, body, generation) VALUES (1, '{}', 1) ON CONFLICT (id) DO UPDATE"
                    " SET body = '{}', generation = generation + 1"
                )


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _record(row: sqlite3.Row) -> dict:
    return {
        "interface": row["interface"],
        "key": row["key"],
        "version": row["version"],
        "payload": json.loads(row["payload"]),
        "voided": bool(row["voided"]),
        "void_info": json.loads(row["void_info"]) if row["void_info"] else None,
        "receipt": row["receipt"],
        "first_received_at": row["first_received_at"],
        "received_at": row["received_at"],
    }


class SqliteNonceCache:
    """The nonce replay cache shared by several worker processes (same interface as
    ``envelope.MemoryNonceCache``): a nonce is new if its row could be inserted."""

    def __init__(self, store: Store, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._purged = 0.0

    def add(self, app_id: str, nonce: str) -> bool:
        now = time.time()
        with self._store.write() as db:
            if now - self._purged > 60:
                db.execute("DELETE FROM nonces WHERE expires < ?", (now,))
                self._purged = now
            db.execute(
                "DELETE FROM nonces WHERE app_id = ? AND nonce = ? AND expires < ?", (app_id, nonce, now)
            )
            cur = db.execute(
                "INSERT INTO nonces (app_id, nonce, expires) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (app_id, nonce, now + self._ttl),
            )
            return cur.rowcount == 1
