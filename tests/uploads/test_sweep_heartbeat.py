"""The delivery sweep's heartbeat: /healthz, /metrics and the ops dashboard say when the sweep
last ran and how many rows are due but unclaimed, and raise the alarm when it is late (beat, or
every worker, is down). The interval is a setting: one second here, so lateness shows at once."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services, tasks
from hospital_interop.uploads.schedules import sync_schedules

from ..delivery_fixtures import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_second_sweep(settings):
    """The sweep scheduled every second, no worker or beat running, no heartbeat seen yet."""
    settings.DELIVERY_SWEEP_SECONDS = 1
    sync_schedules()
    cache.delete(services.SWEEP_HEARTBEAT_KEY)
    yield
    cache.delete(services.SWEEP_HEARTBEAT_KEY)


def _enqueue(seed: int):
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    return services.enqueue("LAB_REPORT_DETAIL", spec.example(seed), wake_worker=False)


def _sweep_check(client):
    response = client.get("/healthz")
    return response.status_code, response.json()["checks"]["sweep"]


def test_healthz_turns_unhealthy_when_no_sweep_ran_for_two_intervals(client, one_second_sweep):
    _enqueue(1)
    _enqueue(2)
    tasks.sweep()  # a real sweep (its wake-ups go to the broker; no worker takes them)
    status, sweep = _sweep_check(client)
    assert status == 200 and sweep["ok"] is True and sweep["late"] is False
    assert sweep["interval_seconds"] == 1 and sweep["last_run"] is not None
    assert sweep["due_unclaimed"] == 2  # due, and no worker took them

    # beat is stopped: no sweep runs any more
    status, sweep = wait_until(lambda: (c := _sweep_check(client))[0] == 503 and c, 10, message="503")
    # late: more than 2 intervals; the age is shown rounded to 0.1 s, so just past them it reads 2.0
    assert sweep["ok"] is False and sweep["late"] is True and sweep["age_seconds"] >= 2
    assert "投递巡检已" in sweep["error"] and "2 条到期记录无人派发" in sweep["error"]
    assert "celery beat" in sweep["error"]

    metrics = client.get("/metrics").content.decode()
    assert "interop_sweep_late 1" in metrics
    assert "interop_outbox_due_unclaimed 2" in metrics
    assert 'interop_outbox_due_unclaimed{interface="LAB_REPORT_DETAIL"} 2' in metrics
    assert "interop_sweep_interval_seconds 1" in metrics

    tasks.sweep()  # beat is back
    status, sweep = _sweep_check(client)
    assert status == 200 and sweep["late"] is False
    assert "interop_sweep_late 0" in client.get("/metrics").content.decode()


def test_a_server_that_never_saw_a_sweep_counts_from_its_own_start(client, one_second_sweep):
    _, sweep = wait_until(lambda: (c := _sweep_check(client))[0] == 503 and c, 10, message="503")
    assert sweep["last_run"] is None and "投递巡检已" in sweep["error"]


def test_the_dashboard_shows_a_red_banner_while_the_sweep_is_late(client, make_user, one_second_sweep):
    _enqueue(3)
    make_user("ops-sweep", role="ops")
    client.login(username="ops-sweep", password="pw-for-tests-0")
    tasks.sweep()
    assert 'id="sweep-late"' not in client.get("/ops/uploads/").content.decode()
    text = wait_until(
        lambda: 'id="sweep-late"' in (t := client.get("/ops/uploads/").content.decode()) and t,
        10,
        message="banner",
    )
    assert "投递巡检未运行" in text and "1 条到期记录无人派发" in text and "celery beat" in text
    tasks.sweep()
    assert 'id="sweep-late"' not in client.get("/ops/uploads/").content.decode()
