"""The Celery application. Configuration lives in Django settings under the CELERY_ prefix.

Logging stays the project's (``settings.LOGGING`` through ``hospital_interop.logmask``): Celery
would otherwise replace the root logger's handlers with its own when a worker or beat starts, and
with them the filter that masks patient data. Answering ``setup_logging`` tells Celery that logging
is configured; the level given on the command line (``--loglevel``) still applies to the root logger.
"""

import logging
import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital_interop.settings")

app = Celery("hospital_interop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _project_logging(loglevel=None, **kwargs) -> None:
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)
