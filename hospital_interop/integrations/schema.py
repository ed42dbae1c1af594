"""OpenAPI (drf-spectacular) of the machine APIs, shared by all of them:

``IntegrationTokenScheme``
    the security scheme of ``IntegrationTokenAuthentication`` (``Authorization: Token <令牌>``).
``ApiError`` / ``ApiFieldError``
    the one error body (``integrations.api.error_body``), documented here once; every API's
    schema references these two components.
``MachineSchema``
    the AutoSchema of every machine API view (``MachineApiView.schema``; an API's own AutoSchema
    subclasses it). It documents each error status an operation can answer, all with the one
    body: 401 (token), 403 (the view's scope), 400, 413 and 415 when it takes a body, 400 when it
    reads query parameters, 400 and 404 when its path names something; a view adds statuses only
    it knows (409 for another patient's visit) and better descriptions in ``error_answers``.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    target_class = "hospital_interop.integrations.authentication.IntegrationTokenAuthentication"
    name = "IntegrationToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "接入系统令牌。请求头写作 `Authorization: Token <令牌>`；令牌由信息中心在"
            "“系统管理 › 接入系统”生成，只显示一次。",
        }


# --------------------------------------------------------------------------- the one error body

ERROR_NAME, FIELD_ERROR_NAME = "ApiError", "ApiFieldError"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_NAME}"}
FIELD_ERROR_REF = {"$ref": f"#/components/schemas/{FIELD_ERROR_NAME}"}

FIELD_ERROR = {
    "type": "object",
    "required": ["field", "rule", "message"],
    "properties": {
        "field": {
            "type": "string",
            "description": "出错字段路径，如 patient.idNo、items[0].kind、drugs[0].drugCode；"
            "空表示整个请求体",
        },
        "rule": {
            "type": "string",
            "description": (
                "违反的规则：required、type、length、precision、format、checksum、valueSet、nameMatch、unknown、"
                "minItems；请求体本身：json、encoding、nul、surrogate、duplicate、depth、number、tooLarge、"
                "contentType、lines；字典对照：mapping.unmapped、mapping.unknown 等"
            ),
        },
        "message": {"type": "string", "description": "中文说明"},
        "line": {
            "type": "integer",
            "description": "批量提交时出错记录所在的行号（JSON 数组为元素序号，从 1 起）",
        },
    },
    "description": "一处错误。可能另有定位用的字段（如 line）。",
}


def error_schema() -> dict:
    from .api import CODES  # the codes error_body writes (api imports this module)

    return {
        "type": "object",
        "required": ["code", "message", "errors"],
        "properties": {
            "code": {
                "type": "string",
                "enum": sorted({*CODES.values(), "error"}),
                "description": "错误类别，随 HTTP 状态：invalid 400、unauthorized 401、forbidden 403、not_found 404、"
                "conflict 409、too_large 413、unsupported_media_type 415 ……",
            },
            "message": {"type": "string", "description": "中文说明"},
            "errors": {"type": "array", "items": FIELD_ERROR_REF, "description": "逐字段错误（可能为空）"},
        },
        "description": "所有接入 API 的错误应答（任何 4xx）都是这一格式。",
    }


def register_error_components(registry) -> dict:
    """Put ApiError and ApiFieldError into a schema being generated; returns ApiError's $ref."""
    for name, schema in ((ERROR_NAME, error_schema()), (FIELD_ERROR_NAME, FIELD_ERROR)):
        registry.register_on_missing(
            ResolvedComponent(name, ResolvedComponent.SCHEMA, schema=schema, object=name)
        )
    return ERROR_REF


ERROR_DESCRIPTIONS = {
    400: "请求有误（逐字段错误），未保存任何内容",
    401: "缺少令牌或令牌无效",
    403: "该接入系统无权调用此接口",
    404: "不存在",
    409: "请求中的就诊、医嘱、申请单或报告单号属于另一位患者，未保存任何内容",
    413: "请求体超过上限",
    415: "Content-Type 应为 application/json",
}
BODY_METHODS = ("POST", "PUT", "PATCH")


class MachineSchema(AutoSchema):
    """AutoSchema of the machine APIs: every operation lists each error status it can answer
    (see the module docstring), each with the ApiError body."""

    def get_error_answers(self) -> dict[int, str]:
        """{status: description} of this operation's error answers."""
        from .authentication import IntegrationTokenAuthentication
        from .permissions import HasIntegrationScope

        statuses = set()
        if any(issubclass(a, IntegrationTokenAuthentication) for a in self.view.authentication_classes):
            statuses.add(401)
        if any(
            isinstance(p, type) and issubclass(p, HasIntegrationScope) for p in self.view.permission_classes
        ):
            statuses.add(403)
        if self.method in BODY_METHODS:
            statuses |= {400, 413, 415}
        if self.path_regex and "(?P<" in self.path_regex:
            statuses |= {400, 404}  # a NUL in the parameter; nothing by that name
        if any(p.get("in") == "query" for p in self._get_parameters()):
            statuses.add(400)
        declared = dict(getattr(self.view, "error_answers", {}))
        return {
            status: declared.get(status, ERROR_DESCRIPTIONS[status])
            for status in sorted(statuses | set(declared))
        }

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        ref = register_error_components(self.registry)
        for status, description in self.get_error_answers().items():
            operation["responses"][str(status)] = {
                "content": {"application/json": {"schema": ref}},
                "description": description,
            }
        operation["responses"] = dict(sorted(operation["responses"].items()))
        return operation
