"""The LIS content of one lab report: the intake API's body and the ``report`` of the index file.

Hospital terms throughout (hospital department, doctor staff numbers, LIS item codes, charge
item codes); the mapping to the municipal 3.3 payload happens in ``payloads.py`` through the
dictionaries. One schema serves the REST API (validation and OpenAPI) and the transfer service
(which re-validates the index file, since anyone may drop files into the folder).
"""

from __future__ import annotations

import json

from rest_framework import serializers

from hospital_interop.municipal.gm import sm3_hex
from hospital_interop.municipal.specs import identity_errors, load_catalogue


def _codes(set_id: str) -> list[tuple[str, str]]:
    vs = load_catalogue().value_set(set_id)
    return [(code, name) for code, name in vs.codes.items()]


class PatientIn(serializers.Serializer):
    patientId = serializers.CharField(max_length=32, required=False, allow_blank=True, help_text="HIS 患者ID")
    name = serializers.CharField(max_length=50, help_text="患者姓名")
    sexCode = serializers.ChoiceField(
        choices=_codes("SEX"),
        required=False,
        allow_blank=True,
        help_text="性别代码（GB/T 2261.1）；为空时由身份证号推出",
    )
    birthDate = serializers.RegexField(
        r"^\d{8}$", required=False, allow_blank=True, help_text="出生日期 yyyyMMdd"
    )
    idTypeCode = serializers.ChoiceField(
        choices=_codes("ID_TYPE"), default="01", help_text="身份证件类别代码"
    )
    idNo = serializers.CharField(max_length=32, help_text="身份证件号码")
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True)


class VisitIn(serializers.Serializer):
    visitId = serializers.CharField(max_length=32, help_text="就诊流水号（与互认决定关联）")
    patientTypeCode = serializers.ChoiceField(
        choices=_codes("PATIENT_TYPE"), help_text="1 门诊 2 急诊 3 住院 9 其他"
    )
    outpatientNo = serializers.CharField(max_length=18, required=False, allow_blank=True)
    inpatientNo = serializers.CharField(max_length=18, required=False, allow_blank=True)


class SpecimenIn(serializers.Serializer):
    specimenNo = serializers.CharField(max_length=32, help_text="标本号")
    typeCode = serializers.ChoiceField(choices=_codes("SPECIMEN_TYPE"), help_text="标本类别代码")
    sampledAt = serializers.DateTimeField(help_text="采样时间")
    receivedAt = serializers.DateTimeField(help_text="接收时间")


class StaffIn(serializers.Serializer):
    staffNo = serializers.CharField(max_length=20, help_text="工号")
    name = serializers.CharField(
        max_length=50, required=False, allow_blank=True, help_text="姓名（为空时取医师字典）"
    )


class ItemIn(serializers.Serializer):
    itemCode = serializers.CharField(max_length=20, help_text="院内检验子项代码（检验项目字典）")
    itemName = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="项目名称（为空时取字典名称）"
    )
    result = serializers.CharField(max_length=200, help_text="检验结果（数值或文字，如 6.52、阴性）")
    unit = serializers.CharField(max_length=20, required=False, allow_blank=True)
    referenceRange = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="参考区间"
    )
    abnormalFlag = serializers.ChoiceField(
        choices=_codes("LAB_ABNORMAL_FLAG"),
        default="N",
        help_text="异常标识：N 正常 H 偏高 L 偏低 HH/LL 危急 P 阳性 A 异常",
    )
    testMethod = serializers.CharField(max_length=100, required=False, allow_blank=True)
    remark = serializers.CharField(max_length=200, required=False, allow_blank=True)


class ChargeIn(serializers.Serializer):
    chargeItemCode = serializers.CharField(max_length=20, help_text="收费项目代码（收费项目字典）")
    quantity = serializers.DecimalField(max_digits=8, decimal_places=2, default=1, coerce_to_string=False)
    unitPrice = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        required=False,
        coerce_to_string=False,
        help_text="单价（元）；为空时取收费项目字典",
    )


class NonRecognitionIn(serializers.Serializer):
    recognitionItemCode = serializers.CharField(max_length=20, help_text="互认项目代码 JYnnnn")
    externalOrgCode = serializers.CharField(max_length=22, required=False, allow_blank=True)
    externalReportId = serializers.CharField(max_length=20, required=False, allow_blank=True)
    refusalReasonCode = serializers.ChoiceField(choices=_codes("REFUSAL_REASON"), help_text="不互认原因代码")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)
    doctorName = serializers.CharField(max_length=50)
    decidedAt = serializers.DateTimeField()


