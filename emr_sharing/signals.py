"""Held records go out as soon as their codes are mapped: a hospital department or hospital code
saved with a standard code (in the admin, or by an Excel/CSV import, which saves row by row in
one transaction) releases, after the commit, the held records waiting for that code. Once per
transaction, whatever the number of rows saved. The periodic re-check
(``tasks.release_held_records``) catches anything this misses."""

from __future__ import annotations

import logging

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import post_save

log = logging.getLogger(__name__)


def _codes_saved(sender, instance, **kwargs) -> None:
    from dictionaries.models import HospitalCode, HospitalDepartment

    if isinstance(instance, HospitalDepartment):
        if instance.standard_id is None:
            return
        code = ("department", "DEPT_STD", instance.code)
    elif isinstance(instance, HospitalCode):
        if not instance.standard_code:
            return
        code = ("valueSet", instance.value_set, instance.code)
    else:
        return
    using = kwargs.get("using") or DEFAULT_DB_ALIAS
    connection = transaction.get_connection(using)
    here = set(connection.savepoint_ids)
    for entry in connection.run_on_commit:  # (savepoint ids, callback, robust): ours, at this level?
        sids, callback = entry[0], entry[1]
        if isinstance(callback, _Release) and sids == here:
            callback.codes.add(code)
            return
    callback = _Release({code})
    transaction.on_commit(callback, using=using)


class _Release:
    """The after-commit release of one transaction, collecting the codes its saves mapped. A
    rollback drops it with the transaction's other callbacks."""

    def __init__(self, codes: set):
        self.codes = codes

    def __call__(self) -> None:
        from . import services

        try:
            services.release_held(codes=self.codes)
        except Exception:  # the mapping is saved; the periodic re-check releases the records later
            log.exception("releasing EMR records held for %d mapped code(s) failed", len(self.codes))


def connect() -> None:
    from dictionaries.models import HospitalCode, HospitalDepartment

    for model in (HospitalDepartment, HospitalCode):
        post_save.connect(_codes_saved, sender=model, dispatch_uid=f"emr-release-{model.__name__}")
