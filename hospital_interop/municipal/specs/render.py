"""Text renderers of the catalogue for ``manage.py specs`` (list, show, check, example).

The web catalogue (``/interfaces/``, :mod:`hospital_interop.catalogue_views`) renders the same
objects through templates; these functions are the terminal's view of them.
"""

from __future__ import annotations

import json
from pathlib import Path

from .loader import Catalogue, FieldSpec, InterfaceSpec, load_catalogue
from .validate import Errors


def catalogue_table(catalogue: Catalogue | None = None) -> str:
    """``specs list``: one row per interface of the current document versions."""
    catalogue = catalogue or load_catalogue()
    header = ("document", "version", "section", "code", "kind", "path", "key", "fields")
    rows = [header]
    for d in catalogue.current.values():
        for s in d.interfaces:
            rows.append(
                (
                    s.document,
                    s.version,
                    s.section,
                    s.code,
                    s.kind,
                    s.path,
                    ",".join(s.key) or "-",
                    str(s.field_count()),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cond_text(cond: dict[str, tuple]) -> str:
    return ", ".join(
        f"{k}={'|'.join(json.dumps(v, ensure_ascii=False) for v in values)}" for k, values in cond.items()
    )


def _tree_lines(fields: dict[str, FieldSpec], depth: int) -> list[str]:
    lines = []
    for f in fields.values():
        flags = "必填" if f.required else ("条件必填" if f.required_when else "可选")
        extra = []
        if f.value_set is not None:
            extra.append(f"值域 {f.value_set.id}" + ("（子集）" if f.value_set.subset else ""))
        if f.name_field:
            extra.append(f"名称字段 {f.name_field}")
        if f.format:
            extra.append(f"格式 {f.format}" + (f" 当 {_cond_text(f.when)}" if f.when else ""))
        if f.required_when:
            extra.append(f"当 {_cond_text(f.required_when)} 时必填")
        if f.min_items:
            extra.append(f"至少{f.min_items}项")
        if f.de:
            extra.append(f.de)
        lines.append(
            f"{'  ' * depth}{f.name}  {f.title}  {f.type_label()}  {flags}"
            + (f"  [{'; '.join(extra)}]" if extra else "")
        )
        if f.fields:
            lines.extend(_tree_lines(f.fields, depth + 1))
        elif f.items is not None and f.items.fields:
            lines.extend(_tree_lines(f.items.fields, depth + 1))
    return lines


def field_tree(spec: InterfaceSpec) -> str:
    """``specs show CODE``: the interface's head (path, key, ordering) and its field trees."""
    head = [
        f"{spec.code}  {spec.name}",
        f"文档 {spec.document} {spec.version} §{spec.section}  路径 {spec.path}  类型 {spec.kind}"
        f"  主键 {', '.join(spec.key) or '-'}",
    ]
    if spec.parents:
        head.append("前置 " + "; ".join(f"{p.interface} {p.match}" for p in spec.parents))
    if spec.voids:
        head.append("作废 " + ", ".join(spec.voids))
    lines = [*head, "", "请求 request:", *_tree_lines(spec.request.fields, 1)]
    if spec.response is not None:
        lines += ["", "应答 response:", *_tree_lines(spec.response.fields, 1)]
    return "\n".join(lines)


def format_errors(errors: Errors) -> str:
    """Validation errors as aligned columns: field, rule, message."""
    if not errors:
        return ""
    width = max(len(e["field"]) for e in errors)
    rule_width = max(len(e["rule"]) for e in errors)
    return "\n".join(
        f"{e['field'].ljust(width)}  {e['rule'].ljust(rule_width)}  {e['message']}" for e in errors
    )


def check_payload_file(file: str | Path, code: str, catalogue: Catalogue | None = None) -> tuple[int, str]:
    """``specs check FILE``: validate a JSON payload file against an interface.

    Returns (exit status, text to print)."""
    catalogue = catalogue or load_catalogue()
    spec = catalogue.interface(code)
    try:
        payload = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return 1, f"无法读取JSON文件 (cannot read JSON): {exc}"
    errors = spec.validate(payload)
    if errors:
        return 1, format_errors(errors) + f"\n\n{len(errors)} 处错误 (errors) — {spec.code}"
    return 0, f"校验通过 (valid) — {spec.code}"


def example_json(code: str, seed: int = 0, catalogue: Catalogue | None = None, response: bool = False) -> str:
    """``specs example CODE``: the example request (or response data) of ``seed`` as indented JSON."""
    catalogue = catalogue or load_catalogue()
    spec = catalogue.interface(code)
    data = spec.response_example(seed) if response else spec.example(seed)
    return json.dumps(data, ensure_ascii=False, indent=2)
