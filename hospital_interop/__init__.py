"""hospital-interop: the hospital side of Beijing's result mutual-recognition and EMR-sharing programmes.

Importing the package restricts the process umask (``filemodes.restrict_umask``): every process of
the project imports it before it writes anything — ``manage.py`` and its commands through the
settings, the gunicorn master through ``hospital_interop.gunicorn_conf`` and its workers through
``wsgi``, ``celery -A hospital_interop``, the simulators (``python -m simulators…``, whose package
calls ``restrict_umask`` itself) and the tests — so this is the one place that keeps what they
create from other users.
"""

from .celery import app as celery_app
from .filemodes import restrict_umask

restrict_umask()

__all__ = ("celery_app",)
