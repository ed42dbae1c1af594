"""The intake API mounted at its real prefix, for the OpenAPI generator only (paths as callers see them)."""

from django.urls import include, path

urlpatterns = [path("api/exam/", include("mutual_recognition.exam.api_urls"))]
