"""OpenAPI (drf-spectacular): the security scheme of IntegrationTokenAuthentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
