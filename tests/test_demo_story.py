"""The demo's story, replayed against a live server and the real simulator, leaves every
dashboard with something to show: counts on several interfaces, failures to re-drive and an
overdue record."""

import pytest
from django.utils import timezone

from hospital_interop.uploads.models import OutboxRecord, State
from mutual_recognition.demo_story import EMR_TYPES, OUTAGE_INTERFACE, PER_TYPE, Replay
from tests.lab.conftest import folders, inline_delivery, lab_dicts, service  # noqa: F401  (fixtures)


@pytest.mark.django_db(transaction=True)
def test_the_story_fills_the_dashboard_with_sent_failed_and_overdue_records(
    live_server,
    sim,
    lab_dicts,  # noqa: F811
    folders,  # noqa: F811
    service,  # noqa: F811
    inline_delivery,  # noqa: F811
):
    said = []
    replay = Replay(live_server.url, sim.url, "12110000400000000X", say=said.append)
    told = replay.run()
    assert told.refused == [] and len(said) == 4
    service.run_once()  # the transfer service picks the archived lab reports up
    inline_delivery()
    replay.quality_findings(wait_seconds=5)
    assert len(told.findings) == 2  # missing + content, for the quality page
    by_state = {}
    for interface, state in OutboxRecord.objects.values_list("interface", "state"):
        by_state.setdefault(interface, set()).add(state)
    accepted = {i for i, states in by_state.items() if State.DONE in states}
    assert len(accepted) >= 8, by_state
    assert OutboxRecord.objects.filter(state=State.ATTENTION).count() >= 2  # 2001: for ops to fix
    outage = OutboxRecord.objects.filter(interface=OUTAGE_INTERFACE)
    assert outage.count() == PER_TYPE and {r.state for r in outage} <= {State.RETRY, State.PENDING}
    assert outage.filter(deadline_at__lt=timezone.now()).exists()
    assert OutboxRecord.objects.filter(interface="OP_REGISTRATION").count() == PER_TYPE
    assert len(EMR_TYPES) * PER_TYPE <= OutboxRecord.objects.count()
