"""URLs of the RIS/PACS intake API (mounted at /api/exam/) with its OpenAPI schema and Swagger UI."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import api

app_name = "exam_api"
SCHEMA_SETTINGS = {
    "TITLE": "检查（影像）互认 · RIS/PACS 数据接入 API",
    "DESCRIPTION": (
        "RIS/PACS 向本院前置服务提交审核的检查报告、撤回报告和检查影像完成事件；本服务按字典对照院内代码，"
        "经投递引擎上传市平台（检查报告 PDF、检查结果、作废），并以 DICOM C-STORE 推送影像到前置机。\n\n"
        "* 认证：请求头 `Authorization: Token <令牌>`（信息中心在“系统管理 › 接入系统”为 RIS/PACS 生成）；"
        "提交报告和影像事件需允许 EXAM_RESULT_SUBMIT，撤回需允许 EXAM_REPORT_VOID。\n"
        '* 错误：`{"code", "message", "errors": [{"field", "rule", "message"}]}`。\n\n'
        "接入说明：docs/exam-intake.md"
    ),
    "VERSION": "1.0",
    "SCHEMA_PATH_PREFIX": r"/api/exam/v1",
    "POSTPROCESSING_HOOKS": [],
}


class SchemaView(SpectacularAPIView):
    urlconf = "mutual_recognition.exam.schema_urls"
    custom_settings = SCHEMA_SETTINGS

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path("v1/reports", api.ReportIntake.as_view(), name="reports"),
    path("v1/reports/<str:report_id>", api.ReportStatus.as_view(), name="report"),
    path("v1/reports/<str:report_id>/withdraw", api.ReportWithdraw.as_view(), name="withdraw"),
    path("v1/studies", api.StudyEvent.as_view(), name="studies"),
    path("v1/studies/<str:study_uid>", api.StudyStatus.as_view(), name="study"),
    path("v1/schema", SchemaView.as_view(), name="schema"),
    path("v1/docs", SpectacularSwaggerSplitView.as_view(url_name="exam_api:schema"), name="docs"),
]
