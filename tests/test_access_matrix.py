"""Least privilege as data (issue 15) and pages that fit their users (issue 18): every URL pattern
of the project, requested by anonymous and by a user of each role, answers as the access matrix in
``hospital_interop/access.py`` says; a pattern without an entry fails here; the README's role table
is the matrix; denied pages, the 404 and the 500 are Chinese; navigation shows only what opens."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path, resolve

from hospital_interop import access
from hospital_interop.roles import ROLE_BY_CODE, ROLES

ROOT = Path(__file__).resolve().parent.parent
LOGIN = "/accounts/login/"
WHO = (None, *(r.code for r in ROLES))  # None: anonymous
ENGLISH_ERRORS = ("Forbidden", "Not Found", "Server Error", "Page not found")
# Django's admin has 275 patterns: all are requested by anonymous and by a role the admin refuses;
# a staff role opens the index (inside it the model permissions decide what is listed)
ADMIN_FOR_STAFF = ("admin:index", "admin:app_list")


def walk(resolver=None, ns: tuple[str, ...] = (), route: str = ""):
    """(matrix key, full route) for every leaf pattern, recursively (``access.view_key``)."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            yield from walk(p, ns + ((p.namespace,) if p.namespace else ()), route + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield access.view_key(":".join(ns), p.name), route + str(p.pattern)


def unlisted(resolver=None) -> list[str]:
    """Patterns the matrix does not cover (an unnamed one outside a namespace by its route)."""
    missing = []
    for key, route in walk(resolver):
        try:
            access.section_for(key)
        except access.Unlisted:
            missing.append(key or f"{route} (no name)")
    return missing


# --------------------------------------------------------------------------- the matrix is complete


def test_every_url_pattern_has_exactly_one_entry():
    assert unlisted() == []
    names = [n for n, _ in walk()]
    for name in names:  # an exact name listed by two sections would be ambiguous
        exact = [s.title for s in access.MATRIX if name in s.patterns]
        assert len(exact) <= 1, (name, exact)
    for section in access.MATRIX:  # and no entry is dead
        assert section.kind in access.KINDS
        for pattern in section.patterns:
            hits = [n for n in names if n == pattern or re.fullmatch(_glob(pattern), n)]
            assert hits, f"{section.title}: {pattern} matches no URL"


def _glob(pattern: str) -> str:
    import fnmatch

    return fnmatch.translate(pattern)


def _fake_view(request):
    from django.http import HttpResponse

    return HttpResponse("新页面")


urlpatterns = [  # this module is also a urlconf: the project's, plus a page nobody listed
    path("new-report/", _fake_view, name="new-report"),
    path("unnamed/", _fake_view),
    *get_resolver("hospital_interop.urls").url_patterns,
]


@pytest.mark.urls("tests.test_access_matrix")
def test_a_new_url_without_an_entry_is_reported_and_refused(client, make_user):
    assert unlisted(get_resolver(__name__)) == ["new-report", "unnamed/ (no name)"]
    client.force_login(make_user("ops-new", role="ops"))
    for url in ("/new-report/", "/unnamed/"):
        response = client.get(url)
        assert response.status_code == 403, url  # fails closed, for every role
        assert "无权访问" in response.content.decode()
    assert client.get("/ops/uploads/").status_code == 200  # the listed ones still open


def test_the_readme_table_is_the_matrix():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert access.markdown_table() in readme, "README's role table is stale: paste `manage.py access_matrix`"


# --------------------------------------------------------------------------- every pattern, every role


def sample_url(route: str) -> str:
    """A URL of a route: parameters filled with dummy values (a 404 after the access check is fine),
    a regex's alternation with its first choice (the admin's app labels)."""

    def group(m):
        body = m.group(1)
        return body.split("|")[0] if re.fullmatch(r"[\w|]+", body) else "nope"

    url = re.sub(r"\(/\.\*\)\?", "", route)
    url = re.sub(r"\((?:\?P<\w+>)?([^()]*)\)", group, url)
    url = re.sub(r"<(?:(\w+):)?\w+>", lambda m: "999999" if m.group(1) == "int" else "nope", url)
    return "/" + url.replace("^", "").replace("$", "")


def role_user(make_user, code: str):
    role = ROLE_BY_CODE[code]
    if code == "admin":  # as the demo makes it: a superuser, not a group member
        return make_user(f"u-{code}", is_staff=True, is_superuser=True)
    return make_user(f"u-{code}", role=code, is_staff=role.staff)


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def check(client: Client, who: str | None, name: str, url: str) -> str | None:
    """The outcome of one request against the matrix: None when right, else what went wrong."""
    section = access.section_for(name)
    response = client.get(url)
    status, location = response.status_code, response.get("Location", "")
    to_login = status == 302 and location.startswith(LOGIN)
    if section.kind == access.TOKEN:
        refused = (401, 403, 404) if name == "emr_api:unknown-record-type" else (401, 403)
        if status not in refused or not _is_json(response):
            return f"token API answered {status} {response.get('Content-Type')}"
        return None
    if section.kind == access.SIGNED:
        return None if 400 <= status < 500 else f"signed link page answered {status} without a signature"
    if who is None:
        if section.kind == access.PUBLIC:
            return f"public page answered {status}" if to_login or status == 403 or status >= 500 else None
        if not to_login or "next=" not in location:
            return f"anonymous got {status} {location} instead of the login page"
        return None
    if section.role_allowed(who):
        if status == 405 and not name.endswith("logout"):  # a form's target: posted empty, it reaches
            # the view's own checks (never a logout: the walk goes on with this session)
            response = client.post(url)
            status, location = response.status_code, response.get("Location", "")
            to_login = status == 302 and location.startswith(LOGIN)
        refusal = status == 403 and _is_json(response) and response.json().get("ok") is False
        if to_login or (status == 403 and not refusal) or status >= 500:  # a page's own JSON refusal
            return f"allowed but answered {status} {location}"  # of an empty form is not the access check
        return None
    if status != 403:
        return f"denied but answered {status} {location}"
    body = response.content.decode()
    if "无权访问" not in body or any(e in body for e in ENGLISH_ERRORS):
        return "403 page is not the Chinese one"
    return None


