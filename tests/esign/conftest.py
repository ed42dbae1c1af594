"""Real processes for the e-signature tests: the CA simulator and software UKey agents, each on a
free loopback port, plus helpers to register signers and to play the phone app."""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from esign import services
from esign.client import ReferenceVendorClient
from esign.models import SignerProfile
from esign.ukey_agent import create_keystore
from hospital_interop.municipal import gm

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "TEST-LIS-ESIGN"
PIN = "246810"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], url: str, log: Path) -> subprocess.Popen:
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"{args[1]} exited: {log.read_text()}")
        try:
            requests.get(url, timeout=0.5)
            return proc
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{args[1]} did not start: {log.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


_ID_SEQ = itertools.count(1)


def valid_id_number() -> str:
    """A fresh 18-digit resident ID with a correct check digit."""
    body = f"110105{1960 + next(_ID_SEQ) % 40}0{1 + secrets.randbelow(9)}1{secrets.randbelow(9)}{secrets.randbelow(900) + 100:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def fresh_staff_no() -> str:
    return f"T{secrets.token_hex(4).upper()}"


@dataclass
class CASim:
    url: str
    secret: bytes
    dir: Path

    def client(self) -> ReferenceVendorClient:
        return ReferenceVendorClient(self.url, APP_ID, self.secret)

    def _post(self, path: str, body: dict) -> dict:
        answer = requests.post(self.url + path, json=body, timeout=10).json()
        assert answer["code"] == "0", answer
        return answer["data"]

    def scan(self, qr_content: str, staff_no: str, action: str = "confirm") -> dict:
        """The 协同签名 app scans a QR code and the user taps confirm (or refuse)."""
        return self._post("/app/v1/scan", {"qrContent": qr_content, "staffNo": staff_no, "action": action})

    def confirm_sign(self, sign_data_id: str, staff_no: str, action: str = "confirm") -> dict:
        return self._post("/app/v1/sign", {"signDataId": sign_data_id, "staffNo": staff_no, "action": action})

    def revoke(self, cert_sn: str) -> dict:
        return self._post("/sim/v1/revoke", {"certSn": cert_sn})

    def reissue(self, user_id: str, not_before: datetime, not_after: datetime, **extra) -> dict:
        return self._post(
            "/sim/v1/reissue",
            {
                "userId": user_id,
                "notBefore": not_before.isoformat(),
                "notAfter": not_after.isoformat(),
                **extra,
            },
        )

    def grant_auto_sign(self, user_id: str, staff_no: str, minutes: int = 60) -> None:
        task = self.client().enable_auto_sign(user_id=user_id, minutes=minutes)
        self.scan(task.qr_content, staff_no)


@pytest.fixture(scope="session")
def ca_sim(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ca-sim")
    secret_file = folder / "app_secret"
    secret_file.write_text(secrets.token_urlsafe(24))
    port = free_port()
    proc = _start(
        [
            "-m",
            "simulators.ca",
            "--port",
            str(port),
            "--db",
            str(folder / "ca.sqlite3"),
            "--app-id",
            APP_ID,
            "--app-secret-file",
            str(secret_file),
            "--log-level",
            "WARNING",
        ],
        f"http://127.0.0.1:{port}/healthz",
        folder / "ca.log",
    )
    yield CASim(f"http://127.0.0.1:{port}", secret_file.read_text().encode(), folder)
    _stop(proc)


@dataclass
class Identity:
    """A signer known to the CA: CA user, collaborative-signing certificate, optionally a UKey."""

    name: str
    staff_no: str
    id_number: str
    ca_user_id: str
    cert_sn: str
    ukey_serial: str = ""
    agent_url: str = ""
    ukey_key: gm.SM2PrivateKey | None = None
    ukey_cert_sn: str = ""
    keystore: Path | None = None


def new_identity(ca_sim: CASim, name: str) -> Identity:
    staff_no, id_number = fresh_staff_no(), valid_id_number()
    info = ca_sim.client().add_user(name=name, id_number=id_number, staff_no=staff_no, mobile="13900000000")
    return Identity(name, staff_no, id_number, info.user_id, info.cert_sn)


def start_agent(
    ca_sim: CASim,
    ident: Identity,
    folder: Path,
    *,
    extra_certs: list[bytes] = (),
    allow_origins: list[str] = (),
    idle_logout: float | None = None,
) -> subprocess.Popen:
    """Issue a UKey certificate for ``ident``, write its keystore and serve it on a free loopback port.

    ``allow_origins`` are the page origins the agent answers (``--allow-origin``); none given means
    the agent's default. ``idle_logout`` is the agent's idle log-out in seconds."""
    key = gm.generate_sm2_key()
    serial = f"UK{secrets.token_hex(6).upper()}"
    info = ca_sim.client().apply_ukey_certificate(
        user_id=ident.ca_user_id, public_key_hex=key.public_key().hex, key_serial=serial
    )
    keystore = folder / f"{serial}.json"
    create_keystore(
        keystore,
        pin=PIN,
        key=key,
        serial=serial,
        certificates=[base64.b64decode(info.certificate), *extra_certs],
        label=ident.name,
    )
    port = free_port()
    options = [arg for origin in allow_origins for arg in ("--allow-origin", origin)]
    if idle_logout is not None:
        options += ["--idle-logout", str(idle_logout)]
    proc = _start(
        ["-m", "esign.ukey_agent", "serve", "--keystore", str(keystore), "--port", str(port), *options],
        f"http://127.0.0.1:{port}/api/v1/status",
        folder / f"{serial}.log",
    )
    ident.ukey_serial, ident.agent_url, ident.ukey_key, ident.ukey_cert_sn, ident.keystore = (
        serial,
        f"http://127.0.0.1:{port}",
        key,
        info.cert_sn,
        keystore,
    )
    return proc


def _two_signers(ca_sim: CASim, folder: Path, allow_origins: list[str] = ()):
    alice, bob = new_identity(ca_sim, "王审核"), new_identity(ca_sim, "李签名")
    procs = [start_agent(ca_sim, ident, folder, allow_origins=allow_origins) for ident in (alice, bob)]
    yield {"alice": alice, "bob": bob}
    for p in procs:
        _stop(p)


@pytest.fixture(scope="session")
def identities(ca_sim, tmp_path_factory):
    """Two signers with a UKey agent each (session-wide: the CA and the agents outlive each test's DB).

    Tests call these agents as a local program (no `Origin`), which the agent serves."""
    yield from _two_signers(ca_sim, tmp_path_factory.mktemp("ukeys"))


@pytest.fixture(scope="session")
def page_identities(ca_sim, live_server, tmp_path_factory):
    """Like ``identities``, for the browser: the agents allow the live server's pages, whose origin
    Chromium sends (as a hospital's agent is configured with the server's origin)."""
    yield from _two_signers(ca_sim, tmp_path_factory.mktemp("page-ukeys"), allow_origins=[live_server.url])


@pytest.fixture
def ca_on(db, settings, ca_sim):
    """CA enabled in the unified code table and pointed at the simulator."""
    settings.CA_SERVER = {**settings.CA_SERVER, "BASE_URL": ca_sim.url}
    services.set_parameters(
        {"CA_ENABLED": "1", "CA_APP_ID": APP_ID, "CA_SECRET": ca_sim.secret.decode()}, actor="test"
    )
    return ca_sim


@pytest.fixture
def signer(make_user):
    """A Django lab user bound to a CA identity (profile as registration + staff management leave it)."""

    def make(username: str, ident: Identity, *, bind_ukey: bool = True, ca_enabled: bool = True, **extra):
        user = make_user(username, role="lab", **extra)
        SignerProfile.objects.create(
            user=user,
            staff_no=ident.staff_no,
            name=ident.name,
            ca_user_id=ident.ca_user_id,
            cert_sn=ident.cert_sn,
            id_number_masked=ident.id_number[:6] + "********" + ident.id_number[-4:],
            ukey_serial=ident.ukey_serial if bind_ukey and ident.ukey_serial else None,
            ca_enabled=ca_enabled,
        )
        return user

    return make


def agent_call(ident: Identity, path: str, body: dict | None = None) -> dict:
    url = ident.agent_url + path
    r = requests.post(url, json=body, timeout=10) if body is not None else requests.get(url, timeout=10)
    return r.json()


def agent_sign(ident: Identity, data: str, *, cert_sn: str = "", pin: str = PIN) -> dict:
    """Sign one Base64 item as a one-item batch with the PIN (the agent's contract: the PIN with every
    batch); the agent's answer plus ``signature``, the item's signature."""
    answer = agent_call(
        ident, "/api/v1/sign", {"certSn": cert_sn or ident.ukey_cert_sn, "pin": pin, "items": [data]}
    )
    assert len(answer.get("signatures", [])) == 1, answer
    return {**answer, "signature": answer["signatures"][0]}


def past(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Test users' passwords need no 1,000,000-round PBKDF2 here; it dominated these tests' time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
