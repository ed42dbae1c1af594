"""URLs of the intake API (included at the site root) and its OpenAPI schema and Swagger UI.

The record-type routes are generated from the mapping data: one set of three per record type, so
that the OpenAPI schema shows each record type with its own fields. Unknown record types answer
a JSON 404.
"""

from django.urls import path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .api import RecordTypeList, RecordViewSet, unknown_record_type
from .mapping import record_types

app_name = "emr_api"
PREFIX = "api/emr/v1/"
SCHEMA_SETTINGS = {
    "TITLE": "电子病历共享 · 数据接入 API",
    "DESCRIPTION": (
        "HIS/EMR 等院内系统向本院前置服务提交电子病历共享记录（门急诊、住院、体检、公共数据，共 29 类），"
        "由本服务校验、按主键幂等保存，并按市平台的顺序规则加密上传。\n\n"
        "* 认证：请求头 `Authorization: Token <令牌>`（令牌由信息中心为每个接入系统生成）。\n"
        "* 单条提交返回 201（已保存）或 200（与最新版本相同）；有误返回 400 和逐字段错误，什么也不保存。\n"
        "* 批量提交（NDJSON 或 JSON 数组）全部成功或全部不保存，错误带行号。\n"
        "* 投递状态：`GET /api/emr/v1/records/{记录类型}/{主键}`。\n\n"
        "接入指南：/emr/integration/guide"
    ),
    "VERSION": "1.0",
    "SCHEMA_PATH_PREFIX": r"/api/emr/v1",
    # value-set enums stay inline next to their Chinese descriptions (no shared *Enum components)
    "POSTPROCESSING_HOOKS": [],
}


class SchemaView(SpectacularAPIView):
    """The OpenAPI document of this API only (not itself an operation of it)."""

    urlconf = "emr_sharing.api_urls"
    custom_settings = SCHEMA_SETTINGS

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _record_routes():
    routes = []
    for rt in record_types():
        base = f"{PREFIX}records/{rt.slug}"
        routes += [
            path(
                base, RecordViewSet.as_view({"post": "create"}, record_type=rt.slug), name=f"create-{rt.slug}"
            ),
            path(
                f"{base}/bulk",
                RecordViewSet.as_view({"post": "bulk"}, record_type=rt.slug),
                name=f"bulk-{rt.slug}",
            ),
            path(
                f"{base}/<str:businessKey>",
                RecordViewSet.as_view({"get": "retrieve"}, record_type=rt.slug),
                name=f"status-{rt.slug}",
            ),
        ]
    return routes


urlpatterns = [
    path(f"{PREFIX}record-types", RecordTypeList.as_view(), name="record-types"),
    *_record_routes(),
    re_path(rf"^{PREFIX}records(/.*)?$", unknown_record_type, name="unknown-record-type"),
    path(f"{PREFIX}schema", SchemaView.as_view(), name="schema"),
    path(f"{PREFIX}docs", SpectacularSwaggerSplitView.as_view(url_name="emr_api:schema"), name="docs"),
]