@pytest.mark.parametrize("who", WHO, ids=lambda w: w or "anonymous")
def test_every_url_answers_as_the_matrix_says(db, make_user, who):
    from hospital_interop.uploads.services import note_sweep

    note_sweep()  # /healthz answers 503 when the delivery sweep is late: that is health, not access
    client = Client()
    if who:
        client.force_login(role_user(make_user, who))
    wrong = []
    for name, route in walk():
        if name.startswith("admin:") and name not in ADMIN_FOR_STAFF and who in access.STAFF_ROLES:
            continue
        url = sample_url(route)
        match = resolve(url)
        assert access.view_key(match.namespace, match.url_name) == name, (route, url)  # the sample is right
        problem = check(client, who, name, url)
        if problem:
            wrong.append(f"{name} {url}: {problem}")
    assert wrong == [], "\n".join(wrong)


def test_staff_roles_open_the_admin_index(client, make_user):
    for code in sorted(access.STAFF_ROLES):
        client.force_login(role_user(make_user, code))
        assert client.get("/admin/").status_code == 200, code


def test_a_token_reaches_an_api_document_without_a_session(client):
    """Anonymous browsers go to the login page, but a calling system with a token header reaches
    the document view, which checks the token itself (here: a wrong one, refused)."""
    response = client.get("/api/exam/v1/schema", HTTP_AUTHORIZATION="Token wrong")
    assert response.status_code in (401, 403)


# --------------------------------------------------------------------------- pages of issue 18


@pytest.mark.parametrize("url", ["/ops/uploads/", "/esign/", "/interfaces/", "/dictionaries/unmapped/"])
def test_logged_out_users_get_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == f"{LOGIN}?next={url}"
    assert "登录" in client.get(response["Location"]).content.decode()


def test_a_denied_page_is_chinese(client, make_user):
    client.force_login(make_user("lab-403", role="lab"))
    response = client.get("/ops/uploads/")
    body = response.content.decode()
    assert response.status_code == 403
    assert "无权访问" in body and "检验科" in body and "403 Forbidden" not in body


def test_the_404_page_is_chinese(client, make_user):
    assert "页面不存在" in client.get("/no-such-page/").content.decode()
    client.force_login(make_user("ops-404", role="ops"))
    response = client.get("/ops/uploads/records/999999/")
    body = response.content.decode()
    assert response.status_code == 404 and "页面不存在" in body and "Not Found" not in body


def test_the_500_page_is_chinese():
    from django.template.loader import render_to_string

    body = render_to_string("500.html")
    assert "系统错误" in body and "Server Error" not in body


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href") or ""
        if tag == "a" and href.startswith("/") and not href.startswith("/static/"):
            self.hrefs.append(href.split("#")[0])


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


@pytest.mark.parametrize("code", [r.code for r in ROLES])
def test_each_role_sees_only_links_it_may_open(client, make_user, code):
    """From the home page and from every page a tile leads to, no link answers 403."""
    client.force_login(role_user(make_user, code))
    home = client.get("/").content.decode()
    tiles = _links(home)
    assert tiles, code
    seen, wrong = set(), []
    for page in tiles:
        body = client.get(page)
        if body.status_code == 403:
            wrong.append(f"tile {page}")
            continue
        if "text/html" not in body.get("Content-Type", ""):
            continue
        for link in _links(body.content.decode()):
            if link in seen or (link.startswith("/admin/") and link != "/admin/"):
                continue
            seen.add(link)
            if client.get(link).status_code == 403:
                wrong.append(f"{page} → {link}")
    assert wrong == [], wrong


def test_home_tiles_fit_the_role(client, make_user):
    client.force_login(make_user("lab-tiles", role="lab"))
    lab = client.get("/").content.decode()
    assert "上传看板" not in lab and "/ops/uploads/" not in lab
    client.force_login(make_user("doc-tiles", role="clinician"))
    doctor = client.get("/").content.decode()
    assert "患者互认结果" in doctor
    assert "电子病历接入" not in doctor and "Swagger" not in doctor and "/healthz" not in doctor
    client.force_login(make_user("ops-tiles", role="ops"))
    ops = client.get("/").content.decode()
    assert "上传看板" in ops and "/healthz" in ops and "电子病历接入" in ops


ENGLISH_ERRORS = ("Forbidden", "Not Found", "Server Error", "Page not found", "Traceback")


@pytest.mark.parametrize("code", [r.code for r in ROLES])
def test_the_top_navigation_shows_each_role_its_sections_and_every_link_opens(client, make_user, code):
    """Every page carries the same top navigation, filtered by the matrix: each link the role sees
    answers 200 with no English error text."""
    from hospital_interop.uploads.services import note_sweep

    note_sweep()
    client.force_login(role_user(make_user, code))
    home = client.get("/").content.decode()
    nav = home[home.index('<nav class="topnav"') : home.index("</nav>")]
    links = _links(nav)
    assert len(links) >= (1 if code == "security" else 2), (code, links)
    for link in links:
        response = client.get(link)
        assert response.status_code == 200, (code, link, response.status_code)
        text = response.content.decode()
        assert not any(e in text for e in ENGLISH_ERRORS), (code, link)
