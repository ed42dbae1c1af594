"""The joint-debugging console (联调台): the simulator's own web page, for development and 联调 only.

Served by the simulator on its own host and port (``--host``: loopback by default), like the rest
of it without login. Pages (server-rendered HTML, ``console_static/console.css`` and
``console.js``, nothing from a CDN):

* ``GET /`` overview: per interface what was received (from ``/_sim/stats``), how many records
  the platform holds, its fault switches; the newest exchanges;
* ``GET /console/interfaces/CODE?page=N`` the exchanges of one interface, newest first, each with
  its decrypted payload and the answer given (code, message, receipt, field errors);
* ``GET /console/search?q=KEY`` exchanges whose business key contains ``KEY``;
* ``GET /console/findings`` the place of the quality-feedback findings (not wired yet);
* ``GET /console/catalogue`` the interface catalogue;
* ``GET /console/exchanges/ID`` one exchange as JSON;
* ``POST /console/api/faults`` (JSON ``{"interface", "fault", "on", "value"?}`` or
  ``{"clear": true}``) switches a fault of one interface. It goes through the same fault set as
  ``/_sim/faults`` (``Inspection.set_faults``, key ``interfaces``), so what the page shows is what
  the tests' hooks see and set.

Search terms travel in the query string, which the access log leaves out; no page puts patient
data into a path.
"""

from __future__ import annotations

import json
import threading
from dataclasses import fields
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, quote

from .common import HttpError, html_response, json_response, read_json
from .faults import INTERFACE_FAULTS, Faults

STATIC = Path(__file__).resolve().parent / "console_static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
PER_PAGE = 20
DEFAULT_SKEW_SECONDS = 600

# the per-interface switches: (fault, label, what it does)
SWITCHES = (
    ("http_5xx", "5xx", "HTTP 500（纯文本），不处理请求"),
    ("timeout", "超时", "照常处理并保存，但在 {timeout} 秒后才应答（应答丢失）"),
    ("rate_limit", "限流", "应答 3001 与 retryAfter，不处理请求"),
    ("reject_field", "校验错误", "应答 2001，data.errors 指出一个字段"),
    ("clock_skew_seconds", "时钟偏差", "本接口按偏差后的平台时间校验请求时间戳（1002），应答也盖此时间"),
)
assert tuple(s[0] for s in SWITCHES) == INTERFACE_FAULTS

FAULT_LABELS = {
    "http_5xx": "注入 5xx",
    "timeout": "注入超时",
    "rate_limit": "注入限流",
    "error_5000": "注入 5000",
    "bad_signature": "应答签名损坏",
    "unsigned": "应答未签名",
    "reject_field": "注入校验错误",
    "clock_skew_seconds": "时钟偏差",
}
SOURCE_TEXT = {
    "opened": "平台已验签并解密的请求内容",
    "console": "平台未受理此请求（应答在解密之前给出），以下为联调台用登记的 SM4 密钥解密所得",
    "plain": "明文请求",
    "none": "无法读出请求内容",
}
KIND_TEXT = {"upload": "上传", "daily": "日报", "void": "作废", "query": "查询", "security": "安全"}
NAV = (
    ("/", "概览"),
    ("/console/search", "按主键搜索"),
    ("/console/findings", "质控反馈"),
    ("/console/catalogue", "接口目录"),
)


