"""Schemathesis against the machine APIs, in-process: each API's OpenAPI document (generated as its
schema view serves it), the Django WSGI application, the test's own database transaction, and
the checks every answer must pass."""

from __future__ import annotations

import importlib
import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

# (module with SCHEMA_SETTINGS, urlconf the schema view generates from) of every machine API
APIS = {
    "emr": ("emr_sharing.api_urls", "emr_sharing.api_urls"),
    "exam": ("mutual_recognition.exam.api_urls", "mutual_recognition.exam.schema_urls"),
    "lab": ("mutual_recognition.lab.api_urls", "mutual_recognition.lab.api_urls"),
    "recognition": ("mutual_recognition.api_urls", "mutual_recognition.schema_urls"),
}
SCHEMA_URLS = {
    "emr": "/api/emr/v1/schema",
    "exam": "/api/exam/v1/schema",
    "lab": "/api/lab/v1/schema",
    "recognition": "/recognition/api/schema",
}
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    if isinstance(value, list):
        return "\n".join(json.dumps(v, ensure_ascii=False) for v in value).encode("utf-8")
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def generated_schema(api: str) -> dict:
    """The document the API's schema view serves, generated without a request (no database needed)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer
    from drf_spectacular.settings import patched_settings

    module, urlconf = APIS[api]
    with patched_settings(importlib.import_module(module).SCHEMA_SETTINGS):
        return json.loads(
            OpenApiJsonRenderer().render(SchemaGenerator(urlconf=urlconf).get_schema(None, public=True))
        )


def config(max_examples: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            # examples (the documented ones) and fuzzing (positive and negative data); no coverage phase:
            # it enumerates boundary values of every field (thousands of cases for the 150-field front
            # page); no stateful phase: the APIs have no links between operations; no example database:
            # every run starts from the same seed (deterministic), so a failure reproduces.
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "generation": {
                "max-examples": max_examples,
                "mode": "all",
                "deterministic": True,
                "database": "none",
            },
        }
    )


def fuzz_schema(api: str, max_examples: int, *, schema: dict | None = None):
    fuzz = schemathesis.openapi.from_dict(schema or generated_schema(api), config=config(max_examples))
    fuzz.app = get_wsgi_application()
    return fuzz


def call_and_check(case, headers: dict):
    """The case's request through the application, its answer checked; returns the answer."""
    from schemathesis.checks import CHECKS as REGISTRY

    return case.call_and_validate(headers=headers, checks=[REGISTRY.get_one(name) for name in CHECKS])


@pytest.fixture
def in_test_transaction():
    """Requests through the WSGI app stay in this test's transaction (as Django's test client does)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)
