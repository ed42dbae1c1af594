"""Fixtures of the EMR intake tests: a calling system with a token and a small API client."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from emr_sharing.mapping import record_types
from hospital_interop.integrations import services as integrations


class Api:
    """The intake API as a calling system sees it (Django's test client, a real token)."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    @property
    def auth(self) -> dict:
        return {"HTTP_AUTHORIZATION": f"Token {self.token}"}

    @property
    def auth_headers(self) -> dict:
        return {"Authorization": f"Token {self.token}"}

    def post(self, slug: str, record, **extra):
        body = record if isinstance(record, (str, bytes)) else json.dumps(record, ensure_ascii=False)
        return self.client.post(
            f"/api/emr/v1/records/{slug}",
            body,
            content_type=extra.pop("content_type", "application/json"),
            **self.auth,
            **extra,
        )

    def bulk(self, slug: str, records, *, content_type: str = "application/x-ndjson", **extra):
        if isinstance(records, (str, bytes)):
            body = records
        elif content_type == "application/json":
            body = json.dumps(records, ensure_ascii=False)
        else:
            body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
        return self.client.post(
            f"/api/emr/v1/records/{slug}/bulk", body, content_type=content_type, **self.auth, **extra
        )

    def status(self, slug: str, key: str):
        return self.client.get(f"/api/emr/v1/records/{slug}/{quote(key, safe='')}", **self.auth)


@pytest.fixture
def his_system(db):
    system = integrations.create_system("HIS", "医院信息系统", allow_all=True)
    token = integrations.issue_token(system)
    system.token = token
    return system


@pytest.fixture
def api(client, his_system):
    return Api(client, his_system.token)


@pytest.fixture
def rts():
    return record_types()


def invalid_intake(rt, seed: int = 0):
    """The spec's invalid example as an intake record, with the violations the intake reports:
    a missing field the mapping fills in (orgName, a code's name) is not a violation here."""
    payload, expected = rt.spec.invalid_example(seed, expected=True)
    kept = []
    for path, rule in expected:
        *parents, leaf = path.replace("[0]", "").split(".")
        node = rt.root
        for part in parents:
            node = node.children[part]
        if rule == "required" and rt.optional_by_mapping(node, leaf):
            continue
        kept.append((rt.intake_path(path), rule))
    return rt.to_intake(payload), kept
