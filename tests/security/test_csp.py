"""Content-Security-Policy on every page (django-csp): every response of every parameterless URL,
for every role and anonymous, carries the site policy (no inline script without the nonce); the
recognition prompt's framing is the one exception, from RECOGNITION_FRAME_ANCESTORS. In Chromium
the main pages of each role load without one securitypolicyviolation."""

import re

import pytest
from django.urls import URLResolver, get_resolver

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.roles import ROLES
from hospital_interop.uploads import services
from hospital_interop.uploads.models import OutboxRecord, State

pytestmark = pytest.mark.django_db

# GETs that would talk to the CA or the platform without the simulators: their pages are covered by
# tests/esign and tests/lab with those simulators running (the header comes from the same middleware).
SKIP = {"metrics", "accounts/logout/"}


def _routes(resolver=None, prefix=""):
    for p in (resolver or get_resolver()).url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            if not route.startswith("admin/"):
                yield from _routes(p, route)
        elif not re.search(r"[<^(]", route) and route not in SKIP:
            yield "/" + route


ADMIN_PAGES = [
    "/admin/",
    "/admin/auth/user/",
    "/admin/auth/user/add/",
    "/admin/dictionaries/hospitaldepartment/import/",
    "/admin/django_celery_beat/periodictask/add/",
    "/admin/axes/accessattempt/",
]


