"""Fixtures of the recognition tests: dictionaries, API token, a patient with known external
results on the simulator, and helpers to call the prompt API and drain the outbox."""

from __future__ import annotations

import uuid

import pytest

TOKEN = "test-recognition-token"
PATIENT_ID_NO = "11010519700307121X"


def resident_id(seed: int) -> str:
    """A valid GB 11643 resident ID, different per seed."""
    first17 = f"110105{1950 + seed % 50:04d}{1 + seed % 12:02d}{1 + seed % 28:02d}{seed % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]
    return first17 + check


def his_system(token: str, scopes=("recognition.prompt", "recognition.results")):
    """A calling system holding ``token`` (the way integrations migration 0002 carries old tokens over)."""
    from hospital_interop.integrations.models import CallingSystem
    from hospital_interop.integrations.services import hash_token

    return CallingSystem.objects.create(
        code=f"HIS-{uuid.uuid4().hex[:6]}",
        name="医生站",
        allowed_interfaces=list(scopes),
        token_hash=hash_token(token),
        token_hint=token[:4],
    )


@pytest.fixture
def recognition(settings, platform_settings, sim):
    """Dictionaries loaded, a fresh mapping snapshot, the API token, the platform client reset."""
    from dictionaries import demo
    from hospital_interop.uploads import tasks
    from mutual_recognition import snapshot

    demo.load_all()
    snapshot.reset()
    his_system(TOKEN)
    settings.RECOGNITION_LINK_SECRET = "link-secret-for-tests"
    tasks._client = None
    yield sim
    snapshot.reset()
    tasks._client = None


@pytest.fixture
def patient(sim):
    """A new patient whose external results are exactly: 肝功能 + 血常规 (lab), 胸部CT + 甲状腺超声 (exam)."""
    n = uuid.uuid4().int % 10**6
    id_no = resident_id(n)
    seeded = sim.seed(
        id_no, name="张伟", lab=["肝功能", "血常规"], exam=["JC0012", "JC0301"], daysAgo=3, replace=True
    )
    return {
        "idNo": id_no,
        "name": "张伟",
        "patientId": f"P{n:06d}",
        "visitId": f"V{uuid.uuid4().hex[:12]}",
        "seeded": seeded,
    }


def prompt_body(p: dict, items: list[dict], doctor: str = "D1001", dept: str = "1001") -> dict:
    return {
        "patient": {"patientId": p["patientId"], "name": p["name"], "idTypeCode": "01", "idNo": p["idNo"]},
        "visit": {"visitId": p["visitId"], "patientTypeCode": "1", "outpatientNo": "MZ" + p["visitId"][-8:]},
        "doctor": doctor,
        "dept": dept,
        "items": items,
    }


ITEMS = [
    {"kind": "exam", "itemCode": "CT0012", "orderId": "YZ001"},
    {"kind": "exam", "itemCode": "US0301", "orderId": "YZ002"},
    {"kind": "lab", "itemCode": "GGN", "orderId": "YZ003"},
    {"kind": "lab", "itemCode": "XCG", "orderId": "YZ004"},
    {"kind": "exam", "itemCode": "MR0121", "orderId": "YZ005"},
]


def drain_outbox(max_rounds: int = 20) -> int:
    """Deliver every due outbox row inline (the worker's code path)."""
    from hospital_interop.uploads import tasks

    sent = 0
    for _ in range(max_rounds):
        n = tasks.deliver()
        sent += n
        if not n:
            break
    return sent
