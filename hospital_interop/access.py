"""Least privilege as data: which role may reach which URL (GB/T 22239-2019 8.1.4.2 访问控制).

``MATRIX`` lists sections of the site; each names its URL patterns (``namespace:name``, shell-style
wildcards allowed) and how they are reached:

* ``PAGE``: a logged-in user holding one of ``roles``; anonymous users are sent to the login page,
  other users get the 403 page.
* ``LOGIN``: any logged-in user (the home page: it shows each role its own tiles).
* ``STAFF``: the Django admin, for users marked staff (``Role.staff``); inside it the model
  permissions of each role decide what they see.
* ``APIDOC``: an OpenAPI document or Swagger UI: a calling system's token, or the session of one of
  ``roles``; a browser without either is sent to the login page.
* ``TOKEN``: a machine API: only a calling system's token (``Authorization: Token …``) reaches it;
  no session role does, and without a token the API answers 401/403 JSON itself.
* ``SIGNED``: the embedded prompt page and its calls: a signed, short-lived link authenticates the
  request (no session); without one the view refuses (4xx).
* ``PUBLIC``: the login page, logout, ``/healthz`` (container health check) and ``/metrics`` (the
  proxy answers 404 for it; it is scraped on the internal network).

``AccessMiddleware`` enforces the matrix by URL name before any view runs, so a new view cannot
forget it: a URL with no entry is refused for everyone (and ``tests/test_access_matrix.py`` fails
until it has one). The views' own permission checks stay as a second line. The README's role table
is ``markdown_table()``; a test checks it is current.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fnmatch import fnmatchcase

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from .roles import ROLE_BY_CODE, ROLES

log = logging.getLogger(__name__)

PAGE, LOGIN, STAFF, APIDOC, TOKEN, SIGNED, PUBLIC = (
    "page",
    "login",
    "staff",
    "apidoc",
    "token",
    "signed",
    "public",
)
KINDS = (PAGE, LOGIN, STAFF, APIDOC, TOKEN, SIGNED, PUBLIC)
ROLE_CODES = tuple(r.code for r in ROLES)
STAFF_ROLES = frozenset(r.code for r in ROLES if r.staff)


@dataclass(frozen=True)
class Section:
    title: str  # a row of the README table
    kind: str
    patterns: tuple[str, ...]  # "namespace:name"; fnmatch wildcards allowed ("admin:*")
    roles: frozenset[str] = frozenset()  # for PAGE and APIDOC; LOGIN means every role, STAFF the staff roles
    note: str = ""

    def role_allowed(self, code: str) -> bool:
        """Whether a user holding role ``code`` (and nothing else) reaches the section with a session."""
        if self.kind in (PUBLIC, LOGIN):
            return True
        if self.kind == STAFF:
            return code in STAFF_ROLES
        if self.kind in (PAGE, APIDOC):
            return code in self.roles
        return False  # TOKEN, SIGNED: no session role


def _roles(*codes: str) -> frozenset[str]:
    unknown = set(codes) - set(ROLE_CODES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}")
    return frozenset(codes)


MATRIX: tuple[Section, ...] = (
    Section("登录、退出", PUBLIC, ("login", "logout", "admin:login")),
    Section(
        "运行状态 /healthz、指标 /metrics",
        PUBLIC,
        ("healthz", "metrics"),
        note="/metrics 需令牌（METRICS_TOKEN），未设令牌时仅内网",
    ),
    Section("工作台 /", LOGIN, ("home",)),
    Section("上传看板、记录查询、修正重推、作废 /ops/uploads/", PAGE, ("uploads:*",), _roles("ops")),
    Section("接口目录 /interfaces/", PAGE, ("interfaces", "interface"), _roles("lab", "ops", "admin")),
    Section("字典对照检查 /dictionaries/unmapped/", PAGE, ("dictionaries:*",), _roles("lab", "ops", "admin")),
    Section(
        "检验报告审核与电子签名 /esign/",
        PAGE,
        (
            "esign:home",
            "esign:logout",
            "esign:ukey*",
            "esign:qr*",
            "esign:register",
            "esign:cert_download*",
            "esign:autosign*",
            "esign:review",
            "esign:module",
            "esign:batch",
            "esign:report",
            "esign:sign_data",
            "esign:approve",
            "esign:withdraw",
            "esign:sign_status",
            "esign:verify",
        ),
        _roles("lab"),
    ),
    Section(
        "人员 CA 设置、CA 参数 /esign/staff/ /esign/parameters/",
        PAGE,
        ("esign:staff", "esign:parameters"),
        _roles("admin"),
    ),
    Section(
        "患者互认结果、开单互认演示 /recognition/patients/ /recognition/demo-his/",
        PAGE,
        ("recognition:patients", "recognition:demo-his*"),
        _roles("clinician"),
        note="按证件号查询需填写事由（当前就诊内除外）",
    ),
    Section("互认统计 /recognition/stats/", PAGE, ("recognition:stats",), _roles("clinician", "lab", "ops")),
    Section("调阅审计 /recognition/audit/", PAGE, ("recognition:audit",), _roles("ops")),
    Section("检查报告上传、影像同步、检查日报、重新对照 /exam/", PAGE, ("exam:*",), _roles("lab", "ops")),
    Section(
        "检查日报重报、影像重试与重新扫描",
        PAGE,
        ("exam:daily-run-now", "exam:study-retry", "exam:study-rescan"),
        _roles("ops"),
    ),
    Section(
        "检验报告上传与文件传输 /lab/ /lab/transfers/ /lab/platform/",
        PAGE,
        (
            "lab:reports",
            "lab:report",
            "lab:report-pdf",
            "lab:transfers",
            "lab:requeue",
            "lab:platform-reports",
        ),
        _roles("lab", "ops"),
        note="按证件号查询平台报告列表仅检验科",
    ),
    Section(
        "外院报告 PDF、外院互认结果与实时查询 /lab/platform/pdf /lab/external/",
        PAGE,
        ("lab:platform-pdf", "lab:external"),
        _roles("lab"),
    ),
    Section("电子病历接入说明 /emr/integration/", PAGE, ("emr_sharing:*",), _roles("ops", "admin")),
    Section(
        "电子病历待对照记录 /emr/held/",
        PAGE,
        ("emr_sharing:held", "emr_sharing:held-detail", "emr_sharing:held-release"),
        _roles("ops"),
    ),
    Section(
        "数据质量反馈 /ops/quality/",
        PAGE,
        ("quality:*",),
        _roles("lab", "ops"),
        note="检验科只见并只答复分派给检验科的问题",
    ),
    Section("数据质量反馈的分派 /ops/quality/<编号>/assign", PAGE, ("quality:assign",), _roles("ops")),
    Section("审计日志 /audit/", PAGE, ("audit:*",), _roles("security")),
    Section("系统管理 /admin/", STAFF, ("admin:*",), note="其中可见的模型由各角色的模型权限决定"),
    Section(
        "接口文档（OpenAPI、Swagger）",
        APIDOC,
        (
            "recognition:api-schema",
            "recognition:api-docs",
            "exam_api:schema",
            "exam_api:docs",
            "lab_api:schema",
            "lab_api:docs",
            "emr_api:schema",
            "emr_api:docs",
            "emr_api:record-types",
        ),
        _roles("ops", "admin"),
    ),
    Section(
        "机器接口（医生站、RIS/PACS、LIS、HIS/EMR 接入）/api/ /recognition/api/",
        TOKEN,
        (
            "recognition:api-prompt",
            "recognition:api-events",
            "recognition:api-decisions",
            "recognition:api-results",
            "exam_api:*",
            "lab_api:*",
            "emr_api:*",
        ),
    ),
    Section("嵌入式互认提示页 /recognition/embed/", SIGNED, ("recognition:embed*",)),
    Section(
        "LIS 嵌入式签名页 /esign/embed/<令牌>/", SIGNED, ("esign:embed*",), note="签名人由 UKey 或扫码确认"
    ),
)


class Unlisted(LookupError):
    """A URL name the matrix does not list."""


def section_for(view_name: str) -> Section:
    """The section of a URL name: an exact pattern wins over a wildcard; among wildcards the longest
    (most specific) wins, so ``emr_api:*`` (token) yields to ``emr_api:schema`` (document)."""
    best, best_len = None, -1
    for section in MATRIX:
        for pattern in section.patterns:
            if pattern == view_name:
                return section
            if (
                any(c in pattern for c in "*?[")
                and fnmatchcase(view_name, pattern)
                and len(pattern) > best_len
            ):
                best, best_len = section, len(pattern)
    if best is None:
        raise Unlisted(view_name)
    return best


def view_key(namespace: str, url_name: str | None) -> str:
    """The matrix key of a resolved URL: ``namespace:name``; an unnamed pattern inside a namespace
    is ``namespace:`` (covered by that namespace's wildcard, e.g. the admin's redirects and catch-all);
    an unnamed pattern at the top level has no key and is refused."""
    if namespace:
        return f"{namespace}:{url_name or ''}"
    return url_name or ""


def user_roles(user) -> frozenset[str]:
    """The role codes of a logged-in user: their groups, and ``admin`` for a superuser."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_access_roles", None)
    if cached is None:
        by_name = {r.name: r.code for r in ROLES}
        codes = {by_name[n] for n in user.groups.values_list("name", flat=True) if n in by_name}
        if user.is_superuser:
            codes.add(ROLE_BY_CODE["admin"].code)
        cached = user._access_roles = frozenset(codes)
    return cached


