"""Decisions: recorded exactly, audited, and delivered to the platform as 2.3.2.3 and 3.2."""

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from hospital_interop.errors import InvalidInput
from hospital_interop.uploads.models import OutboxRecord
from mutual_recognition import services
from mutual_recognition.links import LinkContext, OrderedItem
from mutual_recognition.models import AuditEntry, Decision, Encounter

from .conftest import ITEMS, TOKEN, drain_outbox, prompt_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def prompted(client, recognition, patient):
    answer = client.post(
        reverse("recognition:api-prompt"),
        json.dumps(prompt_body(patient, ITEMS)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    ).json()
    items = tuple(OrderedItem(i["kind"], i["itemCode"], "", i["orderId"]) for i in ITEMS)
    ctx = LinkContext(patient["patientId"], patient["visitId"], "D1001", "1001", items, 0)
    return ctx, {i["orderId"]: i for i in answer["items"]}


def lab_decisions(item, decide):
    return [
        {
            "orderId": item["orderId"],
            "standardCode": r["standardCode"],
            "reportId": r["reportId"],
            **decide(r["standardCode"]),
        }
        for r in item["results"]
    ]


def test_decisions_are_recorded_audited_and_delivered(prompted, recognition):
    ctx, answer = prompted
    ct, us, liver = answer["YZ001"], answer["YZ002"], answer["YZ003"]
    decisions = [
        {
            "orderId": "YZ001",
            "standardCode": "JC0012",
            "reportId": ct["results"][0]["reportId"],
            "decision": "1",
        },
        {
            "orderId": "YZ002",
            "standardCode": "JC0301",
            "reportId": us["results"][0]["reportId"],
            "decision": "2",
            "reasonCode": "3",
        },
        *lab_decisions(
            liver,
            lambda code: (
                {"decision": "1"}
                if code in ("JY0021", "JY0022")
                else {"decision": "2", "reasonCode": "9", "note": "术前复查肝功能"}
            ),
        ),
    ]
    result = services.save_decisions(ctx, decisions)
    orders = {o["orderId"]: o for o in result["orders"]}
    assert orders["YZ001"]["action"] == "cancel"
    assert orders["YZ002"]["action"] == "keep" and orders["YZ002"]["refused"][0]["reasonCode"] == "3"
    assert orders["YZ003"]["action"] == "reduce"
    assert [s["subItemCode"] for s in orders["YZ003"]["keepSubItems"]] == ["TBIL", "ALB"]
    assert [s["subItemCode"] for s in orders["YZ003"]["recognized"]] == ["ALT", "AST"]

    rows = {d.standard_code: d for d in Decision.objects.filter(current=True)}
    assert rows["JC0012"].recognized and rows["JC0012"].charge_avoided == Decimal("180.00")
    assert rows["JC0301"].platform_reason_code == "3" and rows["JC0301"].charge_avoided == 0
    assert rows["JY0021"].charge_avoided == Decimal("5.00")  # ALT has its own charge item
    assert rows["JY0023"].note == "术前复查肝功能" and rows["JY0023"].reason_name.startswith("其他")
    assert rows["JY0021"].std_dept_code == "04.04" and rows["JY0021"].doctor_name == "王建国"
    assert AuditEntry.objects.filter(action="recognized").count() == 3
    assert AuditEntry.objects.filter(action="refused").count() == 3

    linked = OutboxRecord.objects.in_bulk([d.outbox_record_id for d in rows.values()])
    assert len(linked) == 6 and {r.interface for r in linked.values()} == {
        "EXAM_RECOGNITION_SUBMIT",
        "LAB_RECOGNITION_FEEDBACK",
    }
    assert drain_outbox() == 6
    assert set(OutboxRecord.objects.values_list("state", flat=True)) == {"done"}
    exam = {
        r["payload"]["recognitionItemCode"]: r["payload"]
        for r in recognition.records("EXAM_RECOGNITION_SUBMIT")
    }
    assert exam["JC0012"]["decisionCode"] == "1" and exam["JC0012"]["orderId"] == "YZ001"
    assert exam["JC0301"]["decisionCode"] == "2" and exam["JC0301"]["refusalReasonCode"] == "3"
    assert exam["JC0301"]["deptCode"] == "04.04" and exam["JC0301"]["doctorName"] == "王建国"
    lab = {r["payload"]["itemCode"]: r["payload"] for r in recognition.records("LAB_RECOGNITION_FEEDBACK")}
    assert {k: v["decisionCode"] for k, v in lab.items()} == {
        "JY0021": "1",
        "JY0022": "1",
        "JY0023": "2",
        "JY0024": "2",
    }
    assert lab["JY0024"]["refusalReasonCode"] == "9" and lab["JY0024"]["refusalNote"] == "术前复查肝功能"


def test_changing_a_decision_revokes_the_old_one_and_resubmits(prompted, recognition):
    ctx, answer = prompted
    report = answer["YZ001"]["results"][0]["reportId"]
    services.save_decisions(
        ctx, [{"orderId": "YZ001", "standardCode": "JC0012", "reportId": report, "decision": "1"}]
    )
    services.save_decisions(
        ctx,
        [
            {
                "orderId": "YZ001",
                "standardCode": "JC0012",
                "reportId": report,
                "decision": "2",
                "reasonCode": "1",
            }
        ],
    )
    old, new = Decision.objects.order_by("id")
    assert not old.current and old.replaced_by == new and new.current and not new.recognized
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "recognized",
        "revoke_recognized",
        "refused",
    ]
    drain_outbox()
    (record,) = recognition.records("EXAM_RECOGNITION_SUBMIT")
    assert record["payload"]["decisionCode"] == "2"  # same key: the platform holds the latest decision