class Console:
    def __init__(self, sim) -> None:
        self.sim = sim
        self.catalogue = sim.catalogue
        self.journal = sim.journal
        self.store = sim.store
        self._switch_lock = threading.Lock()

    # -- routing -------------------------------------------------------------------------------
    def handle(self, method: str, path: str, environ):
        query = {
            k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()
        }
        if path == "/console/api/findings":
            if method != "POST":
                raise HttpError(405, "只接受 POST")
            if "application/json" not in environ.get("CONTENT_TYPE", ""):
                raise HttpError(400, "请求须为 JSON（Content-Type: application/json）")
            raised = self.sim.quality.raise_findings(read_json(environ))
            return json_response(200, {"findings": raised, "message": f"已下发 {len(raised)} 条质控问题"})
        if path == "/console/api/faults":
            if method != "POST":
                raise HttpError(405, "只接受 POST")
            if "application/json" not in environ.get("CONTENT_TYPE", ""):
                raise HttpError(400, "请求须为 JSON（Content-Type: application/json）")
            return json_response(200, self.switch(read_json(environ)))
        if method not in ("GET", "HEAD"):
            raise HttpError(405, "联调台页面只接受 GET")
        if path.startswith("/console/static/"):
            return self.static(path.removeprefix("/console/static/"))
        if path == "/":
            return html_response(200, self.overview())
        if path.startswith("/console/interfaces/"):
            code = path.removeprefix("/console/interfaces/")
            spec = self._spec(code)
            if spec is None:
                return html_response(404, _page("未知接口", f"<h1>未知的接口：{escape(code)}</h1>", "/"))
            return html_response(200, self.interface_page(spec, _page_no(query.get("page"))))
        if path == "/console/search":
            return html_response(
                200, self.search_page(query.get("q", "").strip(), _page_no(query.get("page")))
            )
        if path == "/console/findings":
            return html_response(200, self.findings_page())
        if path == "/console/catalogue":
            return html_response(200, self.catalogue_page())
        if path.startswith("/console/exchanges/"):
            try:
                found = self.journal.get(int(path.removeprefix("/console/exchanges/")))
            except ValueError:
                found = None
            if found is None:
                raise HttpError(404, "没有这条收发记录")
            return json_response(200, found)
        return html_response(
            404, _page("页面不存在", "<h1>页面不存在</h1><p><a href='/'>返回概览</a></p>", "")
        )

    def _spec(self, code: str):
        try:
            return self.catalogue.interface(code)
        except (KeyError, LookupError):
            return None

    # -- fault switches ------------------------------------------------------------------------
    def switch(self, body) -> dict:
        """Turn one switch of one interface on or off (or clear every fault), through the fault set
        ``/_sim/faults`` reads and writes."""
        if not isinstance(body, dict):
            raise HttpError(400, "请求须为 JSON 对象")
        with self._switch_lock:
            if body.get("clear"):
                faults = self.sim.inspection.set_faults({"replace": True})["faults"]
                return {"faults": faults, "interface": None, "switches": {}, "message": "已关闭全部故障"}
            code, fault = body.get("interface"), body.get("fault")
            spec = self._spec(code) if isinstance(code, str) else None
            if spec is None:
                raise HttpError(400, f"未知的接口：{code}")
            if fault not in INTERFACE_FAULTS:
                raise HttpError(400, f"未知的故障开关：{fault}；可用：{', '.join(INTERFACE_FAULTS)}")
            on = bool(body.get("on"))
            value = _switch_value(spec, fault, body.get("value")) if on else None
            current = self.sim.faults.current()
            interfaces = current.to_dict()["interfaces"]
            switches = dict(interfaces.get(spec.code, {}))
            if on:
                switches[fault] = value
            else:
                switches.pop(fault, None)
            interfaces[spec.code] = switches
            faults = self.sim.inspection.set_faults({"interfaces": interfaces})["faults"]
        label = dict((s[0], s[1]) for s in SWITCHES)[fault]
        state = "开启" if on else "关闭"
        return {
            "faults": faults,
            "interface": spec.code,
            "switches": faults["interfaces"].get(spec.code, {}),
            "message": f"已{state} {spec.code} 的「{label}」故障",
        }

    # -- pages ---------------------------------------------------------------------------------
    def overview(self) -> str:
        faults = self.sim.faults.current()
        counts, held = self._counts()
        config = self.sim.config
        groups: dict[str, list] = {}
        for spec in sorted(self.catalogue.interfaces, key=lambda s: (s.document, s.code)):
            groups.setdefault(f"{spec.document} {spec.version}", []).append(spec)
        rows = []
        for group, specs in groups.items():
            rows.append(f"<tr class='group'><th colspan='8'>{escape(group)}</th></tr>")
            for spec in specs:
                c = counts.get(spec.code, {})
                total = sum(c.values())
                ok = c.get("0", 0)
                rows.append(
                    f"<tr data-interface-row='{escape(spec.code)}'>"
                    f"<td><a href='/console/interfaces/{quote(spec.code)}'>{escape(spec.code)}</a></td>"
                    f"<td>{escape(spec.name)}</td><td>{escape(KIND_TEXT.get(spec.kind, spec.kind))}</td>"
                    f"<td class='num' data-count='received'>{total}</td>"
                    f"<td class='num ok'>{ok}</td><td class='num {'bad' if total - ok else ''}'>{total - ok}</td>"
                    f"<td class='num'>{held.get(spec.code, 0) if spec.key and spec.kind != 'query' else '—'}</td>"
                    f"<td>{self._switches(spec, faults, compact=True)}</td></tr>"
                )
        recent, _ = self.journal.page(offset=0, limit=10)
        body = (
            "<h1>联调台</h1>"
            f"<p class='lead'>登记应用 <b>{escape(config.app_id)}</b>（机构 {escape(config.org_code)}）。"
            "医院系统发来的每个请求都记在下面：解密后的内容、平台的应答；每个接口都可以单独打开故障。</p>"
            f"{_search_form('')}"
            f"{self._global_faults(faults)}"
            "<h2>最近收到的请求</h2>"
            f"{_exchanges(recent, with_interface=True) if recent else _empty('还没有收到请求。')}"
            "<h2>各接口</h2>"
            "<table class='interfaces'><thead><tr><th>服务代码</th><th>接口</th><th>类型</th>"
            "<th class='num'>收到</th><th class='num'>成功</th><th class='num'>失败</th>"
            "<th class='num' title='平台现存（未作废）的记录数'>平台现存</th><th>故障开关</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        return _page("联调台", body, "/")

    def interface_page(self, spec, page_no: int) -> str:
        faults = self.sim.faults.current()
        counts, held = self._counts()
        c = counts.get(spec.code, {})
        total_received = sum(c.values())
        by_code = "、".join(f"{escape(code)}：{n}" for code, n in sorted(c.items())) or "无"
        items, total, page_no = self._page_of(page_no, interface=spec.code)
        help_rows = "".join(
            f"<li><b>{escape(label)}</b>：{escape(text.format(timeout=_num(faults.timeout_seconds)))}</li>"
            for _, label, text in SWITCHES
        )
        key = "、".join(spec.key) if spec.key else "无（查询类接口）"
        body = (
            f"<p class='crumbs'><a href='/'>概览</a> › {escape(spec.code)}</p>"
            f"<h1>{escape(spec.name)} <small>{escape(spec.code)}</small></h1>"
            f"<p class='lead'>文档 {escape(spec.document)} {escape(spec.version)} · "
            f"{escape(KIND_TEXT.get(spec.kind, spec.kind))} · <code>POST {escape(spec.path)}</code> · 业务主键 {escape(key)}</p>"
            f"<p>收到 <b data-count='received'>{total_received}</b> 次（按应答码 {by_code}）；"
            f"平台现存记录 {held.get(spec.code, 0)} 条。</p>"
            "<section class='faults-panel'><h2>故障开关</h2>"
            f"{self._switches(spec, faults, compact=False)}"
            f"<ul class='help'>{help_rows}</ul>{self._global_faults(faults, spec.code)}</section>"
            f"<h2>收到的请求 <small>（新的在前）</small></h2>"
            f"{_exchanges(items) if items else _empty('此接口还没有收到请求。')}"
            f"{_pager(f'/console/interfaces/{quote(spec.code)}?', page_no, total)}"
        )
        return _page(f"{spec.code} · 联调台", body, "")

    def search_page(self, q: str, page_no: int) -> str:
        if not q:
            result = "<p class='lead'>输入业务主键或其中一段（例如报告单号），查找平台收到的请求。</p>"
        else:
            items, total, page_no = self._page_of(page_no, key_part=q)
            result = (
                f"<p class='lead'>主键包含「{escape(q)}」的请求：{total} 条。</p>"
                + (_exchanges(items, with_interface=True) if items else _empty("没有找到。"))
                + _pager(f"/console/search?q={quote(q)}&", page_no, total)
            )
        return _page(
            "按主键搜索 · 联调台", "<h1>按业务主键搜索</h1>" + _search_form(q) + result, "/console/search"
        )

    def findings_page(self) -> str:
        quality = self.sim.quality
        return _page(
            "质控反馈 · 联调台",
            findings_section(quality.findings(), quality.replies(), self.catalogue),
            "/console/findings",
        )

    def catalogue_page(self) -> str:
        rows = "".join(
            f"<tr><td><a href='/console/interfaces/{quote(s.code)}'>{escape(s.code)}</a></td>"
            f"<td>{escape(s.name)}</td><td>{escape(s.document)} {escape(s.version)}</td>"
            f"<td>{escape(KIND_TEXT.get(s.kind, s.kind))}</td><td><code>{escape(s.path)}</code></td></tr>"
            for s in sorted(self.catalogue.interfaces, key=lambda s: (s.document, s.path))
        )
        body = (
            "<h1>接口目录</h1>"
            "<table class='interfaces'><thead><tr><th>服务代码</th><th>接口</th><th>文档</th><th>类型</th>"
            f"<th>路径</th></tr></thead><tbody>{rows}</tbody></table>"
        )
        return _page("接口目录 · 联调台", body, "/console/catalogue")

    def static(self, name: str):
        target = STATIC / name
        if "/" in name or target.suffix not in STATIC_TYPES or not target.is_file():
            raise HttpError(404, "没有这个静态文件")
        return (
            200,
            [("Content-Type", STATIC_TYPES[target.suffix]), ("Cache-Control", "no-cache")],
            target.read_bytes(),
        )

    # -- pieces --------------------------------------------------------------------------------
    def _page_of(self, page_no: int, **where) -> tuple[list[dict], int, int]:
        """One page of exchanges; a page number past the end shows the last page."""
        items, total = self.journal.page(offset=(page_no - 1) * PER_PAGE, limit=PER_PAGE, **where)
        last = max(1, -(-total // PER_PAGE))
        if page_no > last:
            page_no = last
            items, total = self.journal.page(offset=(page_no - 1) * PER_PAGE, limit=PER_PAGE, **where)
        return items, total, page_no

    def _counts(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for service, code, n in self.store.stats_rows():
            if service != "_faults":
                counts.setdefault(service, {})[code] = n
        held = dict(
            self.store.read()
            .execute("SELECT interface, COUNT(*) FROM records WHERE voided = 0 GROUP BY interface")
            .fetchall()
        )
        return counts, held

    def _switches(self, spec, faults: Faults, *, compact: bool) -> str:
        mine = faults.interfaces.get(spec.code, {})
        parts = []
        for fault, label, text in SWITCHES:
            on = fault in mine
            title = text.format(timeout=_num(faults.timeout_seconds))
            global_note = ""
            if fault in ("http_5xx", "timeout", "rate_limit") and faults.applies_to(spec.code):
                rate = getattr(faults, fault)
                if rate:
                    global_note = (
                        f"<span class='global' title='全局故障（/_sim/faults）'>全局 {rate:.0%}</span>"
                    )
            if fault == "clock_skew_seconds" and faults.clock_skew_seconds and not on:
                global_note = f"<span class='global' title='全局时钟偏差'>全局 {_num(faults.clock_skew_seconds)} 秒</span>"
            extra = ""
            if not compact and fault == "reject_field":
                value = mine.get(fault) or default_reject_field(spec)
                extra = (
                    f" 字段 <input class='value' data-value-for='reject_field' value='{escape(value)}' size='14' "
                    "aria-label='校验错误指向的字段'>"
                )
            if not compact and fault == "clock_skew_seconds":
                value = mine.get(fault) or DEFAULT_SKEW_SECONDS
                extra = (
                    f" <input class='value' data-value-for='clock_skew_seconds' type='number' step='1' "
                    f"value='{_num(value)}' size='6' aria-label='时钟偏差秒数'> 秒"
                )
            parts.append(
                f"<label class='switch{' on' if on else ''}' title='{escape(title)}'>"
                f"<input type='checkbox' data-fault='{fault}'{' checked' if on else ''}> {escape(label)}</label>"
                f"{extra}{global_note}"
            )
        return f"<div class='switches' data-interface='{escape(spec.code)}'>{''.join(parts)}</div>"

    def _global_faults(self, faults: Faults, code: str | None = None) -> str:
        defaults = {f.name: f.default for f in fields(Faults) if f.name not in ("interfaces", "seed")}
        active = []
        for name, default in defaults.items():
            value = getattr(faults, name)
            if name in ("timeout_seconds", "retry_after", "services") or value == default:
                continue
            if name in ("http_5xx", "timeout", "rate_limit", "error_5000", "bad_signature", "unsigned"):
                active.append(f"{name} {value:.0%}")
            elif name == "reject_keys":
                active.append(f"reject_keys（{len(value)} 个主键）")
            else:
                active.append(f"{name} = {value}")
        scope = f"（仅限 {'、'.join(faults.services)}）" if faults.services else ""
        if code is not None and faults.services and not faults.applies_to(code):
            scope += "，不含本接口"
        others = sum(1 for k, v in faults.interfaces.items() if v and k != code)
        text = (f"全局故障{escape(scope)}：{escape('；'.join(active))}。" if active else "没有全局故障。") + (
            f"另有 {others} 个接口开着故障开关。" if others else ""
        )
        return (
            f"<div class='global-faults{' active' if active or others else ''}'><span>{text}</span>"
            "<button type='button' data-clear-faults>关闭全部故障</button></div>"
        )


KIND_NAMES = {"content": "内容问题", "missing": "应传未传", "late": "上传超时"}
ISSUER_NAMES = {"WJW": "卫健委", "ZKZX": "质控中心"}
RESULT_NAMES = {"1": "已修正", "2": "无需修改", "3": "无法修正"}


def findings_section(findings: list[dict], replies: list[dict], catalogue) -> str:
    """质控反馈: issue a finding (the platform's side of QC_FEEDBACK_QUERY, through the same
    ``quality.raise_findings`` the tests' ``/_sim/qc/findings`` uses) and read the hospital's
    replies (QC_FEEDBACK_REPLY) as the platform holds them."""
    options = "".join(
        f"<option value='{escape(s.code)}'>{escape(s.code)} {escape(s.name)}</option>"
        for s in sorted(catalogue.interfaces, key=lambda s: s.code)
        if s.kind == "upload"
    )
    form = (
        "<form class='raise-finding' data-raise-finding>"
        "<label>问题类型 <select name='kind'><option value='content'>内容问题</option>"
        "<option value='missing'>应传未传</option><option value='late'>上传超时</option></select></label>"
        f"<label>接口 <select name='serviceCode'>{options}</select></label>"
        "<label>业务主键 <input name='businessKey' required placeholder='机构代码|报告单号'></label>"
        "<label>字段 <input name='field' placeholder='如 reportId'></label>"
        "<label>说明 <input name='message' placeholder='默认按问题类型'></label>"
        "<label>回复时限（小时） <input name='replyInHours' type='number' value='72'></label>"
        "<label>下发单位 <select name='issuer'><option value='ZKZX'>质控中心</option>"
        "<option value='WJW'>卫健委</option></select></label>"
        "<button type='submit'>下发</button></form>"
    )
    answered: dict[str, list[dict]] = {}
    for r in replies:
        answered.setdefault(r["feedbackId"], []).append(r)
    rows = "".join(
        f"<tr data-finding='{escape(f['feedbackId'])}'><td>{escape(f['feedbackId'])}</td>"
        f"<td>{escape(ISSUER_NAMES.get(f['issuer'], f['issuer']))}</td>"
        f"<td>{escape(KIND_NAMES.get(f['kind'], f['kind']))}</td><td>{escape(f['serviceCode'])}</td>"
        f"<td class='mono'>{escape(f['businessKey'])}</td><td>{escape(f['message'])}</td>"
        f"<td>{escape(f['replyBy'])}</td><td class='reply'>"
        + (
            "；".join(
                escape(
                    RESULT_NAMES.get(str(r.get("result")), str(r.get("result")))
                    + " "
                    + str(r.get("note") or "")
                )
                for r in answered.get(f["feedbackId"], [])
            )
            or "<span class='muted'>未回复</span>"
        )
        + "</td></tr>"
        for f in reversed(findings)
    )
    table = (
        "<table class='grid findings'><thead><tr><th>编号</th><th>下发单位</th><th>类型</th><th>接口</th>"
        f"<th>业务主键</th><th>说明</th><th>回复时限</th><th>医院回复</th></tr></thead><tbody>{rows}</tbody></table>"
        if findings
        else _empty("尚未下发质控问题。")
    )
    return (
        "<h1>质控反馈</h1><section id='qc-findings'>"
        "<p class='lead'>以卫健委或质控中心的身份对医院上传的数据下发问题（医院经 QC_FEEDBACK_QUERY 拉取），"
        "并查看医院经 QC_FEEDBACK_REPLY 给出的回复。</p>"
        f"{form}{table}</section>"
    )


def default_reject_field(spec) -> str:
    if spec.key:
        return spec.key[-1]
    for name, f in (spec.request.fields or {}).items():
        if f.required:
            return name
    return "data"


def _switch_value(spec, fault: str, value):
    if fault == "reject_field":
        if value is None or (isinstance(value, str) and not value.strip()):
            return default_reject_field(spec)
        if not isinstance(value, str) or len(value) > 200:
            raise HttpError(400, "校验错误的字段名必须是不超过 200 个字符的字符串")
        return value.strip()
    if fault == "clock_skew_seconds":
        if value is None or value == "":
            return DEFAULT_SKEW_SECONDS
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise HttpError(400, "时钟偏差必须是秒数（可为负）") from None
        if seconds == 0 or abs(seconds) > 10 * 365 * 86400:
            raise HttpError(400, "时钟偏差须为非零秒数，且不超过十年")
        return seconds
    return 1.0


# -- HTML ----------------------------------------------------------------------------------------


def _page(title: str, body: str, active: str) -> str:
    nav = "".join(
        f"<a href='{href}'{' class=current aria-current=page' if href == active else ''}>{label}</a>"
        for href, label in NAV
    )
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/console/static/console.css">'
        '<script src="/console/static/console.js" defer></script></head><body>'
        "<header><span class='brand'>市平台模拟器 · 联调台</span>"
        f"<nav>{nav}</nav><span class='devonly' title='本页无登录，按 --host 绑定；请勿对外开放'>仅供开发联调</span></header>"
        "<div id='console-status' role='status' aria-live='polite'></div>"
        f"<main>{body}</main>"
        "<footer>原始 JSON：<a href='/_sim/health'>/_sim/health</a> · <a href='/_sim/stats'>/_sim/stats</a> · "
        "<a href='/_sim/faults'>/_sim/faults</a> · <a href='/_sim/records'>/_sim/records</a> · "
        "<a href='/_sim/feedback'>/_sim/feedback</a></footer></body></html>"
    )


def _search_form(q: str) -> str:
    return (
        "<form class='search' method='get' action='/console/search' role='search'>"
        "<label for='console-q'>业务主键</label>"
        f"<input id='console-q' name='q' value='{escape(q)}' placeholder='例如 12110000400000000X|JY0000000007 或报告单号' size='48'>"
        "<button type='submit'>搜索</button></form>"
    )


def _empty(text: str) -> str:
    return f"<p class='empty'>{escape(text)}</p>"


def _code_class(code: str) -> str:
    if code == "0":
        return "ok"
    if code in ("HTTP500", "5000", "3001"):
        return "fault"
    return "warn"


def _exchanges(items: list[dict], *, with_interface: bool = False) -> str:
    return f"<div class='exchanges'>{''.join(_exchange(x, with_interface) for x in items)}</div>"


def _exchange(x: dict, with_interface: bool) -> str:
    e = escape
    answer = x["answer"] if isinstance(x["answer"], dict) else {}
    receipt = answer.get("receiptId")
    key = x["key"] or "（无业务主键）"
    notes = "".join(f"<span class='fault-tag'>{e(FAULT_LABELS.get(n, n))}</span>" for n in x["faults"])
    iface = (
        f"<a class='iface' href='/console/interfaces/{quote(x['interface'])}'>{e(x['interface'])}</a>"
        if with_interface
        else ""
    )
    summary = (
        f"<span class='xid'>#{x['id']}</span><span class='when'>{e(x['received_at'])}</span>{iface}"
        f"<span class='key' title='{e(key)}'>{e(key)}</span>"
        f"<span class='code {_code_class(x['code'])}'>{e(x['code'])}</span>"
        f"<span class='msg' title='{e(x['message'])}'>{e(x['message'])}</span>"
        f"<span class='receipt'>{('回执 ' + e(receipt)) if receipt else ''}</span><span class='tags'>{notes}</span>"
    )
    errors = answer.get("errors") if isinstance(answer.get("errors"), list) else []
    error_rows = "".join(
        f"<tr><td><code>{e(str(err.get('field', '')))}</code></td><td>{e(str(err.get('rule', '')))}</td>"
        f"<td>{e(str(err.get('message', '')))}</td></tr>"
        for err in errors
        if isinstance(err, dict)
    )
    facts = [("HTTP 状态", str(x["http_status"])), ("应答码", x["code"]), ("消息", x["message"])]
    if receipt:
        facts.append(("回执号", str(receipt)))
    if "version" in answer:
        facts.append(("版本", str(answer["version"])))
    if "retryAfter" in answer:
        facts.append(("retryAfter", f"{answer['retryAfter']} 秒"))
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    detail = (
        "<div class='detail'>"
        "<section class='request'><h3>请求内容（解密后）</h3>"
        f"<p class='source source-{e(x['payload_source'])}'>{e(SOURCE_TEXT.get(x['payload_source'], ''))}</p>"
        f"<pre class='json payload'>{e(_pretty(x['payload']))}</pre>"
        + (
            f"<h4>信封头</h4><pre class='json envelope'>{e(_pretty(x['envelope']))}</pre>"
            if x["envelope"]
            else ""
        )
        + "</section><section class='answer'><h3>平台应答</h3>"
        f"<dl>{dl}</dl>"
        + (
            "<table class='errors'><thead><tr><th>字段</th><th>规则</th><th>说明</th></tr></thead>"
            f"<tbody>{error_rows}</tbody></table>"
            if error_rows
            else ""
        )
        + (
            f"<h4>应答 data</h4><pre class='json answer-data'>{e(_pretty(x['answer']))}</pre>"
            if x["answer"]
            else ""
        )
        + f"<p class='raw'><a href='/console/exchanges/{x['id']}'>这条记录的 JSON</a></p>"
        "</section></div>"
    )
    return (
        f"<details class='exchange {_code_class(x['code'])}' id='x-{x['id']}' data-exchange='{x['id']}'>"
        f"<summary>{summary}</summary>{detail}</details>"
    )


def _pretty(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _pager(base: str, page_no: int, total: int) -> str:
    pages = max(1, -(-total // PER_PAGE))
    if pages == 1:
        return f"<p class='pager'>共 {total} 条</p>" if total else ""
    prev = (
        f"<a href='{base}page={page_no - 1}' rel='prev'>上一页</a>" if page_no > 1 else "<span>上一页</span>"
    )
    nxt = (
        f"<a href='{base}page={page_no + 1}' rel='next'>下一页</a>"
        if page_no < pages
        else "<span>下一页</span>"
    )
    path, _, query = base.partition("?")
    hidden = "".join(
        f"<input type='hidden' name='{escape(k)}' value='{escape(v[-1])}'>"
        for k, v in parse_qs(query).items()
    )
    return (
        f"<nav class='pager' aria-label='分页'>{prev}<span>第 {page_no} / {pages} 页（共 {total} 条）</span>{nxt}"
        f"<form method='get' action='{escape(path)}'>{hidden}<label>跳到第 "
        f"<input name='page' type='number' min='1' max='{pages}' value='{page_no}' size='4'> 页</label>"
        "<button type='submit'>跳转</button></form></nav>"
    )


def _page_no(value) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
