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

from esign import embed
from hospital_interop.integrations.api import ApiError, MachineApiView, field_error
from hospital_interop.params import small_int

from . import intake, reviews, selectors, services
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


REVIEW_SUBMITTED = inline_serializer(
    "LabReviewSubmitted",
    {
        "reportId": serializers.CharField(),
        "version": serializers.IntegerField(help_text="本次提交对应的报告版本"),
        "changed": serializers.BooleanField(help_text="false：内容与最新版本相同，未生成新版本"),
        "module": serializers.CharField(help_text="审核模块代码"),
        "moduleName": serializers.CharField(),
        "reviewStatus": serializers.CharField(help_text="pending / signing / approved / superseded"),
        "reviewUrl": serializers.CharField(help_text="本系统审核页面"),
        "statusUrl": serializers.CharField(help_text="审核与签名状态（LIS 轮询）"),
        "signingLinkUrl": serializers.CharField(help_text="申请嵌入式签名页链接"),
    },
)
SIGNING_LINK_IN = inline_serializer(
    "LabSigningLinkRequest",
    {
        "origin": serializers.CharField(
            help_text="LIS 审核界面的源（如 https://lis.hospital.local）：签名页只向该源 postMessage、只允许被该源嵌入"
        ),
    },
)
SIGNING_LINK = inline_serializer(
    "LabSigningLink",
    {
        "url": serializers.CharField(help_text="签名页地址（嵌入 iframe 或新窗口打开）；不含患者信息"),
        "expiresAt": serializers.CharField(),
        "statusUrl": serializers.CharField(),
    },
)

REVIEW_EXAMPLE = {
    "module": "clinical",
    "version": 1,
    "reviewers": [{"staffNo": "L2002", "name": "吴审核"}, {"staffNo": "L2003", "name": "郑审核"}],
    "reportId": "JY2026112700001",
    "applicationId": "SQ0000000001",
    "reportTitle": "血常规",
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
    "items": [{"itemCode": "WBC", "result": "6.52", "unit": "10^9/L", "referenceRange": "3.5-9.5"}],
}


def _review_answer(report_id: str, version: int, review, *, changed: bool) -> dict:
    base = f"/api/lab/v1/reviews/{report_id}/{version}"
    return {
        "reportId": report_id,
        "version": version,
        "changed": changed,
        "module": review.module,
        "moduleName": review.get_module_display(),
        "reviewStatus": review.status,
        "reviewUrl": f"/esign/reports/{review.pk}/",
        "statusUrl": base,
        "signingLinkUrl": f"{base}/signing-link",
    }


class ReviewCollection(LabApi):
    body_limit = "report"
    error_answers = {
        400: "报告或审核字段有误（逐字段错误），什么也没有保存",
        409: "version 与内容对应的版本不一致、该版本已在其他审核模块，或编号属于另一位患者",
    }

    @extend_schema(
        operation_id="lab_review_submitted",
        tags=["检验报告审核"],
        summary="提交检验报告待审核（审核模块改造）",
        description=(
            "LIS 把待审核的报告提交到本系统的审核模块（临检、免疫、生化组、分子生物、微生物、临检骨髓组）。"
            "请求体即“检验报告审核”接口的整份报告（同一校验：字典对照、3.3 接口规范），另加："
            "`module` 审核模块（代码 clinical / immuno / biochem / molecular / micro / marrow 或中文名）、"
            "`version` 报告版本号（可选；给出时须与内容对应的版本一致：内容变化即新版本 n+1，内容相同仍为 n）、"
            "`reviewers` 候选审核者 [{staffNo, name}]（可选；reviewDoctor 须在其中，只有报告所列审核者本人能签名）。"
            "文字结果（如微生物培养结果、骨髓形态描述）写在 items[].result 与 remark 中。\n\n"
            "报告随即出现在该模块的待审核列表；审核并电子签名后，本服务自动归档（PDF 与索引含可见签名）并上传 3.4、3.3"
            "（及公共数据接口），LIS 无需再调用归档接口。审核签名状态、签名值、证书与时间戳见 statusUrl。"
            "重复提交相同内容返回 200；内容变化生成新版本并返回 201，旧版本未审核的离开待审核列表。"
        ),
        request=inline_serializer(
            "LabReviewRequest",
            {
                "module": serializers.CharField(help_text="审核模块"),
                "version": serializers.IntegerField(required=False, help_text="报告版本号"),
                "reviewers": intake.StaffIn(many=True, required=False, help_text="候选审核者"),
                "report": LabReportIn(help_text="（字段与检验报告审核接口相同，直接写在请求体顶层）"),
            },
        ),
        responses={201: REVIEW_SUBMITTED, 200: REVIEW_SUBMITTED},
        examples=[OpenApiExample("临检报告", request_only=True, value=REVIEW_EXAMPLE)],
    )
    def post(self, request):
        result = reviews.submit_for_review(request.data, source=self.source(request))
        return Response(
            _review_answer(
                result.report.report_id, result.version.version, result.review, changed=result.changed
            ),
            status=status.HTTP_201_CREATED if result.changed else status.HTTP_200_OK,
        )


