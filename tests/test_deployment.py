"""The compose deployment an assessor reads: TLS at the proxy only, explicit hosts, no root in the
application containers, the simulator only in the dev profile, keys never in the repo."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
APP = ("web", "worker", "beat", "lab-transfer", "platform-sim")


def test_only_the_tls_proxy_publishes_ports_to_the_network():
    published = {name: s.get("ports", []) for name, s in SERVICES.items() if s.get("ports")}
    assert set(published) == {"proxy", "platform-sim"}
    assert published["proxy"] == ["80:80", "443:443"]
    assert all(p.startswith("127.0.0.1:") for p in published["platform-sim"])  # dev only, loopback
    conf = (ROOT / "deploy/nginx/interop.conf").read_text()
    assert "listen 443 ssl" in conf and "return 301 https://" in conf and "location /metrics" in conf


def test_application_containers_run_unprivileged_with_explicit_hosts_and_the_production_setting():
    for name in APP:
        service = SERVICES[name]
        assert service["user"] == "10001:10001", name
        assert service["read_only"] is True, name
        env = service["environment"]
        assert "*" not in env["DJANGO_ALLOWED_HOSTS"], name
    assert SERVICES["web"]["environment"]["HOSPITAL_INTEROP_PRODUCTION"] == "1"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER interop" in dockerfile and "gunicorn_conf" in dockerfile


def test_the_simulator_is_a_dev_profile_service_and_keys_come_from_outside_the_repo():
    assert SERVICES["platform-sim"]["profiles"] == ["dev"]
    assert all("profiles" not in SERVICES[n] for n in ("web", "worker", "beat", "lab-transfer", "proxy"))
    for name in APP:
        mounts = SERVICES[name]["volumes"]
        assert "./secrets/keys:/run/keys:ro" in mounts, name
    assert not (ROOT / "secrets").exists()


def test_every_service_is_restarted_when_it_dies():
    """A dead beat leaves retries and stranded rows waiting: Docker restarts every process (beat
    first of all), and /healthz reports a late sweep meanwhile (docs/delivery.md)."""
    for name, service in COMPOSE["services"].items():
        assert service.get("restart") == "unless-stopped", name
