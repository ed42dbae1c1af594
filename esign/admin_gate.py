"""The CA certificate as the administrators' second factor (setting ADMIN_REQUIRE_CA_LOGIN).

When on, the admin site (系统管理, /admin/) serves a superuser only in a login session that also
completed a CA login: the UKey login (challenge signed by the key, certificate checked with the CA)
or the QR login (协同签名 APP) of the e-signature pages. Those open a ``SigningSession`` that records
the Django session it was made in (``django_session_key``); the gate asks for an open one (not
ended: UKey pulled out, 退出电子签名, logout; not past its 8 hours) of this user and this session.
Anything else answers 403 with a Chinese page saying how to complete it.

Only superusers (the 管理员 role): staff accounts without it reach just the dictionary pages their
role grants, and hold no e-signature permission to log in with a certificate."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.urls import reverse

from .selectors import active_sessions


def has_ca_login(request) -> bool:
    key = request.session.session_key
    return bool(key) and active_sessions(request.user).filter(django_session_key=key).exists()


class AdminCALoginMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.ADMIN_REQUIRE_CA_LOGIN and self._guarded(request) and not has_ca_login(request):
            admin = reverse("admin:index")
            return render(
                request,
                "esign/admin_ca_required.html",
                {"next": request.get_full_path() if request.method == "GET" else admin},
                status=403,
            )
        return self.get_response(request)

    @staticmethod
    def _guarded(request) -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_superuser:
            return False
        admin = reverse("admin:index")
        return request.path.startswith(admin) and request.path not in (
            reverse("admin:login"),
            reverse("admin:logout"),
        )
