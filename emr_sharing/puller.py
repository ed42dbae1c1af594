"""HIS view puller: read new rows of read-only HIS database views and submit them as EMR records.

Configuration is data, a YAML file (``HIS``/``EMR_PULL_SOURCES_FILE``, example in
docs/emr-intake.md)::

    source: HIS                          # outbox source of the records (default his-view)
    sources:
      - name: op-registration            # unique; the high-water mark is kept under this name
        view: his_emr.v_op_registration  # [schema.]view, read with SELECT only
        recordType: op-registration      # EMR record type (mappings/record_types.yaml)
        cursor: [updated_at, reg_id]     # columns that only grow: rows after the mark are new
        columns: {reg_id: registrationId}   # optional: column -> intake field path
        ignore: [his_internal_flag]      # optional: columns that are not record fields
        batchSize: 500                   # optional

A column becomes the intake field of the same name (``registrationId``, or ``"patient.name"``),
else its snake_case name in camelCase with ``__`` nesting (``patient__id_no`` → ``patient.idNo``).
Cursor columns that are not fields are dropped. Values are converted after the field's spec type:
dates to yyyyMMdd, timestamps to yyyyMMddHHmmss in local time, numerics to JSON numbers, JSON
columns to arrays/objects, bytes to Base64.

Each batch is one local transaction: valid rows go through ``services.store`` (idempotent by
key: an unchanged row is skipped), invalid rows are kept as ``PullIssue`` with their errors, and
the source's high-water mark (``PullCursor``) moves past the batch. A row the HIS corrects later
has a new cursor value and is read again. The HIS connection is read-only (``his.py``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from hospital_interop.municipal.specs import FieldSpec
from hospital_interop.patients.services import PatientConflict

from . import services
from .conf import pull_settings
from .his import his_connection
from .mapping import Node, RecordType, record_types
from .models import PullCursor, PullIssue

log = logging.getLogger(__name__)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
SOURCE_ATTRS = frozenset({"name", "view", "recordType", "cursor", "columns", "ignore", "batchSize"})
MAX_BATCHES_PER_RUN = 200
LOCK_KEY = "emr_sharing:pull-lock"


@dataclass
class Source:
    name: str
    view: str
    record_type: RecordType
    cursor: list[str]
    columns: dict[str, str] = field(default_factory=dict)
    ignore: set[str] = field(default_factory=set)
    batch_size: int = 500


@dataclass
class PullResult:
    source: str
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    rejected: int = 0
    error: str = ""


def load_sources(file: str | Path | None = None) -> tuple[str, list[Source]]:
    """(outbox source code, sources) from the YAML file."""
    conf = pull_settings()
    path = Path(file or conf["SOURCES_FILE"] or "")
    if not str(file or conf["SOURCES_FILE"] or ""):
        raise ImproperlyConfigured("未配置视图拉取文件：请设置环境变量 EMR_PULL_SOURCES_FILE")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ImproperlyConfigured(f"无法读取视图拉取文件 {path}：{exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list):
        raise ImproperlyConfigured(f"{path}: 应为 {{source: ..., sources: [...]}}")
    sources, names = [], set()
    for n, item in enumerate(raw["sources"]):
        where = f"{path}: sources[{n}]"
        if (
            not isinstance(item, dict)
            or set(item) - SOURCE_ATTRS
            or not {"name", "view", "recordType", "cursor"} <= set(item)
        ):
            raise ImproperlyConfigured(
                f"{where}: 需要 name、view、recordType、cursor（可选 {sorted(SOURCE_ATTRS)}）"
            )
        if item["name"] in names:
            raise ImproperlyConfigured(f"{where}: name {item['name']!r} 重复")
        names.add(item["name"])
        parts = str(item["view"]).split(".")
        cursor = item["cursor"] if isinstance(item["cursor"], list) else [item["cursor"]]
        for ident in [*parts, *cursor]:
            if not isinstance(ident, str) or not _IDENT.match(ident):
                raise ImproperlyConfigured(f"{where}: 标识符 {ident!r} 不合法")
        try:
            rt = record_types().get(item["recordType"])
        except KeyError:
            raise ImproperlyConfigured(f"{where}: 未知的记录类型 {item['recordType']!r}") from None
        sources.append(
            Source(
                name=item["name"],
                view=item["view"],
                record_type=rt,
                cursor=cursor,
                columns=dict(item.get("columns") or {}),
                ignore=set(item.get("ignore") or []),
                batch_size=int(item.get("batchSize") or conf["BATCH_SIZE"]),
            )
        )
    return str(raw.get("source") or "his-view"), sources


# --------------------------------------------------------------------------- rows -> records


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _field_at(rt: RecordType, path: str) -> FieldSpec | None:
    node: Node | None = rt.root
    f = None
    for part in path.split("."):
        if node is None:
            return None
        platform = node.to_platform.get(part)
        if platform is None:
            return None
        f = node.fields[platform]
        node = node.children.get(platform)
    return f


def column_paths(source: Source, columns: list[str]) -> dict[str, str | None]:
    """column -> intake field path (None: dropped)."""
    out = {}
    for column in columns:
        if column in source.columns:
            out[column] = source.columns[column]
        elif column in source.ignore:
            out[column] = None
        elif _field_at(source.record_type, column) is not None:
            out[column] = column
        else:
            guess = ".".join(_camel(part) for part in column.split("__"))
            if _field_at(source.record_type, guess) is not None:
                out[column] = guess
            else:
                out[column] = None if column in source.cursor else column
    return out


def convert(value: Any, f: FieldSpec | None) -> Any:
    """A database value as the JSON value the field's spec type expects."""
    t = f.type if f is not None else None
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii") if t in (None, "file") else value.decode("utf-8")
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return f"{value:%Y%m%d}" if t == "date" else f"{value:%Y%m%d%H%M%S}"
    if isinstance(value, dt.date):
        return f"{value:%Y%m%d}000000" if t == "datetime" else f"{value:%Y%m%d}"
    if isinstance(value, Decimal):
        if t in ("string", "code"):
            return str(value)
        if t == "integer" and value == value.to_integral_value():
            return int(value)
        return float(value)
    if t == "boolean" and f is not None:
        flag = bool(value) if isinstance(value, (bool, int)) else value
        if isinstance(flag, bool) and f.boolean_encoding == "TF":
            return "T" if flag else "F"
        return flag
    if t in ("string", "code") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if t in ("object", "array") and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def row_to_record(source: Source, paths: dict[str, str | None], row: dict) -> dict:
    record: dict = {}
    for column, value in row.items():
        path = paths.get(column)
        if path is None or value is None:
            continue
        *parents, leaf = path.split(".")
        holder = record
        for part in parents:
            holder = holder.setdefault(part, {})
        holder[leaf] = convert(value, _field_at(source.record_type, path))
    return record