def test_bad_decisions_are_rejected_whole(prompted):
    ctx, answer = prompted
    report = answer["YZ002"]["results"][0]["reportId"]
    with pytest.raises(InvalidInput) as exc:
        services.save_decisions(
            ctx,
            [
                {
                    "orderId": "YZ002",
                    "standardCode": "JC0301",
                    "reportId": report,
                    "decision": "2",
                },  # no reason
                {
                    "orderId": "YZ009",
                    "standardCode": "JC0301",
                    "reportId": report,
                    "decision": "1",
                },  # not ordered
                {
                    "orderId": "YZ001",
                    "standardCode": "JC0012",
                    "reportId": "NOPE",
                    "decision": "1",
                },  # unknown report
            ],
        )
    assert [e["field"] for e in exc.value.errors] == [
        "decisions[0].reasonCode",
        "decisions[1].orderId",
        "decisions[2].reportId",
    ]
    assert not Decision.objects.exists() and not OutboxRecord.objects.exists()


def test_results_api_for_exam_and_lab_systems(client, prompted):
    ctx, answer = prompted
    services.save_decisions(ctx, lab_decisions(answer["YZ003"], lambda code: {"decision": "1"}))
    r = client.get(
        reverse("recognition:api-results"),
        {"visitId": ctx.visit_id, "kind": "lab"},
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    ).json()
    rows = {row["subItemCode"]: row for row in r["results"]}
    assert set(rows) == {"ALT", "AST", "TBIL", "ALB"}
    alt = rows["ALT"]
    assert (alt["recognitionStatus"], alt["recognitionMark"], alt["standardCode"]) == (
        "recognized",
        "HR",
        "JY0021",
    )
    assert (alt["standardDeptCode"], alt["standardDeptName"]) == ("04.04", "胸外科专业")
    assert alt["chargeItemCode"] == "250305001" and alt["resultValue"]
    decisions = client.get(
        reverse("recognition:api-decisions"), {"visitId": ctx.visit_id}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    ).json()
    assert decisions["orders"][0]["action"] == "cancel"


def test_results_api_takes_the_id_number_in_a_post_body_never_in_the_url(client, prompted, patient):
    ctx, answer = prompted
    services.save_decisions(ctx, lab_decisions(answer["YZ003"], lambda code: {"decision": "1"}))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    url = reverse("recognition:api-results")
    by_body = client.post(
        url,
        json.dumps({"idNo": patient["idNo"].lower(), "kind": "lab"}),
        content_type="application/json",
        **auth,
    )
    assert by_body.status_code == 200
    assert {row["subItemCode"] for row in by_body.json()["results"]} == {"ALT", "AST", "TBIL", "ALB"}
    refused = client.get(url, {"idNo": patient["idNo"]}, **auth)
    assert refused.status_code == 400
    assert (
        refused.json()["errors"][0]["field"] == "idNo" and refused.json()["errors"][0]["rule"] == "location"
    )
    assert "POST" in refused.json()["errors"][0]["message"]
    bad = client.post(
        url, json.dumps({"idNo": ["x"], "visitId": "V" * 40}), content_type="application/json", **auth
    )
    assert bad.status_code == 400 and [e["field"] for e in bad.json()["errors"]] == ["idNo", "visitId"]
    empty = client.post(url, "{}", content_type="application/json", **auth)
    assert empty.status_code == 400 and empty.json()["errors"][0]["rule"] == "required"


def test_patient_view_shows_recognised_results(client, prompted, make_user):
    ctx, answer = prompted
    ct = answer["YZ001"]["results"][0]
    services.save_decisions(
        ctx, [{"orderId": "YZ001", "standardCode": "JC0012", "reportId": ct["reportId"], "decision": "1"}]
    )
    # the visit's own doctor (staff number = user name) looks at their current visit: no reason asked
    staff_no = Encounter.objects.get(visit_id=ctx.visit_id).doctor_staff_no
    client.force_login(make_user(staff_no, role="clinician"))
    page = client.get(reverse("recognition:patients"), {"visitId": ctx.visit_id}).content.decode()
    assert "已互认的外院结果（1）" in page and ct["externalOrgName"] in page and ct["conclusion"] in page
    client.force_login(make_user("doc1", role="clinician"))  # another doctor: a reason first
    page = client.get(reverse("recognition:patients"), {"visitId": ctx.visit_id}).content.decode()
    assert "请选择查询事由" in page and "已互认的外院结果" not in page


def test_patient_view_by_id_number_keeps_the_number_out_of_the_url(client, prompted, patient, make_user):
    ctx, answer = prompted
    ct = answer["YZ001"]["results"][0]
    services.save_decisions(
        ctx, [{"orderId": "YZ001", "standardCode": "JC0012", "reportId": ct["reportId"], "decision": "1"}]
    )
    client.force_login(make_user("doc3", role="clinician"))
    posted = client.post(
        reverse("recognition:patients"), {"idNo": patient["idNo"], "visitId": "", "reason": "referral"}
    )
    assert posted.status_code == 302 and patient["idNo"] not in posted.url and "?p=" in posted.url
    page = client.get(posted.url).content.decode()
    assert "已互认的外院结果（1）" in page and ct["externalOrgName"] in page
    assert patient["idNo"] not in page and patient["idNo"][:6] + "********" in page
    by_hand = client.get(reverse("recognition:patients"), {"idNo": patient["idNo"]}).content.decode()
    assert "已互认的外院结果" not in by_hand  # a number put into the URL by hand searches nothing


def test_demo_his_page_and_home_tiles(client, recognition, make_user):
    client.force_login(make_user("doc2", role="clinician"))
    assert "开立并检查互认" in client.get(reverse("recognition:demo-his")).content.decode()
    home = client.get(reverse("home")).content.decode()
    assert "患者互认结果" in home and "互认统计" in home and "调阅审计" not in home
