"""Signatures stored before reports had versions get their report number and version from their
review report; their timestamp tokens, never checked, are not marked verified."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("esign", "0001_initial")]
AFTER = [("esign", "0002_signatures_bound_to_report_versions")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_signatures_are_bound_to_their_report_number_and_version_1():
    old = migrate(BEFORE)
    user = old.get_model("auth", "User").objects.create(username="legacy-signer")
    report = old.get_model("esign", "ReviewReport").objects.create(
        module="clinical",
        report_id="JYLEGACY0001",
        patient_name="张建华",
        title="血常规",
        status="approved",
        signed=True,
    )
    old.get_model("esign", "ReportSignature").objects.create(
        report=report,
        signer=user,
        signer_name="吴审核",
        signer_staff_no="L2002",
        method="auto",
        original_text="{}",
        original_hash="0" * 64,
        signature="MEUC",
        certificate="MIIB",
        cert_sn="5A3F",
        signed_at=timezone.now(),
        timestamp_token="TSA",
    )
    try:
        new = migrate(AFTER)
        sig = new.get_model("esign", "ReportSignature").objects.get()
        assert (sig.report_number, sig.report_version) == ("JYLEGACY0001", 1)
        assert sig.timestamp_verified is False and sig.timestamp_time is None
        assert new.get_model("esign", "ReviewReport").objects.get().report_version == 1
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
