"""Issue 18: each role, logged in with Chromium, opens every navigation link it sees — the top
navigation bar (templates/base.html) and the home page's tiles (hospital_interop/navigation.py),
both filtered by the access matrix (hospital_interop/access.py) — and each answers 200 without
English error text. A full-page screenshot of the home page and of each of those pages is kept
under ``var/screenshots/<role>/<page>.png`` (a CI artifact; tests/test_access_matrix.py checks the
same links with the test client, and every URL against the matrix).

One browser for the module, one context per role: the role's login and nothing else is shared.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hospital_interop.roles import ROLES
from tests.test_access_matrix import role_user

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "pw-for-tests-0"
ENGLISH_ERRORS = ("Forbidden", "Not Found", "Server Error", "Page not found", "Traceback", "Bad Request")


def page_name(url: str) -> str:
    """``/ops/uploads/records/`` → ``ops-uploads-records``; the home page → ``home``."""
    path = urlsplit(url).path.strip("/")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", path) or "home"


def links_of(page, selector: str) -> list[str]:
    hrefs = page.eval_on_selector_all(selector, "els => els.map(a => a.getAttribute('href'))")
    return [h.split("#")[0] for h in hrefs if h and h.startswith("/")]


@pytest.mark.browser
@pytest.mark.parametrize("code", [r.code for r in ROLES])
def test_each_role_opens_its_navigation_in_chromium(live_server, browser, make_user, code):
    from hospital_interop.uploads.services import note_sweep

    user = role_user(make_user, code)
    folder = SCREENSHOTS / code
    shutil.rmtree(folder, ignore_errors=True)  # pages the role no longer sees leave no stale picture
    folder.mkdir(parents=True)
    base = live_server.url
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        page.screenshot(path=str(folder / "home.png"), full_page=True)
        nav = links_of(page, "nav.topnav a[href]")
        tiles = links_of(page, "main a[href]")
        assert len(nav) >= (1 if code == "security" else 2), (code, nav)
        assert tiles, code
        opened, wrong = [], []
        for link in dict.fromkeys(nav + tiles):  # each page once, in the order shown
            note_sweep()  # no celery beat runs here; /healthz answers 503 when the sweep is late
            response = page.goto(base + link)
            text = page.inner_text("body")
            if response is None or response.status != 200:
                wrong.append(f"{link}: HTTP {response and response.status}")
            elif any(e in text for e in ENGLISH_ERRORS):
                wrong.append(f"{link}: English error text")
            name = page_name(link)
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            opened.append(name)
        assert wrong == [], (code, wrong)
    finally:
        context.close()
    assert sorted(p.stem for p in folder.glob("*.png")) == sorted({"home", *opened})
