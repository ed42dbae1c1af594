"""HTML of the simulated platform's report viewer (opened from signed browse links)."""

from __future__ import annotations

from html import escape

_STYLE = """
body{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;margin:0;background:#f4f6f8;color:#1f2933}
header{background:#0b5394;color:#fff;padding:12px 24px;font-size:18px}
main{max-width:960px;margin:20px auto;background:#fff;padding:20px 28px;border-radius:6px;box-shadow:0 1px 3px #0002}
h1{font-size:20px;margin:0 0 12px}
dl{display:grid;grid-template-columns:8em 1fr 8em 1fr;gap:6px 12px;margin:0 0 16px}
dt{color:#52606d}dd{margin:0}
table{border-collapse:collapse;width:100%;margin:8px 0 16px}
th,td{border-bottom:1px solid #e4e7eb;padding:6px 8px;text-align:left;font-size:14px}
th{background:#f0f4f8}
.flag-H,.flag-HH,.flag-P{color:#c62828;font-weight:bold}.flag-L,.flag-LL{color:#1565c0;font-weight:bold}
.images{border:2px dashed #9aa5b1;border-radius:6px;height:260px;display:flex;align-items:center;
justify-content:center;color:#7b8794;background:repeating-linear-gradient(45deg,#fafbfc,#fafbfc 10px,#f0f2f4 10px,#f0f2f4 20px)}
.refusal{color:#b71c1c;font-size:16px}
footer{max-width:960px;margin:0 auto 20px;color:#7b8794;font-size:12px}
"""

_FLAG_TEXT = {"H": "↑", "HH": "↑↑", "L": "↓", "LL": "↓↓", "P": "阳性", "A": "异常"}


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        "<header>北京市检查检验结果互认平台 · 报告调阅（模拟）</header>"
        f"<main>{body}</main>"
        "<footer>本页面由市平台模拟器生成，仅用于联调与测试。调阅行为已记录。</footer></body></html>"
    )


def _dt(s) -> str:
    s = str(s or "")
    if len(s) >= 12 and (s[:12].isascii() and s[:12].isdigit()):
        return f"{s[0:4]}-{s[4:6]}-{s[6:8]} {s[8:10]}:{s[10:12]}"
    if len(s) == 8 and (s.isascii() and s.isdigit()):
        return f"{s[0:4]}-{s[4:6]}-{s[6:8]}"
    return s


def refusal_page(reason: str, title: str = "无法调阅报告") -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p class='refusal'>{escape(reason)}</p>")


def report_page(kind: str, report: dict, patient: dict, *, doctor_id: str) -> str:
    e = escape
    head = (
        f"<h1>{e(report.get('externalOrgName') or report.get('orgName') or '')} · "
        f"{e(report.get('reportTitle') or report.get('recognitionItemName') or report.get('examItemName') or '报告')}</h1>"
        "<dl>"
        f"<dt>患者姓名</dt><dd>{e(patient.get('name', ''))}</dd>"
        f"<dt>证件号</dt><dd>{e(patient.get('idNoMasked', ''))}</dd>"
        f"<dt>性别</dt><dd>{e(patient.get('sexName', ''))}</dd>"
        f"<dt>报告单号</dt><dd>{e(report.get('reportId', ''))}</dd>"
        f"<dt>报告时间</dt><dd>{e(_dt(report.get('reportDateTime')))}</dd>"
        f"<dt>调阅医师</dt><dd>{e(doctor_id)}</dd>"
        "</dl>"
    )
    if kind == "lab":
        rows = "".join(
            f"<tr><td>{e(str(it.get('itemNo', '')))}</td><td>{e(it.get('itemName', ''))}</td>"
            f"<td class='flag-{e(it.get('abnormalFlagCode', ''))}'>{e(str(it.get('resultValue', '')))} "
            f"{e(_FLAG_TEXT.get(it.get('abnormalFlagCode', ''), ''))}</td>"
            f"<td>{e(it.get('unit', ''))}</td><td>{e(it.get('referenceRange', ''))}</td>"
            f"<td>{e(it.get('recognitionMark', ''))}</td></tr>"
            for it in report.get("items", [])
        )
        body = (
            f"<p>标本：{e(report.get('specimenTypeName', ''))}　采样时间：{e(_dt(report.get('sampleDateTime')))}</p>"
            "<table><thead><tr><th>序号</th><th>项目</th><th>结果</th><th>单位</th><th>参考区间</th><th>互认</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        body = (
            f"<p>检查类别：{e(report.get('examCategoryName', ''))}　部位：{e(report.get('bodyPartName', ''))}　"
            f"检查时间：{e(_dt(report.get('examDateTime')))}</p>"
            f"<h2>检查所见</h2><p>{e(report.get('findings', ''))}</p>"
            f"<h2>检查提示</h2><p>{e(report.get('impression', ''))}</p>"
        )
    uid = report.get("studyInstanceUid", "")
    images = (
        "<h2>影像</h2><div class='images'>影像浏览区（模拟器不提供影像；"
        f"Study Instance UID：{e(uid) if uid else '无'}）</div>"
    )
    return _page("报告调阅", head + body + images)
