"""Settings of the EMR intake, with defaults: ``settings.EMR_INTAKE`` / ``settings.EMR_PULL`` may
override any key; the puller's connection and interval also come from the environment."""

from __future__ import annotations

import os

from django.conf import settings

INTAKE_DEFAULTS = {
    "MAX_BULK_RECORDS": 5000,  # body sizes: settings.INTEGRATION_BODY_LIMITS ("record", "bulk")
}


def intake_limits() -> dict:
    return {**INTAKE_DEFAULTS, **getattr(settings, "EMR_INTAKE", {})}


def pull_settings() -> dict:
    """HIS view puller: DATABASE_URL of the HIS (read-only), interval, sources file, batch size."""
    conf = {
        "DATABASE_URL": os.environ.get("HIS_DATABASE_URL", ""),
        "INTERVAL_SECONDS": int(os.environ.get("EMR_PULL_INTERVAL_SECONDS", "300")),
        "SOURCES_FILE": os.environ.get("EMR_PULL_SOURCES_FILE", ""),
        "BATCH_SIZE": int(os.environ.get("EMR_PULL_BATCH_SIZE", "500")),
    }
    return {**conf, **getattr(settings, "EMR_PULL", {})}
