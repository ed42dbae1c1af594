"""Settings of the recognition feature. Each is read from Django settings when set there (tests
override them that way), else from the environment, else a safe default. Secrets come from the
environment or from files it names, never from the repository.

RECOGNITION_LINK_SECRET / _FILE      HMAC-SM3 key of the signed prompt links (default: derived
                                     from SECRET_KEY, so links survive restarts)
RECOGNITION_LINK_LIFETIME_SECONDS    how long a prompt link may be opened (default 600)
RECOGNITION_LINK_MAX_LIFETIME_SECONDS  the longest lifetime a link may have, ours or one the HIS
                                     built (default 86400): longer ones are cut when made and
                                     refused when opened
RECOGNITION_PAGE_LIFETIME_SECONDS    how long an opened page may save decisions (default 7200)
(API callers are calling systems with tokens: hospital_interop.integrations; the old
RECOGNITION_API_TOKENS setting is carried over by integrations migration 0002)
RECOGNITION_FRAME_ANCESTORS          origins allowed to embed the prompt page (space or comma
                                     separated, e.g. "https://his.hospital.local"); 'self' always
RECOGNITION_CACHE_MAX_SECONDS        longest time external results stay cached (default 86400)
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings


def _setting(name: str, default: str = ""):
    """A recognition setting (hospital_interop/settings.py reads them from the environment)."""
    value = getattr(settings, name, None)
    return default if value is None else value


def link_secret() -> bytes:
    value = _setting("RECOGNITION_LINK_SECRET")
    if value:
        return value.encode() if isinstance(value, str) else value
    return _derived_secret(settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _derived_secret(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"recognition-prompt-link", hashlib.sha256).digest()


def link_lifetime() -> int:
    return int(_setting("RECOGNITION_LINK_LIFETIME_SECONDS", "600"))


def link_max_lifetime() -> int:
    value = int(_setting("RECOGNITION_LINK_MAX_LIFETIME_SECONDS", "86400"))
    if value <= 0:
        raise ValueError("RECOGNITION_LINK_MAX_LIFETIME_SECONDS must be positive")
    return value


def page_lifetime() -> int:
    return int(_setting("RECOGNITION_PAGE_LIFETIME_SECONDS", "7200"))


def cache_max_seconds() -> int:
    return int(_setting("RECOGNITION_CACHE_MAX_SECONDS", "86400"))


def _split(value) -> list[str]:
    if isinstance(value, list | tuple):
        return [v for v in value if v]
    return [v for v in str(value).replace(",", " ").split() if v]


def frame_ancestors() -> list[str]:
    return [o for o in _split(_setting("RECOGNITION_FRAME_ANCESTORS")) if o != "'self'"]
