"""The lab report PDF (检验报告单), rendered with reportlab.

A4 portrait: hospital header with the report title and, when the report holds recognition items,
the "HR" mark; the patient and specimen block; the results table (item, result with ↑/↓, unit,
reference range, method, HR beside recognised items); the remark line; accepted external results
and non-recognition information when there are any; the signature block (tester, reviewer,
electronic signature of this version: version, certificate serial, SM3 of the signed text, and
"含可信时间戳" only when the timestamp token was verified); page footer.

Font: WenQuanYi Micro Hei embedded (subset) when the Debian package ``fonts-wqy-microhei`` is
installed, else the CID font STSong-Light (no embedding; every PDF reader ships it). Both give
text that ``pdftotext`` extracts. Output is deterministic (``invariant``): the same content gives
the same bytes, so a re-archived report has the same SM3.
"""

from __future__ import annotations

import functools
import io
import threading
import zlib
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.rl_accel import fp_str
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from hospital_interop.municipal.specs import load_catalogue

from .payloads import Mapped, patient_facts, report_day

FONT_FILES = (  # after settings.LAB_PDF_FONT
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
CID_FONT = "STSong-Light"
BLUE = colors.HexColor("#1f4e8c")
RED = colors.HexColor("#b3261e")
GREY = colors.HexColor("#5f6b7a")
LINE = colors.HexColor("#9aa7b8")
ARROWS = {"H": "↑", "HH": "↑↑", "L": "↓", "LL": "↓↓", "P": "阳性", "A": "异常"}
PAGE_W, PAGE_H = A4
MARGIN = 14 * mm

_lock = threading.Lock()
_font: str | None = None


def font_name() -> str:
    """Register the report font once per process; the embedded TTF when available."""
    global _font
    if _font is None:
        with _lock:
            if _font is None:
                for path in (settings.LAB_PDF_FONT, *FONT_FILES):
                    if path and Path(path).exists():
                        try:
                            ttf = TTFont("LabCJK", path, subfontIndex=0)
                            _cache_subsets(ttf)
                            pdfmetrics.registerFont(ttf)
                            _font = "LabCJK"
                            break
                        except Exception:  # unreadable font file: try the next one
                            continue
                if _font is None:
                    pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
                    _font = CID_FONT
    return _font


SUBSET_CACHE_SIZE = 128  # distinct glyph subsets kept (a subset font file is 10-100 KiB)


def _cache_subsets(font: TTFont) -> None:
    """Memoise the embedded font's subsetting, by far the costliest step of saving a report.

    reportlab builds the subset TrueType file (``face.makeSubset(codes)``) anew for every PDF,
    although reports draw from a small set of glyph subsets (the same labels, digits and item
    names in the same first-use order). The subset file is a pure function of the font file and
    the ordered code list, so a cached one is byte-identical: same PDF bytes, same SM3."""
    face = font.face
    make = face.makeSubset
    cached = functools.lru_cache(maxsize=SUBSET_CACHE_SIZE)(lambda codes: make(list(codes)))
    face.makeSubset = lambda subset: cached(tuple(subset))

    # Compressing the subset font file (~50 KiB) was the next costliest step: the same bytes give
    # the same deflate stream, so that is memoised too (zlib.compress at its default level, as
    # reportlab's own filter does: identical bytes).
    flate = _MemoFlate()
    add_objects = face.addSubsetObjects

    def add_subset_objects(doc, fontname, subset):
        ref = add_objects(doc, fontname, subset)
        stream = doc.idToObject.get(f"fontFile:{face.filename}({fontname})")
        if stream is not None and stream.filters == [pdfdoc.PDFZCompress]:
            stream.filters = [flate]
        return ref

    face.addSubsetObjects = add_subset_objects


class _MemoFlate:
    """reportlab's FlateDecode filter (``pdfdoc.PDFZCompress``) with a cache of its results."""

    pdfname = pdfdoc.PDFZCompress.pdfname

    def __init__(self) -> None:
        self._compress = functools.lru_cache(maxsize=SUBSET_CACHE_SIZE)(zlib.compress)

    def encode(self, content) -> bytes:
        if isinstance(content, str):
            content = content.encode("utf8")
        return self._compress(content)


def _dt(value: str | None, seconds: bool = False) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _mask_id(id_no: str) -> str:
    return id_no[:6] + "*" * max(len(id_no) - 10, 0) + id_no[-4:] if len(id_no) > 10 else id_no


@functools.lru_cache(maxsize=4)
def _styles(font: str) -> _Styles:
    """The paragraph styles, built once per font (reportlab only reads them)."""
    return _Styles(font)


class _Styles:
    def __init__(self, font: str):
        self.font = font
        self.title = ParagraphStyle(
            "title", fontName=font, fontSize=17, leading=22, alignment=TA_CENTER, textColor=BLUE
        )
        self.subtitle = ParagraphStyle(
            "subtitle", fontName=font, fontSize=13, leading=17, alignment=TA_CENTER
        )
        self.label = ParagraphStyle("label", fontName=font, fontSize=8.2, leading=10.5, textColor=GREY)
        self.value = ParagraphStyle("value", fontName=font, fontSize=9, leading=11.5)
        self.cell = ParagraphStyle("cell", fontName=font, fontSize=8.6, leading=10.5)
        self.small = ParagraphStyle("small", fontName=font, fontSize=8, leading=10.5, textColor=GREY)
        self.remark = ParagraphStyle("remark", fontName=font, fontSize=8.6, leading=11.5, alignment=TA_LEFT)
        self.section = ParagraphStyle("section", fontName=font, fontSize=9.5, leading=13, textColor=BLUE)


def _esc(text) -> str:
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def printed_sex_age(content: dict) -> tuple[str, str]:
    """Sex and age as the report prints them (sex from the code, else from the resident ID)."""
    patient = patient_facts(content.get("patient") or {}, report_day(content))
    sex = {"1": "男", "2": "女"}.get(patient["sexCode"], "")
    years = patient.get("ageYears")
    return sex, f"{years}岁" if years is not None else ""


def printed_specimen_type(content: dict) -> str:
    return (
        load_catalogue()
        .value_set("SPECIMEN_TYPE")
        .name_of((content.get("specimen") or {}).get("typeCode") or "")
        or ""
    )


def _patient_block(m: Mapped, st: _Styles) -> _Grid:
    c = m.content
    p, v, s = c.get("patient") or {}, c.get("visit") or {}, c.get("specimen") or {}
    sex, age = printed_sex_age(c)
    ptype = load_catalogue().value_set("PATIENT_TYPE").name_of(v.get("patientTypeCode") or "") or ""
    no_label, no_value = (
        ("住院号", v.get("inpatientNo"))
        if v.get("patientTypeCode") == "3"
        else ("门诊号", v.get("outpatientNo"))
    )
    specimen = printed_specimen_type(c)
    diag = " ".join(
        x
        for x in (
            c.get("clinicalDiagnosisName"),
            f"({c['clinicalDiagnosisCode']})" if c.get("clinicalDiagnosisCode") else "",
        )
        if x
    )
    cells = [
        ("姓名", p.get("name")),
        ("性别", sex),
        ("年龄", age),
        ("病人类型", ptype),
        (no_label, no_value),
        ("申请科室", m.request_dept[1] or c.get("requestDept")),
        ("申请医师", m.request_doctor[1] or c.get("requestDoctor")),
        ("标本类型", specimen),
        ("标本号", s.get("specimenNo")),
        ("采样时间", _dt(s.get("sampledAt"))),
        ("接收时间", _dt(s.get("receivedAt"))),
        ("证件号", _mask_id(p.get("idNo", ""))),
        ("申请单号", c.get("applicationId")),
        ("临床诊断", diag),
    ]
    widths = (16 * mm, 27 * mm, 16 * mm, 30 * mm, 16 * mm, 27 * mm, 16 * mm, 34 * mm)
    looks = [(8.2, GREY), (9, colors.black)] * 4  # label, value
    rows, row = [], []
    for label, value in cells:
        row += [label + "：", _cell(value, st.value, widths[len(row) + 1])]
        if len(row) == 8:
            rows.append(_GridRow(row, looks))
            row = []
    if row:
        row += [""] * (8 - len(row))
        rows.append(_GridRow(row, looks))
    return _Grid(st.font, widths, rows, pad_x=1.0, pad_y=1.2)


@functools.lru_cache(maxsize=4096)
def _width(text: str, font: str, size: float) -> float:
    """Text width in points; reports repeat their units, ranges, methods and labels."""
    return pdfmetrics.stringWidth(text, font, size)


def _cell(text, style: ParagraphStyle, width: float):
    """A plain string when it fits the column (fast), else a wrapping Paragraph."""
    text = str(text or "")
    if _width(text, style.fontName, style.fontSize) <= width - 3:
        return text
    return Paragraph(_esc(text), style)


ROW_BG = colors.HexColor("#f3f6fa")
_ITEM_WIDTHS = (11 * mm, 54 * mm, 22 * mm, 9 * mm, 20 * mm, 28 * mm, 26 * mm, 12 * mm)
_ITEM_HEADER = ("序号", "检验项目", "结果", "", "单位", "参考区间", "检验方法", "互认")
_LEADING = 12.0  # reportlab Table's default cell leading, which these grids keep


@functools.lru_cache(maxsize=64)
def _fill_op(color: colors.Color) -> str:
    """The PDF operator that sets an RGB fill colour, as ``PDFTextObject.setFillColor`` writes it."""
    return f"{fp_str(color.red, color.green, color.blue)} rg"


class _GridRow:
    """One row of :class:`_Grid`: cells (plain strings, or Paragraphs for text too wide for one
    line), one (font size, colour) per cell, and whether the row has the stripe background."""

    __slots__ = ("cells", "height", "looks", "striped", "wrapped")

    def __init__(self, cells, looks, striped: bool = False):
        self.cells = cells
        self.looks = looks
        self.striped = striped
        self.height = 0.0
        self.wrapped: list = []  # (column, Paragraph, height) after wrap


class _Grid(Flowable):
    """A table drawn straight on the canvas, all its plain cells in one text object.

    It looks like the platypus ``Table`` it replaces (same column widths, paddings, 12 pt line,
    text centred vertically, stripe, rules and colours; with ``header`` the header repeats on
    every page the grid runs onto), but platypus draws each cell as its own text object with its
    own state changes: for the ~250 cells of a results table that was half the rendering time of
    a report. ``rules``: the results table's rules (above and below the header, below the last row).
    """

    def __init__(self, font, widths, rows, *, header=None, pad_x=6.0, pad_y=1.6, centred=(), rules=False):
        super().__init__()
        self.font = font
        self.widths = widths
        self.rows = rows
        self.header = header
        self.pad_x, self.pad_y = pad_x, pad_y
        self.centred = frozenset(centred)
        self.rules = rules
        self.hAlign = "LEFT"
        self._measured = False

    def _all_rows(self):
        return (self.header, *self.rows) if self.header is not None else self.rows

    def _measure(self) -> None:
        if self._measured:
            return
        for row in self._all_rows():
            height = _LEADING
            row.wrapped = []
            for col, cell in enumerate(row.cells):
                if isinstance(cell, Flowable):
                    _w, h = cell.wrap(self.widths[col] - 2 * self.pad_x, 1e6)
                    row.wrapped.append((col, cell, h))
                    height = max(height, h)
            row.height = height + 2 * self.pad_y
        self._measured = True

    def _copy(self, rows) -> _Grid:
        part = _Grid(self.font, self.widths, rows, header=self.header, pad_x=self.pad_x, pad_y=self.pad_y,
                     centred=self.centred, rules=self.rules)  # fmt: skip
        part._measured = True
        return part

    def wrap(self, availWidth, availHeight):
        self._measure()
        self.width = sum(self.widths)
        self.height = sum(r.height for r in self._all_rows())
        return self.width, self.height

    def split(self, availWidth, availHeight):
        self._measure()
        used, n = (self.header.height if self.header is not None else 0.0), 0
        for row in self.rows:
            if used + row.height > availHeight:
                break
            used += row.height
            n += 1
        if n == 0 or n == len(self.rows):
            return []
        return [self._copy(self.rows[:n]), self._copy(self.rows[n:])]

    def draw(self):
        canv, font, widths = self.canv, self.font, self.widths
        centred, pad_x, width = self.centred, self.pad_x, self.width
        rows = self._all_rows()
        canv.saveState()
        top = y = self.height
        if any(row.striped for row in rows):
            canv.setFillColor(ROW_BG)
            for row in rows:
                y -= row.height
                if row.striped:
                    canv.rect(0, y, width, row.height, stroke=0, fill=1)
        text = canv.beginText()
        code = text._code
        cur_size = cur_color = None
        paragraphs = []
        y = top
        for row in rows:
            y -= row.height
            baseline = y + (row.height + _LEADING) / 2  # less each cell's font size, as Table does
            x = 0.0
            for col, cell in enumerate(row.cells):
                col_w = widths[col]
                if cell and isinstance(cell, str):
                    size, color = row.looks[col]
                    if size != cur_size:
                        text.setFont(font, size, _LEADING)
                        cur_size = size
                    if color is not cur_color:
                        code.append(_fill_op(color))  # what text.setFillColor writes, at a tenth of the cost
                        cur_color = color
                    if col in centred:
                        tx = x + col_w / 2 - _width(cell, font, size) / 2
                    else:
                        tx = x + pad_x
                    text.setTextOrigin(tx, baseline - size)
                    text._textOut(cell)  # textOut without measuring the text for the cursor: unused
                x += col_w
            for col, para, h in row.wrapped:
                paragraphs.append((para, sum(widths[:col]) + pad_x, y + (row.height - h) / 2))
        canv.drawText(text)
        for para, px, py in paragraphs:
            para.drawOn(canv, px, py)
        if self.rules:
            canv.setStrokeColor(colors.black)
            canv.setLineCap(1)
            canv.setLineWidth(0.9)
            canv.line(0, top, width, top)
            canv.line(0, 0, width, 0)
            if self.header is not None:
                canv.setLineWidth(0.5)
                canv.line(0, top - self.header.height, width, top - self.header.height)
        canv.restoreState()


def _items_table(m: Mapped, st: _Styles) -> _Grid:
    widths = _ITEM_WIDTHS
    black = colors.black
    header = _GridRow(list(_ITEM_HEADER), [(8.2, GREY)] * 8, striped=False)
    rows = []
    for r, item in enumerate(m.items, start=1):
        flag = ARROWS.get(item.flag, "")
        name = f"{item.name} {item.code}" if item.code and item.code not in item.name else item.name
        result_color = RED if flag else black
        rows.append(
            _GridRow(
                [
                    str(item.no),
                    _cell(name, st.cell, widths[1]),
                    _cell(item.result, st.cell, widths[2]),
                    flag,
                    _cell(item.unit, st.cell, widths[4]),
                    _cell(item.range, st.cell, widths[5]),
                    _cell(item.method, st.small, widths[6]),
                    "HR" if item.recognised else "",
                ],
                [
                    (8.6, black),
                    (8.6, black),
                    (8.6, result_color),
                    (8.6, result_color),
                    (8.6, black),
                    (8.6, black),
                    (8, GREY),
                    (9, BLUE) if item.recognised else (8.6, black),
                ],
                striped=r % 2 == 0,
            )
        )
    return _Grid(st.font, widths, rows, header=header, centred=(0, 3, 7), rules=True)


def _recognition_sections(m: Mapped, st: _Styles) -> list:
    out = []
    if m.external_results:
        out.append(Paragraph("已采纳的外院互认结果", st.section))
        rows = [
            [Paragraph(h, st.label) for h in ("互认项目", "外院结果", "报告机构", "外院报告时间", "采纳医师")]
        ]
        for r in m.external_results:
            rows.append(
                [
                    Paragraph(_esc(f"{r['recognitionItemName'] or r['recognitionItemCode']}"), st.cell),
                    Paragraph(_esc(f"{r['resultValue']} {r.get('unit') or ''}"), st.cell),
                    Paragraph(_esc(r["externalOrgName"]), st.cell),
                    _dt(r["externalReportAt"]),
                    Paragraph(_esc(r["doctorName"]), st.cell),
                ]
            )
        out.append(_plain_table(rows, [44 * mm, 30 * mm, 52 * mm, 30 * mm, 26 * mm], st))
    if m.non_recognitions:
        reasons = load_catalogue().value_set("REFUSAL_REASON")
        out.append(Paragraph("不互认信息", st.section))
        rows = [[Paragraph(h, st.label) for h in ("互认项目", "不互认原因", "说明", "决定医师")]]
        for r in m.non_recognitions:
            rows.append(
                [
                    Paragraph(_esc(r["recognitionItemName"] or r["recognitionItemCode"]), st.cell),
                    Paragraph(
                        _esc(reasons.name_of(r["refusalReasonCode"]) or r["refusalReasonCode"]), st.cell
                    ),
                    Paragraph(_esc(r.get("note")), st.cell),
                    Paragraph(_esc(r["doctorName"]), st.cell),
                ]
            )
        out.append(_plain_table(rows, [44 * mm, 62 * mm, 50 * mm, 26 * mm], st))
    return out


def _plain_table(rows, widths, st: _Styles) -> Table:
    t = Table(rows, colWidths=widths, hAlign="LEFT")
    t.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.font),
                ("FONTSIZE", (0, 0), (-1, -1), 8.4),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, LINE),
                ("LINEBELOW", (0, -1), (-1, -1), 0.5, LINE),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2),
            ]
        )
    )
    return t


