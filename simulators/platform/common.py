"""Small pieces shared by the simulator's modules: answers, keys, HTTP plumbing."""

from __future__ import annotations

import json
from dataclasses import dataclass

MESSAGES = {
    "0": "成功",
    "2001": "业务校验未通过",
    "2002": "引用的记录在平台上不存在",
    "3001": "请求过于频繁，请稍后重试",
    "5000": "平台内部错误",
}


@dataclass
class Answer:
    """What the platform answers to one protocol request (sealed by the application)."""

    code: str
    message: str = ""
    data: object = None
    counted: bool = False  # stats already written in the handler's own transaction


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def key_string(spec, payload: dict) -> str:
    """The business key as one string, fields joined with ``|`` (``orgCode|reportId``)."""
    return "|".join("" if v is None else str(v) for v in spec.key_of(payload))


def id_no_of(payload: dict) -> str | None:
    patient = payload.get("patient")
    value = patient.get("idNo") if isinstance(patient, dict) else payload.get("idNo")
    return value if isinstance(value, str) and value else None


def digits(value) -> str:
    return "".join(ch for ch in str(value or "") if (ch.isascii() and ch.isdigit()))


def field_error(field: str, rule: str, message: str) -> dict:
    return {"field": field, "rule": rule, "message": message}


# -- HTTP plumbing -----------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


def status_line(status: int) -> str:
    return f"{status} {_REASONS.get(status, 'Unknown')}"


def json_response(status: int, obj) -> tuple[int, list, bytes]:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return status, [("Content-Type", "application/json; charset=utf-8")], body


def html_response(status: int, text: str) -> tuple[int, list, bytes]:
    return status, [("Content-Type", "text/html; charset=utf-8")], text.encode("utf-8")


MAX_BODY = 64 * 1024 * 1024


def read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise HttpError(400, "请求体过大")
    stream = environ["wsgi.input"]
    return stream.read(length) if length > 0 else stream.read()


def read_json(environ, default=None):
    body = read_body(environ)
    if not body.strip():
        if default is not None:
            return default
        raise HttpError(400, "请求体为空，需要 JSON")
    try:
        return json.loads(body)
    except ValueError:
        raise HttpError(400, "请求体不是合法的 JSON") from None
