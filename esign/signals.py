"""Logging out of the system also ends the e-signature sessions on that workstation."""

import re

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

WS_COOKIE = "esign_ws"
_WS = re.compile(r"^[0-9a-f]{32}$")


@receiver(user_logged_out)
def close_signing_sessions(sender, request, user, **kwargs):
    from . import services

    if user is None or request is None:
        return
    ws = request.COOKIES.get(WS_COOKIE, "")
    if _WS.fullmatch(ws):
        services.end_sessions(user, workstation_id=ws, reason="退出系统登录")