def _signature_block(m: Mapped, signature: dict | None, st: _Styles, preview: bool = False) -> KeepTogether:
    c = m.content
    reviewer = m.review_doctor[1] or (c.get("reviewDoctor") or {}).get("name", "")
    tester = m.test_doctor[1] or (c.get("testDoctor") or {}).get("name", "")
    people = Table(
        [
            [
                Paragraph(f"检验者：{_esc(tester)}", st.value),
                Paragraph(f"审核者：{_esc(reviewer)}", st.value),
                Paragraph(f"报告时间：{_dt(c.get('reportedAt'))}", st.value),
                Paragraph(f"审核时间：{_dt(c.get('reviewedAt'))}", st.value),
            ]
        ],
        colWidths=[38 * mm, 38 * mm, 53 * mm, 53 * mm],
        hAlign="LEFT",
    )
    people.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 1), ("TOPPADDING", (0, 0), (-1, -1), 3)]))
    if signature:
        method = {"ukey": "UKey 数字证书", "auto": "自动签名", "phone": "协同签名（手机确认）"}.get(
            signature.get("method", ""), signature.get("method", "")
        )
        lines = [
            f"<b>电子签名</b>　签名人：{_esc(signature.get('signerName'))}（工号 {_esc(signature.get('signerStaffNo'))}）"
            f"　方式：{_esc(method)}　签名时间：{_dt(signature.get('signedAt'), seconds=True)}",
            f"签名范围：报告单号 {_esc(signature.get('reportId'))} 第 {_esc(signature.get('reportVersion'))} 版"
            f"　算法：{_esc(signature.get('signatureAlgorithm'))}　证书序列号：{_esc(signature.get('certSerial'))}",
            f"原文摘要（SM3）：{_esc(signature.get('originalHash'))}",
            f"签名值：{_esc(str(signature.get('signatureValue', ''))[:72])}…"
            + ("　含可信时间戳" if signature.get("timestampVerified") is True else ""),
        ]
        box = Table([[Paragraph("<br/>".join(lines), st.small)]], colWidths=[182 * mm], hAlign="LEFT")
        box.setStyle(
            TableStyle(
                [
                    ("BOX", (0, 0), (-1, -1), 0.6, BLUE),
                    ("LEFTPADDING", (0, 0), (-1, -1), 5),
                    ("TOPPADDING", (0, 0), (-1, -1), 3),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ]
            )
        )
    elif preview:
        box = Paragraph("预览：本版本尚未归档，预览不含电子签名，不作为正式报告。", st.small)
    else:
        box = Paragraph("本报告未进行电子签名。", st.small)
    return KeepTogether([people, Spacer(0, 2 * mm), box])


