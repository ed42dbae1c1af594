"""The recognition API mounted at its real prefix, for the OpenAPI generator only (paths as callers see them)."""

from django.urls import include, path

from . import api_urls

urlpatterns = [path("recognition/", include(api_urls.urlpatterns))]
