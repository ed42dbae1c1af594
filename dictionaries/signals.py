"""Any change to a dictionary row bumps a version number in the cache, so that processes holding
an in-memory snapshot of the mappings (the recognition prompt API) rebuild it on their next call."""

import time

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from hospital_interop import cachesafe

from .selectors import VERSION_KEY


def bump_version(**kwargs) -> None:
    """With the cache down the edit still saves; prompt processes rebuild their snapshot within
    its maximum age (mutual_recognition.snapshot.MAX_AGE_SECONDS)."""
    transaction.on_commit(
        lambda: cachesafe.cached(
            lambda: cache.set(VERSION_KEY, time.time_ns(), None), what="dictionaries version"
        )
    )


def connect() -> None:
    from django.apps import apps

    for model in apps.get_app_config("dictionaries").get_models():
        if model.__name__.startswith("Historical"):
            continue
        post_save.connect(bump_version, sender=model, dispatch_uid=f"dict-version-save-{model.__name__}")
        post_delete.connect(bump_version, sender=model, dispatch_uid=f"dict-version-delete-{model.__name__}")