def _decorate(report_id: str, title: str, recognised: bool, font: str, preview: bool = False):
    hospital = settings.HOSPITAL_NAME

    def on_page(canvas, doc):
        canvas.saveState()
        top = PAGE_H - MARGIN
        canvas.setFillColor(BLUE)
        canvas.setFont(font, 17)
        canvas.drawCentredString(PAGE_W / 2, top - 6 * mm, hospital)
        canvas.setFillColor(colors.black)
        canvas.setFont(font, 13)
        canvas.drawCentredString(PAGE_W / 2, top - 13 * mm, f"检验报告单 · {title}")
        canvas.setFont(font, 8.5)
        canvas.setFillColor(GREY)
        canvas.drawString(MARGIN, top - 19 * mm, f"报告单号：{report_id}")
        if preview:
            canvas.setFillColor(RED)
            canvas.setFont(font, 10)
            canvas.drawString(MARGIN, top - 6 * mm, "预览 · 未归档")
            canvas.setFont(font, 8.5)
            canvas.setFillColor(GREY)
        if recognised:  # the unified recognition mark
            x, y = PAGE_W - MARGIN - 24 * mm, top - 16 * mm
            canvas.setStrokeColor(BLUE)
            canvas.setFillColor(BLUE)
            canvas.setLineWidth(1.4)
            canvas.roundRect(x, y, 12 * mm, 9 * mm, 1.5 * mm, stroke=1, fill=0)
            canvas.setFont("Helvetica-Bold", 15)
            canvas.drawCentredString(x + 6 * mm, y + 2.6 * mm, "HR")
            canvas.setFont(font, 6.5)
            canvas.drawCentredString(x + 6 * mm, y - 3 * mm, "检验结果互认")
        canvas.setStrokeColor(colors.black)
        canvas.setLineWidth(1.2)
        canvas.line(MARGIN, top - 21 * mm, PAGE_W - MARGIN, top - 21 * mm)
        canvas.setLineWidth(0.4)
        canvas.line(MARGIN, MARGIN + 5 * mm, PAGE_W - MARGIN, MARGIN + 5 * mm)
        canvas.setFont(font, 7.5)
        canvas.setFillColor(GREY)
        canvas.drawString(
            MARGIN,
            MARGIN + 1.5 * mm,
            "本报告仅对所检标本负责。如对结果有疑问，请于报告发出后7日内与检验科联系。",
        )
        canvas.drawRightString(PAGE_W - MARGIN, MARGIN + 1.5 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    return on_page


def render(m: Mapped, signature: dict | None = None, *, preview: bool = False) -> bytes:
    """The report PDF of mapped LIS content (see payloads.map_content) and its signature block.

    ``signature`` must be this version's own (``signing.signature_for``). ``preview``: a version
    not archived yet, marked as a preview and never carrying a signature."""
    if preview:
        signature = None
    font = font_name()
    st = _styles(font)
    c = m.content
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + 24 * mm,
        bottomMargin=MARGIN + 8 * mm,
        title=f"检验报告单 {c['reportId']}",
        author=settings.HOSPITAL_NAME,
        subject=c.get("reportTitle", ""),
        creator="hospital-interop",
        invariant=1,
    )
    story = [_patient_block(m, st), Spacer(0, 2.5 * mm), _items_table(m, st), Spacer(0, 2 * mm)]
    remark = _esc("备注：" + (m.remark or "无"))
    if any(i.flag in ("H", "HH", "L", "LL") for i in m.items):
        remark += '<br/><font color="#5f6b7a">↑ 高于参考区间　↓ 低于参考区间</font>'
    story.append(Paragraph(remark, st.remark))
    extra = _recognition_sections(m, st)
    if extra:
        story += [Spacer(0, 2 * mm), *extra]
    story += [Spacer(0, 4 * mm), _signature_block(m, signature, st, preview)]
    on_page = _decorate(c["reportId"], c.get("reportTitle", ""), m.any_recognised, font, preview)
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()