def session_may_open(user, section: Section) -> bool:
    """Whether ``user`` (logged in) reaches ``section`` with their session."""
    if section.kind in (PUBLIC, LOGIN):
        return True
    if section.kind == STAFF:
        return bool(user.is_staff and user.is_active)
    if section.kind in (PAGE, APIDOC):
        return bool(section.roles & user_roles(user))
    return False


def may_open(user, view_name: str) -> bool:
    """For navigation: whether ``user`` would be let through to ``view_name`` (False if unlisted)."""
    try:
        section = section_for(view_name)
    except Unlisted:
        return False
    if section.kind == PUBLIC:
        return True
    return bool(user.is_authenticated) and session_may_open(user, section)


def request_section(request) -> Section:
    """The matrix section of a resolved request, looked up once per request (the access check
    and the parameter guard both ask); Unlisted when the matrix has no entry for it."""
    section = getattr(request, "_access_section", None)
    if section is None:
        match = request.resolver_match
        section = section_for(view_key(match.namespace, match.url_name) if match is not None else "")
        request._access_section = section
    return section


class AccessMiddleware:
    """Enforces ``MATRIX`` by URL name before the view runs (after authentication)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        try:
            section = request_section(request)
        except Unlisted as unlisted:
            log.error("access: URL %s has no entry in the access matrix; refused", unlisted)
            raise PermissionDenied("该页面尚未登记访问权限，已拒绝访问。") from None
        if section.kind in (PUBLIC, TOKEN, SIGNED):
            return None  # the view authenticates the token or the signed link itself
        user = request.user
        if section.kind == APIDOC and not user.is_authenticated and "HTTP_AUTHORIZATION" in request.META:
            return None  # a calling system's token: the document view checks it
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if session_may_open(user, section):
            return None
        raise PermissionDenied("您的角色无权打开此页面。")


# --------------------------------------------------------------------------- the README's table

ANON_CELL = {
    PUBLIC: "✓",
    LOGIN: "登录页",
    STAFF: "登录页",
    PAGE: "登录页",
    APIDOC: "登录页",
    TOKEN: "401/403",
    SIGNED: "签名链接",
}
KIND_LABEL = {
    PUBLIC: "公开",
    LOGIN: "登录",
    STAFF: "后台",
    PAGE: "页面",
    APIDOC: "文档（令牌或会话）",
    TOKEN: "令牌",
    SIGNED: "签名链接",
}


def markdown_table() -> str:
    """Sections × roles, as the README shows it (``manage.py access_matrix`` prints it)."""
    header = ["section", "access", "anonymous", *(ROLE_BY_CODE[c].name for c in ROLE_CODES), "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in MATRIX:
        cells = [s.title, KIND_LABEL[s.kind], ANON_CELL[s.kind]]
        cells += ["✓" if s.role_allowed(c) else "—" for c in ROLE_CODES]
        cells.append(s.note)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
