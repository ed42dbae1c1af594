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
from django.core.cache.backends import redis as _django_redis

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


class _ReusingRedisCacheClient(_django_redis.RedisCacheClient):
    """Django's Redis cache client builds a new ``redis.Redis`` (with its table of ~200 response
    callbacks) for every cache call; that was a tenth of a delivery worker's CPU per record (two
    cache calls a send). This one keeps one per connection pool: a ``redis.Redis`` is safe to
    share, its connections come from the pool as before, and it reconnects after a Redis restart
    the same way."""

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        clients = self.__dict__.setdefault("_clients", {})
        client = clients.get(id(pool))
        if client is None or client.connection_pool is not pool:
            client = clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(_django_redis.RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with its ``redis.Redis`` client reused."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingRedisCacheClient
