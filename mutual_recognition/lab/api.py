"""The LIS intake REST API (OpenAPI: /api/lab/v1/schema, Swagger UI: /api/lab/v1/docs).

    POST /api/lab/v1/reports                       report approved (审核) or re-approved
    POST /api/lab/v1/reports/{reportId}/archive    report archived (归档): PDF + index into the drop folder
    GET  /api/lab/v1/reports/{reportId}            versions, transfer and upload state

Callers are calling systems (``Authorization: Token …``) allowed LAB_REPORT_DETAIL; the view
base, parsing, limits and the one error body (``{"code", "message", "errors": [{field, rule,
message}]}``) are ``hospital_interop.integrations.api``'s. Bad input is rejected whole.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from hospital_interop.integrations.api import ApiError, MachineApiView, field_error

from . import selectors, services
from .intake import LabReportIn

APPROVED = inline_serializer(
    "LabApproved",
    {
        "reportId": serializers.CharField(),
        "version": serializers.IntegerField(),
        "changed": serializers.BooleanField(help_text="false：内容与最新版本相同，未生成新版本"),
        "status": serializers.CharField(help_text="approved / archived"),
        "statusUrl": serializers.CharField(),
    },
)
ARCHIVED = inline_serializer(
    "LabArchived",
    {
        "reportId": serializers.CharField(),
        "version": serializers.IntegerField(),
        "pdfFile": serializers.CharField(),
        "indexFile": serializers.CharField(),
        "written": serializers.BooleanField(help_text="false：该版本此前已归档，未重复写文件"),
        "pdfSm3": serializers.CharField(),
    },
)
ARCHIVE_IN = inline_serializer(
    "LabArchiveRequest",
    {
        "regenerate": serializers.BooleanField(
            required=False, default=False, help_text="重新生成并投递本版本的 PDF 与索引（一般不需要）"
        ),
    },
)


class LabApi(MachineApiView):
    def integration_scope(self, request):
        return "LAB_REPORT_DETAIL"

    def source(self, request) -> str:
        return getattr(request.auth, "code", "") or "LIS"


class ReportCollection(LabApi):
    body_limit = "report"
    error_answers = {400: "报告有误（逐字段错误），什么也没有保存", 409: "就诊等编号属于另一位患者"}

    @extend_schema(
        operation_id="lab_report_approved",
        tags=["检验报告"],
        summary="检验报告审核（含再审核）",
        description=(
            "LIS 在报告审核后提交整份报告（院内代码）。本服务按字典对照出标准科室、申请医师执业资格证书号、"
            "互认项目代码与名称、收费项，并按 3.3 接口规范校验；有误返回 400 与逐字段错误，什么也不保存。"
            "同一报告单号再次提交且内容变化即生成新版本（平台上同一主键的变更）；内容相同返回 200。"
            "不传 nonRecognitions / externalResults 时，取医生在互认提示页对本次就诊（及 orderIds）所做的决定。"
        ),
        request=LabReportIn,
        responses={201: APPROVED, 200: APPROVED},
        examples=[
            OpenApiExample(
                "血常规",
                request_only=True,
                value={
                    "reportId": "JY2026112700001",
                    "applicationId": "SQ0000000001",
                    "reportTitle": "血常规",
                    "orderIds": ["YZ00000001"],
                    "patient": {"name": "张建华", "idTypeCode": "01", "idNo": "110105195102020017"},
                    "visit": {"visitId": "V0000000001", "patientTypeCode": "1", "outpatientNo": "MZ00000001"},
                    "requestDept": "1101",
                    "requestDoctor": "D1002",
                    "specimen": {
                        "specimenNo": "BB00000001",
                        "typeCode": "01",
                        "sampledAt": "2026-11-27T08:05:00+08:00",
                        "receivedAt": "2026-11-27T08:40:00+08:00",
                    },
                    "labDept": "1301",
                    "testDoctor": {"staffNo": "L2001", "name": "周检验"},
                    "reviewDoctor": {"staffNo": "L2002", "name": "吴审核"},
                    "reportedAt": "2026-11-27T10:12:00+08:00",
                    "reviewedAt": "2026-11-27T10:15:00+08:00",
                    "items": [
                        {
                            "itemCode": "WBC",
                            "result": "6.52",
                            "unit": "10^9/L",
                            "referenceRange": "3.5-9.5",
                            "abnormalFlag": "N",
                        },
                        {
                            "itemCode": "HGB",
                            "result": "118",
                            "unit": "g/L",
                            "referenceRange": "130-175",
                            "abnormalFlag": "L",
                        },
                    ],
                },
            )
        ],
    )
    def post(self, request):
        result = services.approve(request.data, source=self.source(request))
        report = result.report
        return Response(
            {
                "reportId": report.report_id,
                "version": result.version.version,
                "changed": result.changed,
                "status": report.status,
                "statusUrl": f"/api/lab/v1/reports/{report.report_id}",
            },
            status=status.HTTP_201_CREATED if result.changed else status.HTTP_200_OK,
        )


class ReportArchive(LabApi):
    error_answers = {404: "报告尚未审核上报", 409: "自审核以来字典已变化，报告内容无法再对照"}

    @extend_schema(
        operation_id="lab_report_archived",
        tags=["检验报告"],
        summary="检验报告归档",
        description=(
            "报告归档：生成报告 PDF（含 HR 互认标识、备注与电子签名）和索引文件，原子写入投递目录；"
            "传输服务随后上传 3.4 PDF 与 3.3 明细，平台接收后清理文件。重复归档同一版本不会重复投递。"
        ),
        request=ARCHIVE_IN,
        responses={202: ARCHIVED, 200: ARCHIVED},
    )
    def post(self, request, report_id: str):
        regenerate = request.data.get("regenerate", False)
        if not isinstance(regenerate, bool):
            raise ApiError.invalid([field_error("regenerate", "type", "regenerate 应为 true 或 false")])
        result = services.archive(report_id, regenerate=regenerate)
        return Response(
            {
                "reportId": report_id,
                "version": result.version.version,
                "pdfFile": result.pdf_path.name,
                "indexFile": result.index_path.name,
                "written": result.written,
                "pdfSm3": result.version.pdf_sm3,
            },
            status=status.HTTP_202_ACCEPTED if result.written else status.HTTP_200_OK,
        )


class ReportStatus(LabApi):
    error_answers = {404: "报告不存在"}

    @extend_schema(
        operation_id="lab_report_status",
        tags=["检验报告"],
        summary="检验报告上传状态",
        description="报告各版本、文件传输状态（已入队 / 平台已接收 / 已清理 / 已隔离）与 3.4、3.3 的上传状态和平台回执。",
        responses={200: OpenApiResponse(description="状态")},
    )
    def get(self, request, report_id: str):
        data = selectors.report_status(report_id)
        if data is None:
            raise ApiError(
                404,
                f"报告 {report_id} 不存在",
                [field_error("reportId", "unknown", f"报告 {report_id} 不存在")],
            )
        return Response(data)