def _version(value: str) -> int:
    version = small_int(value, 999_999)
    if version is None:
        raise ApiError.invalid([field_error("version", "type", "version 应为正整数")])
    return version


def _not_submitted(report_id: str, version: int) -> ApiError:
    message = f"报告 {report_id} 第 {version} 版未提交审核"
    return ApiError(404, message, [field_error("version", "unknown", message)])


class ReviewStatus(LabApi):
    error_answers = {400: "version 不是正整数", 404: "该报告版本未提交审核"}

    @extend_schema(
        operation_id="lab_review_status",
        tags=["检验报告审核"],
        summary="审核与签名状态（LIS 轮询）",
        description=(
            "报告版本的审核状态（pending 待审核 / signing 待手机确认 / approved 已审核 / superseded 已被新版本取代）；"
            "已签名时返回签名：签名值（Base64，SM3withSM2）、签名证书（Base64 DER）、证书序列号、签名原文及其 SM3、"
            "签名人、签名时间与可信时间戳；以及该版本的归档与上传状态。本系统审核页与嵌入式签名页的签名都在此返回。"
        ),
        responses={200: OpenApiResponse(description="状态")},
    )
    def get(self, request, report_id: str, version: str):
        number = _version(version)
        data = selectors.review_status(report_id, number)
        if data is None:
            raise _not_submitted(report_id, number)
        return Response(data)


class ReviewSigningLink(LabApi):
    error_answers = {
        400: "version 不是正整数",
        404: "该报告版本未提交审核",
        409: "该版本已审核或已被新版本取代",
    }

    @extend_schema(
        operation_id="lab_review_signing_link",
        tags=["检验报告审核"],
        summary="嵌入式签名页链接",
        description=(
            "为 LIS 自己的审核界面生成一个签名页链接（限时，默认 30 分钟）：在 iframe 中嵌入或新窗口打开，"
            "页面显示该版本报告、要求插入 UKey 输入 PIN 码或扫码（协同签名 APP）签名，完成后以 postMessage 把签名值、"
            "证书与时间戳发给 origin 指定的 LIS 页面（仅此源），LIS 亦可轮询 statusUrl。"
            "签名与本系统审核页的签名存为同一份记录，审核通过后同样自动归档并上传。"
        ),
        request=SIGNING_LINK_IN,
        responses={201: SIGNING_LINK},
    )
    def post(self, request, report_id: str, version: str):
        number = _version(version)
        link = embed.signing_link(report_id, number, request.data.get("origin"))
        if link is None:
            raise _not_submitted(report_id, number)
        return Response(
            {**link, "statusUrl": f"/api/lab/v1/reviews/{report_id}/{number}"}, status=status.HTTP_201_CREATED
        )
