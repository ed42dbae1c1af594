"""The read-only connection to the HIS database (alias ``his``) for the view puller.

Hospitals often expose their records as database views rather than calling an API. The puller
reads them through this connection, which is read-only three times over:

1. it is not in ``settings.DATABASES``: a private connection handler built from
   ``HIS_DATABASE_URL`` (or ``settings.EMR_PULL["DATABASE_URL"]``), so no model, migration or
   ``.using()`` of the ORM can reach it (if an operator does add ``DATABASES["his"]``, it is used,
   and ``emr_sharing.routers.HisReadOnlyRouter`` keeps the ORM away from it);
2. the session itself is read-only: PostgreSQL ``default_transaction_read_only=on`` (MySQL
   ``SET SESSION TRANSACTION READ ONLY``, SQLite ``mode=ro``); the database refuses any write;
3. an execute wrapper refuses every statement that is not a SELECT (or WITH/SHOW/EXPLAIN)
   before it leaves this process.

Give the HIS account SELECT on the views and nothing else as well.
"""

from __future__ import annotations

import functools
import re

import dj_database_url
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.utils import ConnectionHandler

from .conf import pull_settings

ALIAS = "his"
_READ_STATEMENT = re.compile(
    r"^\s*(SELECT|WITH|SHOW|EXPLAIN|SET\s+(SESSION\s+)?TRANSACTION\s+READ\s+ONLY)\b", re.IGNORECASE
)


class WriteRefused(PermissionError):
    """A statement other than a read was about to be sent to the HIS database."""


def read_only_guard(execute, sql, params, many, context):
    if not _READ_STATEMENT.match(sql or "") or ";" in (sql or "").strip().rstrip(";"):
        raise WriteRefused(f"HIS 数据库连接只读，拒绝执行：{(sql or '').strip()[:80]}")
    return execute(sql, params, many, context)


def database_settings(url: str) -> dict:
    """Django database settings for the HIS URL, with the session forced read-only."""
    cfg = dj_database_url.parse(url, conn_max_age=0)
    engine = cfg["ENGINE"]
    options = dict(cfg.get("OPTIONS") or {})
    if engine.endswith("postgresql"):
        options["options"] = f"{options.get('options', '')} -c default_transaction_read_only=on".strip()
    elif engine.endswith("mysql"):
        options["init_command"] = "SET SESSION TRANSACTION READ ONLY"
    elif engine.endswith("sqlite3"):
        cfg["NAME"] = f"file:{cfg['NAME']}?mode=ro"
        options["uri"] = True
    else:
        raise ImproperlyConfigured(
            f"HIS 数据库类型 {engine} 暂不支持只读会话；请使用只读账号并补充此处的只读设置"
        )
    cfg["OPTIONS"] = options
    return cfg


@functools.lru_cache(maxsize=4)
def _handler(url: str) -> ConnectionHandler:
    # A private handler: Django's ConnectionHandler insists on a "default" alias, so this one's
    # default is the HIS too (never used). Connections are per thread, like Django's own.
    cfg = database_settings(url)
    return ConnectionHandler({"default": dict(cfg), ALIAS: cfg})


def his_connection():
    """The HIS connection of this thread, read-only (see the module docstring)."""
    if ALIAS in settings.DATABASES:
        conn = connections[ALIAS]
    else:
        url = pull_settings()["DATABASE_URL"]
        if not url:
            raise ImproperlyConfigured("未配置 HIS 数据库：请设置环境变量 HIS_DATABASE_URL")
        conn = _handler(url)[ALIAS]
    if read_only_guard not in conn.execute_wrappers:
        conn.execute_wrappers.append(read_only_guard)
    return conn


def configured() -> bool:
    return ALIAS in settings.DATABASES or bool(pull_settings()["DATABASE_URL"])
