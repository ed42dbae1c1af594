"""The LIS intake API and its own OpenAPI document (see api.py)."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import api

app_name = "lab_api"
PREFIX = "api/lab/v1/"
SCHEMA_SETTINGS = {
    "TITLE": "检验报告 · LIS 接入 API",
    "DESCRIPTION": (
        "LIS 向本院前置服务报告检验报告的审核与归档。审核时提交整份报告（院内代码），本服务按字典对照并按"
        "《检验互认接口文档 v3.0.2.0》3.3 校验后保存；归档时生成报告 PDF 与索引文件写入投递目录，传输服务"
        "上传 3.4 PDF 与 3.3 明细，平台接收后清理文件。\n\n"
        "* 认证：请求头 `Authorization: Token <令牌>`（信息中心在“接入系统”中为 LIS 生成，需允许 LAB_REPORT_DETAIL）。\n"
        '* 错误：`{"code", "message", "errors": [{"field", "rule", "message"}]}`，整份拒绝，不保存任何内容。\n'
        "* 投递目录与索引文件格式：docs/lab-transfer.md。"
    ),
    "VERSION": "1.0",
    "SCHEMA_PATH_PREFIX": r"/api/lab/v1",
    "POSTPROCESSING_HOOKS": [],
}


class SchemaView(SpectacularAPIView):
    urlconf = "mutual_recognition.lab.api_urls"
    custom_settings = SCHEMA_SETTINGS

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path(f"{PREFIX}reports", api.ReportCollection.as_view(), name="reports"),
    path(f"{PREFIX}reports/<str:report_id>/archive", api.ReportArchive.as_view(), name="archive"),
    path(f"{PREFIX}reports/<str:report_id>", api.ReportStatus.as_view(), name="status"),
    path(f"{PREFIX}reviews", api.ReviewCollection.as_view(), name="reviews"),
    path(f"{PREFIX}reviews/<str:report_id>/<str:version>", api.ReviewStatus.as_view(), name="review_status"),
    path(
        f"{PREFIX}reviews/<str:report_id>/<str:version>/signing-link",
        api.ReviewSigningLink.as_view(),
        name="review_signing_link",
    ),
    path(f"{PREFIX}schema", SchemaView.as_view(), name="schema"),
    path(f"{PREFIX}docs", SpectacularSwaggerSplitView.as_view(url_name="lab_api:schema"), name="docs"),
]
