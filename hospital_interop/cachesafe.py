"""Calls to the cache (Redis, or the demo's file cache) that degrade instead of failing.

The cache holds what can be rebuilt: pre-loaded external results, the dictionaries' version, seen
answer nonces. When it is down, the prompt API and the embedded page answer from the database and
the platform (and say so), rather than with a 500. ``cached(fn, default, what)`` returns
``(value, True)``, or ``(default, False)`` after one warning per outage and kind of call.
"""

from __future__ import annotations

import logging
import time

import redis

log = logging.getLogger(__name__)

CACHE_ERRORS = (redis.exceptions.RedisError, OSError, EOFError)
WARN_EVERY = 60.0  # seconds between warnings of one kind while the cache stays down
_warned: dict[str, float] = {}


def cached(fn, default=None, what: str = "cache"):
    try:
        return fn(), True
    except CACHE_ERRORS as exc:
        now = time.monotonic()
        if now - _warned.get(what, -WARN_EVERY) >= WARN_EVERY:
            _warned[what] = now
            log.warning("cache unavailable (%s): %s: %s; answering without it", what, type(exc).__name__, exc)
        return default, False