# --------------------------------------------------------------------------- positions


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag == "$datetime":
            return dt.datetime.fromisoformat(text)
        if tag == "$date":
            return dt.date.fromisoformat(text)
        if tag == "$decimal":
            return Decimal(text)
    return value


# --------------------------------------------------------------------------- pulling


def _select(conn, source: Source, position: list | None) -> tuple[str, list]:
    q = conn.ops.quote_name
    view = ".".join(q(p) for p in source.view.split("."))
    cols = [q(c) for c in source.cursor]
    sql, params = f"SELECT * FROM {view}", []
    if position is not None:
        if len(cols) == 1:
            sql += f" WHERE {cols[0]} > %s"
        else:
            sql += f" WHERE ({', '.join(cols)}) > ({', '.join(['%s'] * len(cols))})"
        params = [_decode(v) for v in position]
    sql += f" ORDER BY {', '.join(cols)} LIMIT %s"
    return sql, [*params, source.batch_size]


def pull_source(source: Source, *, system: str) -> PullResult:
    """Read every new row of one view (bounded per run) and submit it."""
    result = PullResult(source.name)
    cursor_row, _ = PullCursor.objects.get_or_create(source=source.name, defaults={"view": source.view})
    position = cursor_row.position
    conn = his_connection()
    now = timezone.now()
    try:
        for _ in range(MAX_BATCHES_PER_RUN):
            sql, params = _select(conn, source, position)
            with conn.cursor() as cur:
                cur.execute(sql, params)
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            conn.close_if_unusable_or_obsolete()
            if not rows:
                break
            paths = column_paths(source, names)
            missing = [c for c in source.cursor if c not in names]
            if missing:
                raise ImproperlyConfigured(f"视图 {source.view} 没有游标列 {', '.join(missing)}")
            prepared, issues, marks = [], [], {}
            for row in rows:
                p, errors = services.prepare(source.record_type, row_to_record(source, paths, row))
                mark = [_encode(row[c]) for c in source.cursor]
                if errors:
                    issues.append(
                        PullIssue(
                            source=source.name,
                            record_type=source.record_type.slug,
                            position=mark,
                            errors=errors,
                        )
                    )
                else:
                    prepared.append(p)
                    marks[id(p)] = mark
            position = [_encode(rows[-1][c]) for c in source.cursor]
            while True:
                try:
                    with transaction.atomic():
                        stored = services.store(prepared, source=system)
                        PullIssue.objects.bulk_create(issues)
                        created = sum(1 for s in stored if s.created)
                        PullCursor.objects.filter(pk=cursor_row.pk).update(
                            position=position,
                            view=source.view,
                            last_run_at=now,
                            last_success_at=timezone.now(),
                            last_error="",
                            rows_read=cursor_row.rows_read + result.rows + len(rows),
                            records_created=cursor_row.records_created + result.created + created,
                            rows_rejected=cursor_row.rows_rejected + result.rejected + len(issues),
                        )
                    break
                except (
                    PatientConflict
                ) as exc:  # rows naming another patient's visit become issues; the rest load
                    exc.record()
                    rejected = {id(p) for p, _ in exc.rejected}
                    issues += [
                        PullIssue(
                            source=source.name,
                            record_type=source.record_type.slug,
                            position=marks[id(p)],
                            errors=errors,
                        )
                        for p, errors in exc.rejected
                    ]
                    prepared = [p for p in prepared if id(p) not in rejected]
            result.rows += len(rows)
            result.created += created
            result.unchanged += len(stored) - created
            result.rejected += len(issues)
            if len(rows) < source.batch_size:
                break
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        PullCursor.objects.filter(pk=cursor_row.pk).update(last_run_at=now, last_error=result.error[:2000])
        log.exception("pull of %s failed", source.name)
    else:
        PullCursor.objects.filter(pk=cursor_row.pk).update(last_run_at=now, last_success_at=timezone.now())
    return result


def pull_all(file: str | Path | None = None, *, only: str | None = None) -> list[PullResult]:
    """One run over every configured source (or one). Skipped if another run holds the lock."""
    system, sources = load_sources(file)
    if only:
        sources = [s for s in sources if s.name == only]
        if not sources:
            raise ImproperlyConfigured(f"没有名为 {only} 的拉取源")
    if not cache.add(LOCK_KEY, "1", timeout=max(pull_settings()["INTERVAL_SECONDS"] * 4, 600)):
        log.info("another pull run is in progress; skipped")
        return []
    try:
        return [pull_source(s, system=system) for s in sources]
    finally:
        cache.delete(LOCK_KEY)
