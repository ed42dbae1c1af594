"""DRF permission for calling systems; see the package docstring."""

from rest_framework.permissions import BasePermission

from .models import CallingSystem


class HasIntegrationScope(BasePermission):
    """The caller is an active calling system allowed the view's service code (if it names one)."""

    message = "该接入系统无权提交此类记录"

    def has_permission(self, request, view) -> bool:
        system = request.auth
        if not isinstance(system, CallingSystem):
            return False
        scope = getattr(view, "integration_scope", None)
        code = scope(request) if callable(scope) else None
        return code is None or system.allows(code)
