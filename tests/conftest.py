import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.platform_fixtures", "tests.delivery_fixtures"]

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from that
# thread are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts"


@pytest.fixture(scope="session", autouse=True)
def _at_rest_keys():
    """The data keys and the patient digest key where the settings name them, as ``manage.py
    setup_keys`` makes them at set-up (under var/test/keys: the worker and transfer processes the
    tests start read the same files)."""
    from django.conf import settings

    from hospital_interop.keys import ensure_at_rest_keys

    ensure_at_rest_keys(Path(settings.DATA_KEY_DIR), Path(settings.PATIENT_DIGEST_KEY_FILE))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def artifacts_dir():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session", autouse=True)
def _audit_key():
    """Every read of patient data appends to the audit trail, whose HMAC-SM3 key ``manage.py
    setup_keys`` generates at set-up: the suite makes it the same way (where settings.AUDIT says,
    under the test var folder, so that processes the tests start find it too)."""
    from django.conf import settings

    from hospital_interop.keys import ensure_key_file

    ensure_key_file(Path(settings.AUDIT["KEY_FILE"]))


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from hospital_interop.roles import ROLE_BY_CODE

    def make(username, role=None, password="pw-for-tests-0", **extra):
        user = get_user_model().objects.create_user(username=username, password=password, **extra)
        if role:
            user.groups.add(Group.objects.get(name=ROLE_BY_CODE[role].name))
        return user

    return make


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    """Delivery policies are cached per process for a few seconds; a rolled-back test must not leak its own."""
    from hospital_interop.integrations.services import forget_lookups
    from hospital_interop.uploads.services import forget_policies

    forget_policies()
    forget_lookups()
    yield
    forget_policies()
    forget_lookups()


class PrivateRedis:
    """A redis-server of this test's own on a free port, which the test may stop and start again
    (the shared one on 6379 is never touched)."""

    def __init__(self, folder: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.folder, self.proc = folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import subprocess
        import time

        import redis

        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()