class ExternalResultIn(serializers.Serializer):
    recognitionItemCode = serializers.CharField(max_length=20)
    externalOrgCode = serializers.CharField(max_length=22)
    externalOrgName = serializers.CharField(max_length=70)
    externalReportId = serializers.CharField(max_length=20)
    resultValue = serializers.CharField(max_length=200)
    unit = serializers.CharField(max_length=20, required=False, allow_blank=True)
    externalReportAt = serializers.DateTimeField()
    doctorName = serializers.CharField(max_length=50)
    acceptedAt = serializers.DateTimeField()


class LabReportIn(serializers.Serializer):
    """One approved lab report, as the LIS sends it on approval (审核)."""

    reportId = serializers.RegexField(
        r"^[A-Za-z0-9_-]{1,20}$", help_text="检验报告单编号（主键，字母数字，最长20位）"
    )
    applicationId = serializers.CharField(max_length=32, help_text="电子申请单编号")
    reportTitle = serializers.CharField(max_length=100, help_text="报告名称，如 血常规")
    orderIds = serializers.ListField(
        child=serializers.CharField(max_length=32),
        required=False,
        help_text="HIS 医嘱号；用于关联医生的互认决定",
    )
    patient = PatientIn()
    visit = VisitIn()
    requestDept = serializers.CharField(max_length=20, help_text="申请科室（院内科室代码）")
    requestDoctor = serializers.CharField(max_length=20, help_text="申请医师工号（取字典中的执业资格证书号）")
    clinicalDiagnosisCode = serializers.CharField(
        max_length=20, required=False, allow_blank=True, help_text="临床诊断 ICD-10 编码"
    )
    clinicalDiagnosisName = serializers.CharField(max_length=100, required=False, allow_blank=True)
    specimen = SpecimenIn()
    labDept = serializers.CharField(max_length=20, help_text="检验科室（院内科室代码）")
    testDoctor = StaffIn(help_text="检验者")
    reviewDoctor = StaffIn(help_text="审核者")
    reportedAt = serializers.DateTimeField(help_text="报告时间")
    reviewedAt = serializers.DateTimeField(help_text="审核时间")
    items = ItemIn(many=True, allow_empty=False, help_text="检验结果明细")
    chargeItems = ChargeIn(
        many=True, required=False, help_text="收费项明细；为空时按检验子项字典对照的收费项目生成"
    )
    nonRecognitions = NonRecognitionIn(
        many=True,
        required=False,
        allow_null=True,
        help_text="不互认信息；不传时取医生在互认提示页的不互认决定",
    )
    externalResults = ExternalResultIn(
        many=True,
        required=False,
        allow_null=True,
        help_text="医生采纳的外院互认结果；不传时取医生在互认提示页的互认决定",
    )
    remark = serializers.CharField(max_length=300, required=False, allow_blank=True, help_text="报告备注")


def drf_errors(detail, prefix: str = "") -> list[dict]:
    """DRF's nested error dict → the project's ``[{field, rule, message}]``."""
    out: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            out += drf_errors(value, name)
    elif isinstance(detail, list):
        if all(isinstance(v, (str, serializers.ErrorDetail)) for v in detail):
            for v in detail:
                out.append(
                    {"field": prefix, "rule": getattr(v, "code", "invalid") or "invalid", "message": str(v)}
                )
        else:
            for i, value in enumerate(detail):
                if value:
                    out += drf_errors(value, f"{prefix}[{i}]")
    elif detail:
        out.append({"field": prefix, "rule": getattr(detail, "code", "invalid"), "message": str(detail)})
    return out


def normalise(data) -> tuple[dict | None, list[dict]]:
    """Validate LIS content → (normalised JSON-ready content, []) or (None, errors)."""
    s = LabReportIn(data=data)
    if not s.is_valid():
        return None, drf_errors(s.errors)
    content = json.loads(json.dumps(s.data, ensure_ascii=False, default=str))
    if errors := identity_errors(content["patient"]):  # check digit, real dates: as the platform checks them
        return None, errors
    for key in ("nonRecognitions", "externalResults"):  # "not sent" (look them up) differs from []
        if key not in (data or {}) or (data or {}).get(key) is None:
            content[key] = None
    return content, []


def content_hash(content: dict) -> str:
    return sm3_hex(json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())
