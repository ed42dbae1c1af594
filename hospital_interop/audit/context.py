"""Who is acting, for the audit trail: resolved from the request being served, without passing it
down through every service and selector.

``AuditContextMiddleware`` keeps the current request in a context variable for the duration of
the request (the same idea as ``simple_history``'s ``HistoryRequestMiddleware``, which the
project already uses for dictionary changes). ``current_actor()`` reads it when an entry is
written, which is after authentication: a machine API's calling system is known by then (DRF sets
``request.user`` on the underlying Django request too). Outside a request (Celery tasks,
management commands) the actor is the process, named by ``acting_as`` or by the command line.
"""

from __future__ import annotations

import ipaddress
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings

from .models import ActorType

_request: ContextVar = ContextVar("audit_request", default=None)
_process: ContextVar[str] = ContextVar("audit_process", default="")


@dataclass(frozen=True)
class Actor:
    type: str
    username: str = ""  # login name, "system:<code>", "doctor:<staff no>" or "process:<name>"
    user_id: int | None = None
    roles: str = ""
    ip: str = ""
    route: str = ""  # the URL name served (or the process), never a query string


class AuditContextMiddleware:
    """Keeps the request in a context variable while it is served (after AuthenticationMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextmanager
def acting_as(process: str):
    """Entries written inside name this background process as their actor (tasks, commands)."""
    token = _process.set(process)
    try:
        yield
    finally:
        _process.reset(token)


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or the header the TLS proxy sets when configured
    (``AUDIT_CLIENT_IP_HEADER``, e.g. ``HTTP_X_REAL_IP``); "" when it is not an IP address."""
    header = settings.AUDIT.get("CLIENT_IP_HEADER") or ""
    raw = (request.META.get(header) if header else "") or request.META.get("REMOTE_ADDR") or ""
    raw = raw.split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return ""


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match else request.path)[:100]


def _process_name() -> str:
    explicit = _process.get()
    if explicit:
        return explicit
    argv = sys.argv or ["python"]
    path = Path(argv[0])
    name = path.parent.name if path.name == "__main__.py" else path.name  # python -m celery → celery
    if name == "manage.py" and len(argv) > 1:
        name = f"manage.py {argv[1]}"
    return name[:80]


def current_actor() -> Actor:
    """The actor of the request being served, else the background process."""
    from hospital_interop.integrations.authentication import CallingSystemUser
    from hospital_interop.roles import role_names

    request = _request.get()
    if request is None:
        name = _process_name()
        return Actor(ActorType.PROCESS, f"process:{name}", roles="后台进程", route=name)
    ip, route = client_ip(request), _route(request)
    user = getattr(request, "user", None)
    if isinstance(user, CallingSystemUser):
        return Actor(ActorType.SYSTEM, user.username, roles="接入系统", ip=ip, route=route)
    if user is not None and user.is_authenticated:
        roles = "、".join(role_names(user))
        return Actor(ActorType.USER, user.get_username(), user.pk, roles[:200], ip, route)
    return Actor(ActorType.ANONYMOUS, ip=ip, route=route)


def link_actor(doctor_staff_no: str) -> Actor:
    """The doctor a signed prompt link names (the embedded page has no login), from this request's address."""
    return replace(
        current_actor(),
        type=ActorType.LINK,
        username=f"doctor:{doctor_staff_no}"[:150],
        user_id=None,
        roles="临床医生（医生站签名链接）",
    )
