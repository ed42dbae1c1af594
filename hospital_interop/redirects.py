"""Every user-supplied redirect target (``next=``) goes through one check: same host, same scheme
policy as the request, otherwise the view's default. Django's LoginView does the same for its own."""

from __future__ import annotations

from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request, default: str) -> str:
    """The ``next`` of the POST body (else of the query string) when it stays on this site, else ``default``.

    Refused: other hosts (``https://evil.example/``), scheme-relative ``//evil.example``, backslash
    tricks, ``javascript:`` and anything url_has_allowed_host_and_scheme refuses; on HTTPS an
    ``http://`` target of our own host too."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default
