"""hospital-interop: the hospital side of Beijing's result mutual-recognition and EMR-sharing programmes."""

from .celery import app as celery_app

__all__ = ("celery_app",)
