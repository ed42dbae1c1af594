"""Idle timeout: a logged-in session unused for ``SESSION_IDLE_TIMEOUT_MINUTES`` (30 by default) is
logged out; the next request lands on the login page with a Chinese message (JSON callers get 401).

Django's own expiry of a session slides with every save; the absolute limit, SESSION_COOKIE_AGE (a
working day) after the login, is kept here too (``LOGIN_AT_KEY``).

The time of the last request is kept in the session (``IDLE_KEY``, Unix seconds), rewritten at most
once a minute so that a page view does not always write the session. Requests a page makes by
itself (the dashboards' auto-refresh: query ``autorefresh=1`` or header ``X-Interop-Passive: 1``)
are no activity: they neither extend the session nor escape the timeout.

It is the only timeout of the web session. The UKey agent's ``--idle-logout`` (esign/ukey_agent.py)
is another thing: it closes the PIN-verified state of the key on the workstation. Logging out here
also ends the user's e-signature sessions of that workstation (esign/signals.py)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

IDLE_KEY = "interop_last_activity"
LOGIN_AT_KEY = "interop_login_at"  # the absolute limit: SESSION_COOKIE_AGE after the login
WRITE_EVERY_SECONDS = 60


def idle_limit_seconds() -> int:
    return int(settings.SESSION_IDLE_TIMEOUT_MINUTES) * 60


def idle_message() -> str:
    return (
        f"您已超过 {settings.SESSION_IDLE_TIMEOUT_MINUTES} 分钟未操作，为保护患者信息，系统已自动退出登录。"
        "请重新登录。"
    )


def max_age_message() -> str:
    return f"本次登录已超过 {settings.SESSION_COOKIE_AGE // 3600} 小时，为保护患者信息，系统已自动退出登录。请重新登录。"


def mark_login(sender, request, user, **kwargs):
    """user_logged_in: the clocks start at the login (also when the same user logs in again)."""
    if request is not None and hasattr(request, "session"):
        now = int(time.time())
        request.session[LOGIN_AT_KEY] = now
        request.session[IDLE_KEY] = now


def _passive(request) -> bool:
    return request.GET.get("autorefresh") == "1" or request.headers.get("X-Interop-Passive") == "1"


class IdleTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            last = request.session.get(IDLE_KEY)
            if isinstance(last, int) and now - last > idle_limit_seconds():
                return self._expired(request, idle_message())
            started = request.session.get(LOGIN_AT_KEY)
            if not isinstance(started, int):
                request.session[LOGIN_AT_KEY] = started = now
            if now - started > settings.SESSION_COOKIE_AGE:
                return self._expired(request, max_age_message())
            if not _passive(request) and (not isinstance(last, int) or now - last >= WRITE_EVERY_SECONDS):
                request.session[IDLE_KEY] = now
        return self.get_response(request)

    def _expired(self, request, text: str):
        logout(request)  # flushes the session; also ends this workstation's e-signature sessions
        if request.headers.get("Accept", "").startswith("application/json") or request.path.startswith(
            ("/api/", "/recognition/api/")
        ):
            return JsonResponse(
                {"ok": False, "code": "session_idle", "message": text},
                status=401,
                json_dumps_params={"ensure_ascii": False},
            )
        messages.warning(request, text)
        login = reverse(settings.LOGIN_URL)
        if request.method == "GET":
            return redirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
        return redirect(login)