def _policy(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy", "")
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def _assert_site_policy(path, response):
    policy = _policy(response)
    assert policy, f"{path} ({response.status_code}) has no Content-Security-Policy"
    assert policy["default-src"] == ["'self'"], path
    scripts = policy["script-src"]
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, path
    assert all(s == "'self'" or s.startswith("'nonce-") for s in scripts), (path, scripts)
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"], path


@pytest.fixture
def users(make_user):
    out = {"anonymous": None}
    for role in ROLES:
        out[role.code] = make_user(f"csp-{role.code}", role=role.code, is_staff=role.code == "admin")
    out["superuser"] = make_user("csp-root", is_staff=True, is_superuser=True)
    return out


def test_every_page_for_every_role_carries_the_policy(client, users):
    routes = list(_routes())
    assert len(routes) > 50
    html_pages = 0
    for name, user in users.items():
        client.logout()
        if user is not None:
            client.force_login(user)
        for path in routes + (ADMIN_PAGES if name == "superuser" else []):
            response = client.get(path)
            _assert_site_policy(f"{name} {path}", response)
            if response.get("Content-Type", "").startswith("text/html") and response.status_code == 200:
                html_pages += 1
                body = response.content.decode()
                inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", body)
                nonce = _policy(response)["script-src"]
                for tag in inline:  # every inline script carries this response's nonce
                    assert f'nonce="{nonce[-1][7:-1]}"' in tag, (name, path, tag)
                assert not re.search(r"\son[a-z]+=\"", body), (name, path)  # no inline event handlers
    assert html_pages > 60


def test_pages_may_not_be_framed_except_the_prompt(client, users, settings):
    client.force_login(users["superuser"])
    assert _policy(client.get("/"))["frame-ancestors"] == ["'none'"]
    assert client.get("/")["X-Frame-Options"] == "DENY"
    settings.RECOGNITION_FRAME_ANCESTORS = "https://his.hospital.example http://10.1.1.8:8080"
    response = client.get("/recognition/embed/prompt?t=invalid")  # refused link: same headers
    policy = _policy(response)
    assert policy["frame-ancestors"] == ["'self'", "https://his.hospital.example", "http://10.1.1.8:8080"]
    assert "X-Frame-Options" not in response
    _assert_site_policy("embed", response)


def test_esign_pages_may_reach_the_ukey_agent(client, users):
    from esign.selectors import parameter

    origin = re.match(r"https?://[^/]+", parameter("UKEY_AGENT_URL")).group(0)
    client.force_login(users["lab"])
    assert origin in _policy(client.get("/esign/"))["connect-src"]
    assert _policy(client.get("/"))["connect-src"] == ["'self'"]


# --------------------------------------------------------------------------- in Chromium

LISTEN = """window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " @" + e.sourceFile + ":" + e.lineNumber);
});"""

BROWSER_PAGES = {
    "ops": [
        "/",
        "/ops/uploads/",
        "/ops/uploads/records/",
        "/exam/",
        "/exam/images/",
        "/exam/daily/",
        "/interfaces/",
        "/lab/transfers/",
        "/dictionaries/unmapped/",
        "/recognition/stats/",
        "/api/exam/v1/docs",
        "/emr/integration/",
        "/emr/held/",
        "/ops/quality/",
    ],
    "lab": ["/", "/lab/", "/esign/", "/esign/review/", "/esign/ukey/", "/lab/external/"],
    "clinician": ["/", "/recognition/patients/", "/recognition/demo-his/", "/recognition/stats/"],
    "security": ["/", "/audit/"],
    "superuser": [
        "/admin/",
        "/admin/auth/user/add/",
        "/admin/dictionaries/hospitaldepartment/import/",
        "/admin/django_celery_beat/periodictask/add/",
        "/recognition/api/docs",
        "/api/lab/v1/docs",
        "/api/emr/v1/docs",
    ],
}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_main_pages_load_in_chromium_without_a_policy_violation(browser, live_server, make_user):
    password = "Csp-browser-2026"
    seen = {}
    for role, paths in BROWSER_PAGES.items():
        extra = {"is_staff": True, "is_superuser": True} if role == "superuser" else {}
        make_user(f"csp-b-{role}", role=None if role == "superuser" else role, password=password, **extra)
        context = browser.new_context(locale="zh-CN")
        context.add_init_script(LISTEN)
        page = context.new_page()
        console: list[str] = []

        def on_console(message, console=console):
            if "Content Security Policy" in message.text:
                console.append(message.text)

        page.on("console", on_console)
        page.goto(live_server.url + "/accounts/login/")
        page.fill("#id_username", f"csp-b-{role}")
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        for path in paths:
            response = page.goto(live_server.url + path)
            assert response.status == 200, (role, path, response.status)
            page.wait_for_load_state("networkidle")
            seen[(role, path)] = page.evaluate("window.__csp")
        context.close()
        assert console == [], (role, console)
    violations = {k: v for k, v in seen.items() if v}
    assert violations == {}
    assert len(seen) == sum(len(p) for p in BROWSER_PAGES.values())


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_scripts_still_work_under_the_policy(browser, live_server, make_user):
    """app.js replaced the inline handlers: "select all" and the confirm before a void still act."""
    spec = load_catalogue().interface("OP_REGISTRATION")
    for seed in (1, 2):
        services.enqueue("OP_REGISTRATION", spec.example(seed))
    make_user("csp-ops", role="ops", password="Csp-browser-2026")
    context = browser.new_context(locale="zh-CN")
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "csp-ops")
    page.fill("#id_password", "Csp-browser-2026")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + "/ops/uploads/")
    box = page.locator("#autorefresh")
    assert box.is_checked()
    box.uncheck()
    assert page.evaluate("localStorage.getItem('uploads.autorefresh')") == "0"

    page.goto(live_server.url + "/ops/uploads/records/")
    page.check("#checkall")
    assert page.locator("input[name=ids]").count() == 2
    assert all(b.is_checked() for b in page.locator("input[name=ids]").all())
    page.fill("input[name=reason]", "测试作废")
    page.once("dialog", lambda d: d.dismiss())  # the confirm of data-confirm, answered "cancel"
    page.click("button[formaction$='/cancel']")
    assert page.url.endswith("/ops/uploads/records/")
    assert not OutboxRecord.objects.filter(state=State.VOIDED).exists()
    page.once("dialog", lambda d: d.accept())
    with page.expect_navigation():
        page.click("button[formaction$='/cancel']")
    assert OutboxRecord.objects.filter(state=State.VOIDED).count() == 2
    assert page.evaluate("window.__csp") == []
    context.close()
