"""Who may read ``/metrics`` (Prometheus): counts of outbox rows, no patient data, but not public.

* ``METRICS_TOKEN`` (or the file ``METRICS_TOKEN_FILE`` names) set: the scraper sends
  ``Authorization: Bearer <token>`` (Prometheus ``authorization: {credentials_file: …}``); anything
  else answers 401, from any address.
* No token configured: served only to a direct client on loopback or a private network (the compose
  network: Prometheus scraping ``web:8000/metrics``), never to a request the TLS proxy forwarded
  (it carries X-Forwarded-For / X-Real-IP; the proxy also answers 404 for /metrics itself)."""

from __future__ import annotations

import hmac
import ipaddress
from functools import wraps

from django.conf import settings
from django.http import HttpResponse

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def _bearer(request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _internal(request) -> bool:
    if any(request.META.get(h) for h in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        return hmac.compare_digest(_bearer(request).encode(), token.encode())
    return _internal(request)


def metrics_access(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if allowed(request):
            return view(request, *args, **kwargs)
        if settings.METRICS_TOKEN:
            response = HttpResponse(
                "需要指标令牌：请求头 Authorization: Bearer <METRICS_TOKEN>。\n",
                status=401,
                content_type="text/plain; charset=utf-8",
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return HttpResponse(
            "指标接口只对本机与内部网络开放；经代理或外部访问请配置 METRICS_TOKEN 并携带 Bearer 令牌。\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )

    return wrapper
