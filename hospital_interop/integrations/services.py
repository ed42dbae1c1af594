"""Writes of the integrations app: issue and check calling-system tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import CallingSystem

TOKEN_PREFIX = "hit_"  # hospital-interop token: recognisable in logs and secret scanners
LAST_USED_GRANULARITY = timedelta(minutes=1)  # at most one write per system per minute


def hash_token(token: str) -> str:
    # Tokens are 256-bit random strings: a plain SHA-256 is enough (no dictionary to attack).
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(system: CallingSystem) -> str:
    """Give the system a new token, invalidating the previous one. Returns the token: the only
    time it exists in clear text."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        CallingSystem.objects.filter(pk=system.pk).update(
            token_hash=hash_token(token), token_hint=token[:10], token_created_at=timezone.now()
        )
    forget_lookups()
    system.refresh_from_db()
    return token


def revoke_token(system: CallingSystem) -> None:
    CallingSystem.objects.filter(pk=system.pk).update(token_hash=None, token_hint="", token_created_at=None)
    forget_lookups()
    system.refresh_from_db()


LOOKUP_SECONDS = 5.0  # a token's system is looked up again after this (a revocation takes effect within it)
_lookups: dict[str, tuple[float, CallingSystem | None]] = {}


def system_for_token(token: str) -> CallingSystem | None:
    """The active calling system holding this token, or None. Records the use (coarsely).

    Tokens issued here start with ``hit_``; tokens carried over from the recognition API's old
    environment setting (migration 0002) may not. Lookups are kept for a few seconds per process,
    so the prompt API's hot path costs no query per call."""
    if not token or len(token) < 16 or len(token) > 200:
        return None
    digest = hash_token(token)
    now_mono = time.monotonic()
    cached = _lookups.get(digest)
    if cached is not None and now_mono - cached[0] < LOOKUP_SECONDS:
        return cached[1]
    system = CallingSystem.objects.filter(token_hash=digest, active=True).first()
    if system is not None:
        now = timezone.now()
        if system.last_used_at is None or now - system.last_used_at >= LAST_USED_GRANULARITY:
            CallingSystem.objects.filter(pk=system.pk).update(last_used_at=now)
            system.last_used_at = now
    if len(_lookups) > 1000:
        _lookups.clear()
    _lookups[digest] = (now_mono, system)
    return system


def forget_lookups() -> None:
    _lookups.clear()


def create_system(
    code: str, name: str, *, allow_all: bool = False, interfaces=(), contact: str = ""
) -> CallingSystem:
    system = CallingSystem(
        code=code, name=name, allow_all=allow_all, allowed_interfaces=sorted(set(interfaces)), contact=contact
    )
    system.full_clean(exclude=["token_hash"])
    system.save()
    return system
