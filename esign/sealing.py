"""Encryption at rest of secret system parameters (the CA verification secret).

SM4-CBC with a key derived from Django's SECRET_KEY by HMAC-SM3; stored as ``SM4:`` + Base64
of IV || ciphertext. Rotating SECRET_KEY makes stored secrets unreadable: re-enter them.
"""

from __future__ import annotations

import base64
import os

from django.conf import settings

from hospital_interop.municipal import gm

PREFIX = "SM4:"


def _key() -> bytes:
    return gm.hmac_sm3(settings.SECRET_KEY.encode(), b"esign.system-parameter.v1")[:16]


def seal(text: str) -> str:
    if not text:
        return ""
    iv = os.urandom(16)
    return PREFIX + base64.b64encode(iv + gm.sm4_encrypt(_key(), text.encode("utf-8"), "CBC", iv)).decode()


def unseal(stored: str) -> str:
    """The clear value; '' for an empty or unreadable value (e.g. after a SECRET_KEY change)."""
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        return ""
    try:
        raw = base64.b64decode(stored[len(PREFIX) :])
        return gm.sm4_decrypt(_key(), raw[16:], "CBC", raw[:16]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""


def mask(text: str) -> str:
    if not text:
        return ""
    return text[:2] + "*" * 8 + text[-2:] if len(text) > 6 else "*" * 8
