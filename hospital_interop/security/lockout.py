"""Login lockout (django-axes): 5 failed passwords lock the username for 15 minutes (settings AXES_*).

Every password login of a web request goes through ``authenticate(request, ...)`` (the login page,
the admin login), and so through ``LockoutBackend``. A locked username is refused even with the
right password; the page says so in Chinese and names the wait. Administrators unlock early with
``manage.py axes_reset_username <用户名>`` or by deleting the attempt in 系统管理 › Axes."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.shortcuts import render


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check before the password backend. A request-less ``authenticate()`` (Django's test
    client ``login()``, a shell) is no login attempt from the network: it passes to the next backend
    instead of raising; every view that checks passwords hands its request, so it is counted."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def minutes(delta) -> int:
    return max(1, round(delta.total_seconds() / 60))


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked username gets (HTTP 429), in place of the login form's answer."""
    cool_off = settings.AXES_COOLOFF_TIME
    message = (
        f"该账号连续 {settings.AXES_FAILURE_LIMIT} 次登录失败，已被锁定 {minutes(cool_off)} 分钟。"
        f"请 {minutes(cool_off)} 分钟后再试；锁定期间再次输错会重新计时。"
        "如需立即解锁，请联系信息中心管理员。"
    )
    return render(
        request,
        "registration/locked_out.html",
        {"lockout_message": message},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
