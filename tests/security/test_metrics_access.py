"""/metrics is no longer public: a Bearer token when METRICS_TOKEN is set, else the internal network only."""

import pytest
from django.test import override_settings

TOKEN = "metrics-token-for-tests-7f3a"


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["127.0.0.1", "172.18.0.5", "10.20.30.40", "::1"])
def test_without_a_token_the_internal_network_is_served(client, address):
    response = client.get("/metrics", REMOTE_ADDR=address)
    assert response.status_code == 200
    assert "interop_outbox_records" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["8.8.8.8", "114.114.114.114", "2001:4860::1"])
def test_without_a_token_outside_addresses_are_refused(client, address):
    response = client.get("/metrics", REMOTE_ADDR=address)
    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.content.decode()


@pytest.mark.django_db
def test_without_a_token_a_proxied_request_is_refused_even_from_the_proxy_address(client):
    response = client.get("/metrics", REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR="172.18.0.9")
    assert response.status_code == 403
    response = client.get("/metrics", REMOTE_ADDR="172.18.0.2", HTTP_X_REAL_IP="10.0.0.8")
    assert response.status_code == 403


@pytest.mark.django_db
@override_settings(METRICS_TOKEN=TOKEN)
def test_with_a_token_only_the_bearer_is_served():
    from django.test import Client

    client = Client()
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Token {TOKEN}"}):
        response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)
        assert response.status_code == 401, headers
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    response = client.get("/metrics", REMOTE_ADDR="8.8.8.8", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert "interop_outbox_records" in response.content.decode()


def test_the_token_comes_from_the_environment_or_a_file(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "token").write_text(TOKEN + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_")}
    env.update(METRICS_TOKEN_FILE=str(tmp_path / "token"), HOSPITAL_INTEROP_VAR_DIR=str(tmp_path / "var"))
    code = "import django; django.setup(); from django.conf import settings; print(settings.METRICS_TOKEN)"
    env["DJANGO_SETTINGS_MODULE"] = "hospital_interop.settings"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert done.stdout.strip() == TOKEN, done.stderr
