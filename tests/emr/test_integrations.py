"""Calling systems and tokens (hospital_interop.integrations) and the integrator's pages."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from hospital_interop.integrations.models import CallingSystem
from hospital_interop.integrations.services import hash_token, system_for_token
from hospital_interop.uploads.models import OutboxRecord, State
from tests.emr.conftest import Api

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r"hit_[A-Za-z0-9_-]{40,}")


def test_command_creates_a_system_and_prints_its_token_once(client, rts):
    out = StringIO()
    call_command(
        "create_integration_token", "EMR", name="电子病历系统", interfaces="OP_RECORD,OP_PDF", stdout=out
    )
    token = TOKEN.search(out.getvalue()).group(0)
    system = CallingSystem.objects.get(code="EMR")
    assert system.allowed_interfaces == ["OP_PDF", "OP_RECORD"] and not system.allow_all
    assert system.token_hash == hash_token(token) and token not in str(CallingSystem.objects.values().get())
    api = Api(client, token)
    assert api.post("op-record", rts.get("op-record").example(1)).status_code == 201
    assert OutboxRecord.objects.get().source == "EMR"
    assert api.post("op-visit", rts.get("op-visit").example(1)).status_code == 403

    with pytest.raises(CommandError, match="--rotate"):
        call_command("create_integration_token", "EMR", stdout=StringIO())
    quiet = StringIO()
    call_command("create_integration_token", "EMR", rotate=True, all=True, quiet_token=True, stdout=quiet)
    new_token = quiet.getvalue().strip()
    assert (
        TOKEN.fullmatch(new_token)
        and system_for_token(token) is None
        and system_for_token(new_token).allow_all
    )
    with pytest.raises(CommandError, match="未知的服务编码"):
        call_command("create_integration_token", "X", name="x", interfaces="NOPE", stdout=StringIO())
    with pytest.raises(CommandError, match="--name"):
        call_command("create_integration_token", "NEW", stdout=StringIO())


def test_admin_generates_a_token_shown_once_and_lists_counts_per_system(
    admin_client, his_system, rts, client
):
    lis = CallingSystem.objects.create(
        code="LIS", name="检验系统", allowed_interfaces=["PUB_LAB_REPORT_DETAIL"]
    )
    page = admin_client.post(
        "/admin/integrations/callingsystem/", {"action": "generate_token", "_selected_action": [lis.pk]}
    )
    assert page.status_code == 200
    token = TOKEN.search(page.content.decode()).group(0)
    assert "只显示这一次" in page.content.decode()
    assert (
        Api(client, token)
        .post("pub-lab-report-detail", rts.get("pub-lab-report-detail").example(2))
        .status_code
        == 201
    )

    Api(client, his_system.token).post("op-visit", rts.get("op-visit").example(3))
    OutboxRecord.objects.filter(source="LIS").update(state=State.ATTENTION)
    listing = admin_client.get("/admin/integrations/callingsystem/").content.decode()
    assert "各接入系统的上传记录" in listing
    row = re.search(r"<td>LIS</td>.*?</tr>", listing, re.S).group(0)
    assert re.findall(r"<td>(?:<strong[^>]*>)?(\d+)", row)[:5] == [
        "1",
        "1",
        "0",
        "1",
        "0",
    ]  # total, 24h, waiting, attention, done
    assert admin_client.get(f"/admin/integrations/callingsystem/{lis.pk}/change/").status_code == 200


def test_integrator_page_lists_record_types_with_links(client, make_user, rts):
    make_user(
        "doc-integration", role="clinician"
    )  # integration is the 信息中心's (ops, admin), not a doctor's
    client.login(username="doc-integration", password="pw-for-tests-0")
    assert "电子病历接入" not in client.get("/").content.decode()
    assert client.get("/emr/integration/").status_code == 403
    make_user("integrator", role="ops")
    client.login(username="integrator", password="pw-for-tests-0")
    home = client.get("/").content.decode()
    assert "电子病历接入" in home
    page = client.get("/emr/integration/")
    text = page.content.decode()
    assert page.status_code == 200 and "/api/emr/v1/docs" in text and "/emr/integration/guide" in text
    for rt in rts:
        assert rt.slug in text and rt.spec.code in text
    guide = client.get("/emr/integration/guide").content.decode()
    assert "Authorization: Token" in guide and "全部成功或全部不保存" in guide


def test_ops_see_counts_on_the_integrator_page(client, make_user, his_system):
    make_user("ops1", role="ops")
    client.login(username="ops1", password="pw-for-tests-0")
    assert "各接入系统的上传记录" in client.get("/emr/integration/").content.decode()
