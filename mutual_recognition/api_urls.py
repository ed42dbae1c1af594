"""URLs of the recognition machine API (mounted under /recognition/ by urls.py) with its OpenAPI
schema and Swagger UI."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import api

SCHEMA_SETTINGS = {
    "TITLE": "检查检验互认 · 医生站与检查检验系统 API",
    "DESCRIPTION": (
        "医生站（HIS）在挂号、开立医嘱时调用本服务，得到外院可互认结果的提示和互认页面的签名链接，并读回医生的"
        "互认决定；检查（RIS）与检验（LIS）系统读取已互认的结果。\n\n"
        "* 认证：请求头 `Authorization: Token <令牌>`（信息中心在“系统管理 › 接入系统”生成）；医生站需允许 "
        "recognition.prompt，检查、检验系统需允许 recognition.results。不接受登录会话（Cookie）。\n"
        '* 错误：`{"code", "message", "errors": [{"field", "rule", "message"}]}`，什么也不保存。\n\n'
        "接入说明：docs/recognition.md"
    ),
    "VERSION": "1.0",
    "SCHEMA_PATH_PREFIX": r"/recognition/api",
    "POSTPROCESSING_HOOKS": [],
}


class SchemaView(SpectacularAPIView):
    """The OpenAPI document of this API only (not itself an operation of it)."""

    urlconf = "mutual_recognition.schema_urls"
    custom_settings = SCHEMA_SETTINGS

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path("api/prompt", api.PromptView.as_view(), name="api-prompt"),
    path("api/events", api.EventsView.as_view(), name="api-events"),
    path("api/decisions", api.DecisionsView.as_view(), name="api-decisions"),
    path("api/results", api.ResultsView.as_view(), name="api-results"),
    path("api/schema", SchemaView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerSplitView.as_view(url_name="recognition:api-schema"), name="api-docs"),
]
