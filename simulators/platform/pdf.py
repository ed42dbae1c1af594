"""Small, valid PDF renderings of lab reports (what LAB_REPORT_PDF_PREVIEW returns for reports
the platform only holds as data). Chinese text uses the CID font STSong-Light, which every PDF
reader ships, so nothing is embedded and a report is a few KiB."""

from __future__ import annotations

import io
import threading

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
_registered = False
_lock = threading.Lock()


def _font() -> str:
    global _registered
    if not _registered:
        with _lock:
            if not _registered:
                pdfmetrics.registerFont(UnicodeCIDFont(FONT))
                _registered = True
    return FONT


def _fmt_dt(s: str) -> str:
    s = str(s or "")
    if len(s) >= 12 and (s[:12].isascii() and s[:12].isdigit()):
        return f"{s[0:4]}-{s[4:6]}-{s[6:8]} {s[8:10]}:{s[10:12]}"
    return s


def lab_report_pdf(*, org_name: str, report: dict, patient: dict) -> bytes:
    """One A4 page: header, patient block, result table with flags, footer."""
    font = _font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)  # invariant: same input, same bytes
    c.setTitle(f"{org_name} {report.get('reportTitle', '检验报告')}")
    c.setAuthor("市平台模拟器")
    width, height = A4
    y = height - 60
    c.setFont(font, 16)
    c.drawCentredString(width / 2, y, org_name)
    y -= 24
    c.setFont(font, 13)
    c.drawCentredString(width / 2, y, f"检验报告单 · {report.get('reportTitle', '')}")
    y -= 28
    c.setFont(font, 10)
    sex = patient.get("sexName", "")
    lines = [
        f"姓名：{patient.get('name', '')}    性别：{sex}    证件号：{patient.get('idNoMasked', '')}",
        f"报告单号：{report.get('reportId', '')}    标本：{report.get('specimenTypeName', '')}",
        f"采样时间：{_fmt_dt(report.get('sampleDateTime', ''))}    报告时间：{_fmt_dt(report.get('reportDateTime', ''))}",
    ]
    for line in lines:
        c.drawString(50, y, line)
        y -= 16
    y -= 4
    c.line(50, y, width - 50, y)
    y -= 18
    cols = (50, 80, 230, 320, 360, 430, 500)
    for x, title in zip(cols, ("序号", "项目", "结果", "标识", "单位", "参考区间", "互认"), strict=True):
        c.drawString(x, y, title)
    y -= 6
    c.line(50, y, width - 50, y)
    y -= 16
    for item in report.get("items", []):
        flag = {"H": "↑", "L": "↓", "HH": "↑↑", "LL": "↓↓", "P": "阳性"}.get(
            item.get("abnormalFlagCode", ""), ""
        )
        row = (
            str(item.get("itemNo", "")),
            item.get("itemName", ""),
            str(item.get("resultValue", "")),
            flag,
            item.get("unit", ""),
            item.get("referenceRange", ""),
            item.get("recognitionMark", ""),
        )
        for x, text in zip(cols, row, strict=True):
            c.drawString(x, y, str(text)[:24])
        y -= 16
        if y < 90:
            c.showPage()
            c.setFont(font, 10)
            y = height - 60
    c.line(50, y, width - 50, y)
    c.setFont(font, 8)
    c.drawString(
        50,
        50,
        "本报告由市检查检验结果互认平台模拟器生成，仅供联调测试。标注HR的项目为北京市检验结果互认项目。",
    )
    c.showPage()
    c.save()
    return buf.getvalue()
