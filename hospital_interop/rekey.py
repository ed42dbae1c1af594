"""Re-seal what is stored under older data keys with the current one (``manage.py rotate_data_key``).

Columns are worked through in primary-key order, one batch per short transaction: each value is
opened and sealed again in Python, then written only if it is still the bytes that were read (a
compare-and-swap ``UPDATE … WHERE pk = %s AND col = %s``). No lock is held between batches and no
row is held while a value is being processed, so the delivery workers go on meanwhile; a value
changed in between (a fix and re-drive) is already under the current key. Stopped at any point,
the next run carries on: it only looks at values whose header names another key.

Files in the folders apps register (``atrest.register_sealed_folders``) are re-sealed the same way,
each replaced atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection, transaction

from . import atrest
from .filemodes import write_private


@dataclass
class Outcome:
    resealed: int = 0
    broken: list[str] = field(default_factory=list)  # "table #pk" / file paths that do not open


def _sql(f: atrest.SealedField) -> tuple[str, str, str]:
    qn = connection.ops.quote_name
    return qn(f.model._meta.db_table), qn(f.column), qn(f.model._meta.pk.column)


def pending(f: atrest.SealedField, key_id: str) -> int:
    """How many values of this column are not sealed under ``key_id``."""
    table, col, _ = _sql(f)
    prefix = atrest.header_for(key_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL AND substr({col}, 1, %s) <> %s",
            [len(prefix), connection.Database.Binary(prefix)],
        )
        return cursor.fetchone()[0]


def usage(f: atrest.SealedField) -> dict[str, int]:
    """Values of this column per key id ('?' for a value with no sealed header)."""
    table, col, _ = _sql(f)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT substr({col}, 1, %s), count(*) FROM {table} WHERE {col} IS NOT NULL GROUP BY 1",
            [atrest.HEADER],
        )
        return {atrest.key_id_of(bytes(h)) or "?": n for h, n in cursor.fetchall()}


def reseal_column(
    f: atrest.SealedField,
    key_id: str,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] = lambda n: None,
    outcome: Outcome | None = None,
) -> Outcome:
    """Seal every value of this column not under ``key_id`` again under it, batch by batch."""
    outcome = outcome or Outcome()
    table, col, pk = _sql(f)
    prefix = atrest.header_for(key_id)
    binary = connection.Database.Binary
    select = (
        f"SELECT {pk}, {col} FROM {table} WHERE {pk} > %s AND {col} IS NOT NULL "
        f"AND substr({col}, 1, %s) <> %s ORDER BY {pk} LIMIT %s"
    )
    update = f"UPDATE {table} SET {col} = %s WHERE {pk} = %s AND {col} = %s"
    last = 0  # the sealed tables have integer keys from 1
    while True:
        with connection.cursor() as cursor:
            cursor.execute(select, [last, len(prefix), binary(prefix), batch_size])
            rows = cursor.fetchall()
        if not rows:
            return outcome
        changes = []
        for pk_value, raw in rows:
            raw = bytes(raw)
            try:
                data = atrest.unseal(raw, f.purpose)
            except atrest.SealBroken:
                outcome.broken.append(f"{f.model._meta.label}.{f.name} #{pk_value}")
                continue
            changes.append((binary(atrest.seal(data, f.purpose, key_id=key_id)), pk_value, binary(raw)))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(update, changes)
        outcome.resealed += len(changes)
        last = rows[-1][0]
        progress(len(rows))


def sealed_files() -> list[Path]:
    return sorted(
        p
        for folder in atrest.sealed_folders()
        if folder.is_dir()
        for p in folder.rglob(f"*{atrest.SEALED_SUFFIX}")
    )


def files_pending(key_id: str) -> list[Path]:
    """The sealed files whose header names another key."""
    found = []
    for path in sealed_files():
        try:
            with path.open("rb") as fh:
                head = fh.read(atrest.HEADER)
        except FileNotFoundError:  # moved back to the drop folder meanwhile
            continue
        if atrest.key_id_of(head) != key_id:
            found.append(path)
    return found


def reseal_files(
    paths: list[Path],
    key_id: str,
    *,
    progress: Callable[[int], None] = lambda n: None,
    outcome: Outcome | None = None,
) -> Outcome:
    outcome = outcome or Outcome()
    for path in paths:
        try:
            data = atrest.read_sealed_file(path)
        except FileNotFoundError:
            progress(1)
            continue
        except atrest.SealBroken:
            outcome.broken.append(str(path))
            progress(1)
            continue
        write_private(path.parent, path.name, atrest.seal(data, atrest.FILE_PURPOSE, key_id=key_id))
        outcome.resealed += 1
        progress(1)
    return outcome
