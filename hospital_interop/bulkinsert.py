"""Many rows in one INSERT without the ORM's SQL compilation per value.

``bulk_create`` compiles every value of every row into SQL, which cost a backfill's batches of
1,000 more than PostgreSQL's work (docs/scaling.md), and enqueue's patient bindings a fifth of
its CPU (issue 19). Here each field prepares its value as it would for the ORM (``pre_save``,
``get_db_prep_save``: defaults, auto_now, sealing at rest), and psycopg2's ``execute_values``
sends one INSERT per 1,000 rows. Small batches, and databases other than PostgreSQL, keep
``bulk_create``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models, transaction

SMALL = 50  # fewer rows than this go through bulk_create (its compilation costs little there)


def insert(model, objs: list, *, ignore_conflicts: bool = False) -> None:
    """``model.objects.bulk_create(objs, ignore_conflicts=…)``, faster. The new ids are set on the
    objects in row order (as bulk_create assumes too), except with ``ignore_conflicts``: then, as
    with bulk_create on PostgreSQL, a row that conflicted is skipped and no id is set."""
    conn = transaction.get_connection()  # the connection itself: the proxy's attribute look-ups add up
    if len(objs) < SMALL or conn.vendor != "postgresql":
        model.objects.bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    from psycopg2.extras import execute_values

    meta, quote = model._meta, conn.ops.quote_name
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    sql = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES %s " + (
        "ON CONFLICT DO NOTHING" if ignore_conflicts else f"RETURNING {quote(meta.pk.column)}"
    )
    prep = [_column_value(f, conn) for f in fields]
    rows = [tuple(p(obj) for p in prep) for obj in objs]
    with conn.cursor() as cursor:
        ids = execute_values(cursor.cursor, sql, rows, page_size=1000, fetch=not ignore_conflicts)
    if ignore_conflicts:
        return
    for obj, (pk,) in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, conn.alias


_PLAIN_COLUMNS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField)


def _column_value(f, conn) -> Callable:
    """obj -> the value to insert for field f: the attribute itself where psycopg2 adapts it as the
    ORM would (text, numbers, booleans of the right type); otherwise the field's own preparation."""
    attname = f.attname
    if isinstance(f, _PLAIN_COLUMNS) and type(f).get_db_prep_save is models.Field.get_db_prep_save:
        types = (str,) if isinstance(f, (models.CharField, models.TextField)) else (int, bool)

        def value(obj):
            v = obj.__dict__[attname]
            return v if v is None or isinstance(v, types) else f.get_db_prep_save(f.pre_save(obj, True), conn)

        return value
    return lambda obj: f.get_db_prep_save(f.pre_save(obj, True), conn)
