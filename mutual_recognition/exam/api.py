"""The RIS/PACS intake REST API (calling-system token auth, OpenAPI from the specs):

    POST /api/exam/v1/reports                        report approved or re-approved (structured content + PDF)
    GET  /api/exam/v1/reports/{reportId}             where the report and its uploads are
    POST /api/exam/v1/reports/{reportId}/withdraw    report withdrawn: void on the platform
    POST /api/exam/v1/studies                        study complete: push its images to the FEP
    GET  /api/exam/v1/studies/{studyInstanceUid}     image-sync progress

The view base, parsing, limits and the error body are ``hospital_interop.integrations.api``'s:
every error answers ``{"code", "message", "errors": [{field, rule, message}]}``.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response

from hospital_interop.integrations.api import ApiError, MachineApiView

from . import mapping, selectors, services
from .models import ExamReport, StudySync
from .openapi import ExamSchema


class ExamApiView(MachineApiView):
    schema = ExamSchema()
    scope = mapping.RESULT
    openapi: dict = {}

    def integration_scope(self, request):
        return self.scope


class ReportIntake(ExamApiView):
    body_limit = "report"  # the report's PDF travels in the body
    openapi = {
        "post": {
            "summary": "提交检查报告（审核 / 重新审核）",
            "description": (
                "RIS 在医生审核（或重新审核）报告后调用。请求体即市平台“检查结果提交服务”的报文（字段、长度、值域见下），"
                "但科室、检查部位填**院内代码**，由本服务按字典对照为标准代码和名称；另附报告 PDF。\n\n"
                "* 全部代码已对照：保存新版本，上传 PDF（实时）与检查结果（按配置频率增量推送），"
                "有 studyInstanceUid 时推送影像到前置机。返回 201（新报告）或 200（新版本，或内容与最新版本相同未重复保存）。\n"
                "* 有院内代码未对照：返回 202，报告保存为“待对照”，**不上传**；`problems` 写明哪个代码未对照。"
                "字典维护后本服务自动重新对照并上传，无需重发。\n"
                "* 报文有误：返回 400 和逐字段错误，什么也不保存。\n\n"
                "主键为 orgCode + reportId：重新提交同一 reportId 即更新平台上的报告。"
            ),
            "request": "ExamReport",
            "responses": {
                201: ("ExamReportStatus", "新报告已保存并排队上传"),
                200: ("ExamReportStatus", "已保存为新版本并排队上传；或与最新版本相同"),
                202: ("ExamReportStatus", "已保存为待对照：有院内代码未对照标准字典，暂不上传"),
            },
            "errors": {400: "报文有误，未保存", 409: "就诊、申请单或报告单号属于另一位患者，未保存"},
        }
    }

    def post(self, request):
        result = services.submit_report(request.data, source=request.auth.code)
        body = {
            **selectors.report_status(result.report),
            "created": result.created,
            "changed": result.changed,
        }
        if result.report.state == ExamReport.State.HELD:
            code = status.HTTP_202_ACCEPTED
        else:
            code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(body, status=code)


class ReportStatus(ExamApiView):
    openapi = {
        "get": {
            "summary": "查询检查报告的上传状态",
            "description": "报告状态（待对照 / 已审核上传 / 已撤回作废）、各项上传（PDF、结果、作废）在市平台的投递状态，以及影像同步进度。",
            "responses": {200: ("ExamReportStatus", "报告状态")},
            "errors": {404: "没有该报告"},
        }
    }

    def get(self, request, report_id: str):
        report = selectors.report_by_id(report_id)
        if report is None:
            raise ApiError(404, f"没有检查报告 {report_id}")
        return Response(selectors.report_status(report))


class ReportWithdraw(ExamApiView):
    scope = mapping.VOID
    openapi = {
        "post": {
            "summary": "撤回检查报告（作废）",
            "description": (
                "RIS 撤回已审核的报告时调用。本服务调用市平台“检查报告作废服务”：尚未上传的版本直接取消，"
                "平台可能已持有时发送作废。请求体为作废报文的业务字段（voidDateTime 可省略，默认当前时间）。"
                "重复撤回返回同样的结果。"
            ),
            "request": "ExamWithdraw",
            "responses": {200: ("ExamReportStatus", "已撤回")},
            "errors": {400: "报文有误", 404: "没有该报告"},
        }
    }

    def post(self, request, report_id: str):
        try:
            services.withdraw_report(report_id, request.data, source=request.auth.code)
        except services.ReportNotFound:
            raise ApiError(404, f"没有检查报告 {report_id}") from None
        return Response(selectors.report_status(selectors.report_by_id(report_id)))


STUDY_FIELDS = ("studyInstanceUid", "imageFolder", "accessionNo", "reportId")
STUDY_LIMITS = {"accessionNo": 32, "reportId": 20, "imageFolder": 500}  # what StudySync stores; never cut


class StudyEvent(ExamApiView):
    openapi = {
        "post": {
            "summary": "检查影像已完成：推送到前置机",
            "description": (
                "PACS/RIS 在检查影像完整后调用（报告审核时带 studyInstanceUid 也会触发）。本服务建立持久的同步任务："
                "从 imageFolder 读取，或按配置以 C-GET / C-MOVE 从 PACS 调取，再以 C-STORE 推送到前置机；"
                "已确认接收的实例不会重发，同一检查再次通知只推送新增实例。"
            ),
            "request": "ExamStudyEvent",
            "responses": {202: ("ExamStudy", "任务已建立或已安排重新扫描")},
            "errors": {400: "报文有误"},
        }
    }

    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            raise ApiError.invalid([{"field": "", "rule": "type", "message": "请求体应为 JSON 对象"}])
        errors = [
            {"field": k, "rule": "unknown", "message": f"未定义的字段 {k}"}
            for k in data
            if k not in STUDY_FIELDS
        ]
        errors += [
            {"field": k, "rule": "type", "message": f"{k} 应为字符串"}
            for k in STUDY_FIELDS
            if k in data and not isinstance(data[k], str)
        ]
        errors += [
            {"field": k, "rule": "length", "message": f"{k} 长度超过上限 {limit} 个字符"}
            for k, limit in STUDY_LIMITS.items()
            if isinstance(data.get(k), str) and len(data[k]) > limit
        ]
        uid = data.get("studyInstanceUid")
        spec_errors = mapping.spec(mapping.RESULT).validate(
            {mapping.STUDY_UID_FIELD: uid}
        )  # its format rule only
        errors += [
            e for e in spec_errors if e["field"] == mapping.STUDY_UID_FIELD and e["rule"] != "required"
        ]
        if not uid:
            errors.append(
                {"field": "studyInstanceUid", "rule": "required", "message": "缺少 studyInstanceUid"}
            )
        folder = data.get("imageFolder") or ""
        if folder and isinstance(folder, str):
            errors += services.check_folder(folder)
        if errors:
            raise ApiError.invalid(errors)
        job = services.ensure_study_job(
            uid,
            folder=folder,
            accession_no=data.get("accessionNo") or "",
            report_id=data.get("reportId") or "",
            source_system=request.auth.code,
        )
        return Response(selectors.study_status(job), status=status.HTTP_202_ACCEPTED)


class StudyStatus(ExamApiView):
    openapi = {
        "get": {
            "summary": "查询影像同步进度",
            "description": "已送达前置机的实例数 / 实例总数、状态、重试时间与最后错误。",
            "responses": {200: ("ExamStudy", "同步进度")},
            "errors": {404: "没有该检查的同步任务"},
        }
    }

    def get(self, request, study_uid: str):
        job = StudySync.objects.filter(study_instance_uid=study_uid).first()
        if job is None:
            raise ApiError(404, f"没有检查 {study_uid} 的影像同步任务")
        return Response(selectors.study_status(job))
