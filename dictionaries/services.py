"""Writes of the dictionaries: spreadsheet import (all rows or none) and the demo data set."""

from __future__ import annotations

from dataclasses import dataclass, field

import tablib
from django.db import transaction

from .resources import RESOURCES

FORMATS = {"xlsx": "xlsx", "csv": "csv"}


@dataclass
class RowProblem:
    row: int  # 1-based data row number (the header is row 0; in Excel this is line row + 1)
    messages: list[str]


@dataclass
class ImportReport:
    total: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    imported: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            rows = "、".join(f"第 {p.row} 行" for p in self.problems[:10])
            return f"共 {self.total} 行，{len(self.problems)} 行有误（{rows}），整个文件未导入，请修正后重新导入。"
        return f"共 {self.total} 行：新增 {self.new}，更新 {self.updated}，未变 {self.unchanged}。"


def read_dataset(content: bytes, file_format: str) -> tablib.Dataset:
    if file_format not in FORMATS:
        raise ValueError(f"不支持的文件格式 {file_format}（支持 xlsx、csv）")
    if file_format == "csv":
        text = content.decode("utf-8-sig")
        return tablib.Dataset().load(text, format="csv")
    return tablib.Dataset().load(content, format="xlsx")


def import_file(model, content: bytes, file_format: str, *, user=None) -> ImportReport:
    """Import a spreadsheet into one dictionary: every row, or (if any row is bad) none.

    A dry run first collects every row's problems (unknown codes, value-set violations, missing
    fields); only a clean file is then imported, in one transaction.
    """
    resource = RESOURCES[model]()
    dataset = read_dataset(content, file_format)
    report = ImportReport(total=len(dataset))
    dry = resource.import_data(
        dataset, dry_run=True, raise_errors=False, use_transactions=True, collect_failed_rows=False, user=user
    )
    for number, errors in dry.row_errors():
        report.problems.append(RowProblem(number, [str(e.error) for e in errors]))
    headers = {f.attribute: f.column_name for f in resource.fields.values()}
    for invalid in dry.invalid_rows:
        report.problems.append(
            RowProblem(
                invalid.number,
                [
                    f"{headers.get(k, k)}：{'；'.join(v)}" if k != "__all__" else "；".join(v)
                    for k, v in invalid.error_dict.items()
                ],
            )
        )
    if dry.base_errors:
        report.problems.append(RowProblem(0, [str(e.error) for e in dry.base_errors]))
    report.problems.sort(key=lambda p: p.row)
    if report.problems:
        return report
    with transaction.atomic():
        result = resource.import_data(
            dataset, dry_run=False, raise_errors=True, use_transactions=True, user=user
        )
    totals = result.totals
    report.new, report.updated, report.unchanged = (
        totals.get("new", 0),
        totals.get("update", 0),
        totals.get("skip", 0),
    )
    report.imported = True
    return report
