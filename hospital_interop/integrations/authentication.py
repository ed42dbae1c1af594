"""DRF authentication for calling systems: ``Authorization: Token <token>``."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from .models import CallingSystem
from .services import system_for_token

KEYWORD = "Token"
KEYWORDS = (b"token", b"bearer")


class CallingSystemUser:
    """``request.user`` for a calling system: authenticated, but not a person and not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, system: CallingSystem):
        self.system = system
        self.username = f"system:{system.code}"

    def __str__(self):
        return self.username

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_perms(self, perms, obj=None) -> bool:
        return False

    def get_username(self) -> str:
        return self.username


class IntegrationTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token hit_…`` (or ``Bearer``, as the recognition API's first callers were
    told) → (CallingSystemUser, CallingSystem); 401 for a bad token."""

    keyword = KEYWORD

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("令牌格式错误：应为 Authorization: Token <令牌>")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("令牌含有非法字符") from None
        system = system_for_token(token)
        if system is None:
            raise exceptions.AuthenticationFailed("令牌无效、已被更换或接入系统已停用")
        return CallingSystemUser(system), system

    def authenticate_header(self, request):
        return self.keyword
