"""Settings of the EMR intake, with defaults: ``settings.EMR_INTAKE`` / ``settings.EMR_PULL`` may
override any key (settings.py fills them from the environment)."""

from __future__ import annotations

from django.conf import settings

INTAKE_DEFAULTS = {
    "MAX_BULK_RECORDS": 5000,  # body sizes: settings.INTEGRATION_BODY_LIMITS ("record", "bulk")
}


def intake_limits() -> dict:
    return {**INTAKE_DEFAULTS, **getattr(settings, "EMR_INTAKE", {})}


PULL_DEFAULTS = {"DATABASE_URL": "", "INTERVAL_SECONDS": 300, "SOURCES_FILE": "", "BATCH_SIZE": 500}


def pull_settings() -> dict:
    """HIS view puller: DATABASE_URL of the HIS (read-only), interval, sources file, batch size
    (``settings.EMR_PULL``, from the environment: HIS_DATABASE_URL, EMR_PULL_*)."""
    return {**PULL_DEFAULTS, **getattr(settings, "EMR_PULL", {})}
