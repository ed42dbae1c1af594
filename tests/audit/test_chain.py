"""The audit trail's HMAC-SM3 chain: ``manage.py audit_verify`` (a process of its own, as an
operator or a scheduled check runs it) passes on an untouched trail and fails, naming the entry,
on any edit or deletion, the last entry's included; concurrent appenders keep one chain; the
purge keeps six months and re-anchors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from hospital_interop.audit import selectors, services
from hospital_interop.audit.context import Actor
from hospital_interop.audit.models import Action, ActorType, AuditRecord, ChainHead

from .conftest import ROOT, db_env, manage

pytestmark = pytest.mark.django_db(transaction=True)

OFFICER = Actor(ActorType.USER, "ops-chain", 7, "运维", "10.1.2.3", "uploads:record")


def write(n: int = 5, *, now=None) -> list[AuditRecord]:
    return services.record_many(
        [
            services.Event(
                Action.VIEW,
                "uploads.OutboxRecord",
                str(100 + i),
                patient=services.patient_digest("11010519700307121X"),
                changes={"deptCode": ["0301", "0302"]} if i % 2 else None,
                detail={"n": i},
            )
            for i in range(n)
        ],
        actor=OFFICER,
        now=now,
    )


def test_an_untouched_trail_verifies_and_the_command_exits_zero():
    write(6)
    done = manage("audit_verify")
    assert done.returncode == 0, done.stderr
    assert "审计日志完整：共 6 条（第 1–6 号）" in done.stdout


TAMPERING = {
    "username": "someone-else",
    "roles": "管理员",
    "ip": "10.9.9.9",
    "action": Action.SEARCH,
    "object_id": "999",
    "patient": "0" * 40,
    "changes": {"deptCode": ["0301", "0399"]},
    "detail": {"n": 42},
    "at": timezone.now() - timedelta(days=1),
}


@pytest.mark.parametrize("field", sorted(TAMPERING))
def test_editing_any_field_of_an_entry_fails_the_check_naming_that_entry(field):
    entries = write(5)
    AuditRecord.objects.filter(pk=entries[2].pk).update(**{field: TAMPERING[field]})
    done = manage("audit_verify")
    assert done.returncode != 0
    assert f"第 3 号审计记录（id={entries[2].pk}）内容被修改" in done.stderr
    assert "第 1 号" not in done.stderr and "第 4 号" not in done.stderr


def test_deleting_a_middle_entry_fails_the_check_naming_it():
    write(5)
    AuditRecord.objects.filter(seq=3).delete()
    done = manage("audit_verify")
    assert done.returncode != 0
    assert "第 3 号审计记录缺失（在第 2 号与第 4 号之间，已被删除）" in done.stderr


def test_deleting_the_first_entry_fails_the_check_naming_it():
    write(3)
    AuditRecord.objects.filter(seq=1).delete()
    done = manage("audit_verify")
    assert done.returncode != 0 and "第 1 号审计记录缺失（在链首，已被删除）" in done.stderr


def test_deleting_the_last_entry_fails_the_check_naming_it():
    write(5)
    AuditRecord.objects.filter(seq=5).delete()
    done = manage("audit_verify")
    assert done.returncode != 0
    assert "第 5 号审计记录缺失（在链尾，已被删除）" in done.stderr


def test_deleting_the_last_entry_and_moving_the_head_back_is_found_by_the_heads_own_mac():
    """Without the key, the head cannot be made to name the entry before: its MAC is checked."""
    entries = write(5)
    AuditRecord.objects.filter(seq=5).delete()
    ChainHead.objects.filter(pk=1).update(seq=4, mac=entries[3].mac)
    with pytest.raises(CommandError):
        call_command("audit_verify")
    report = selectors.verify_chain()
    assert [p.message for p in report.problems] == ["审计链头被修改（链头 MAC 不符）"]


def test_replacing_an_entry_with_one_of_a_valid_mac_from_elsewhere_breaks_the_link():
    """An entry whose MAC matches its own content but not its place (copied from another chain
    position) is named by the link check."""
    entries = write(4)
    other = entries[1]
    AuditRecord.objects.filter(pk=entries[2].pk).update(prev_mac=other.prev_mac, mac=other.mac)
    report = selectors.verify_chain()
    assert not report.ok and any("第 3 号" in p.message for p in report.problems)


def test_deleting_the_whole_trail_but_the_head_is_found():
    write(3)
    AuditRecord.objects.all().delete()
    report = selectors.verify_chain()
    assert [p.message for p in report.problems] == ["第 1–3 号审计记录缺失（在锚点之后，已被删除）"]


def test_an_entry_never_holds_an_identity_number_even_if_a_caller_passes_one():
    with pytest.raises(ValueError):
        services.record(Action.VIEW, "x.Y", patient="11010519700307121X", actor=OFFICER)
    entry = services.record(
        Action.VIEW, "x.Y", "11010519700307121X", detail={"note": "号码 11010519700307121X"}, actor=OFFICER
    )
    assert "11010519700307121X" not in entry.object_id + str(entry.detail)
    assert selectors.verify_chain().ok


APPENDER = textwrap.dedent(
    """
    import os, sys, time
    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital_interop.settings")
    django.setup()
    from hospital_interop.audit import services
    from hospital_interop.audit.context import acting_as
    name, other, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    from hospital_interop.audit.models import AuditRecord
    other = "process:" + other
    with acting_as(name):
        for i in range(n):
            services.record("view", "test.Concurrent", f"{name}-{i}")
            # lock-step: the next round starts when the other has written this one, so the two
            # contend for the head on every round however loaded the machine is
            deadline = time.monotonic() + 60
            while AuditRecord.objects.filter(username=other).count() <= i:
                if time.monotonic() > deadline:
                    sys.exit("the other appender stopped")
                time.sleep(0.001)
    print("done", name)
    """
)


def test_two_processes_appending_at_once_keep_one_chain(tmp_path):
    """Two processes start appending at the same moment; every entry of both lands in one chain
    of consecutive numbers that verifies (without the head's row lock they would read the same
    head and write the same sequence number, or two branches)."""
    write(1)
    n, go = 150, tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, name, other, str(n), str(go)],
            cwd=ROOT,
            env=db_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("appender-a", "appender-b"), ("appender-b", "appender-a"))
    ]
    assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
    go.touch()  # both set up and waiting: they start appending together
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outputs]
    seqs = list(AuditRecord.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 2 * n + 2))
    by = {
        name: AuditRecord.objects.filter(username=f"process:{name}").count()
        for name in ("appender-a", "appender-b")
    }
    assert by == {"appender-a": n, "appender-b": n}
    interleaved = list(
        AuditRecord.objects.filter(seq__gt=1).order_by("seq").values_list("username", flat=True)
    )
    assert (
        len({interleaved[i] != interleaved[i + 1] for i in range(len(interleaved) - 1)}) == 2
    )  # they did overlap
    head = ChainHead.objects.get(pk=1)
    assert head.seq == 2 * n + 1
    assert manage("audit_verify").returncode == 0


def test_an_append_on_a_stale_head_writes_nothing_and_goes_on_the_current_head():
    """The one-statement append tries the head this process last saw: after another appender,
    a rolled-back transaction or a purge moved the head, that try changes nothing and the entry
    lands on the current head under its row lock: one chain of consecutive numbers that verifies."""
    write(2)
    seen = dict(services._last_head)
    write(1)  # as another process would: the head moves past what `seen` names
    services._last_head.clear()
    services._last_head.update(seen)
    write(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        write(2)  # rolled back: this process's guess now names a head that never committed
        raise RuntimeError
    write(1)
    assert list(AuditRecord.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.mac) == (5, AuditRecord.objects.get(seq=5).mac)
    assert selectors.verify_chain().ok


def test_purge_refuses_entries_younger_than_six_months_and_deletes_nothing():
    write(3, now=timezone.now() - timedelta(days=120))
    done = manage("audit_purge", "--before", str(timezone.localdate() - timedelta(days=100)))
    assert done.returncode != 0 and "审计记录至少保留 6 个月" in done.stderr
    assert AuditRecord.objects.count() == 3


def test_purge_deletes_old_entries_re_anchors_the_chain_and_it_still_verifies(settings):
    settings.AUDIT = {**settings.AUDIT, "RETENTION_MONTHS": 2}  # fewer than six is not honoured
    old = write(4, now=timezone.now() - timedelta(days=400))
    write(2, now=timezone.now() - timedelta(days=150))  # inside six months: kept
    with pytest.raises(CommandError, match="至少保留 6 个月"):
        call_command("audit_purge", "--before", str(timezone.localdate() - timedelta(days=100)))
    call_command("audit_purge", "--before", str(timezone.localdate() - timedelta(days=300)))
    assert list(AuditRecord.objects.order_by("seq").values_list("seq", flat=True)) == [5, 6, 7]
    head = ChainHead.objects.get(pk=1)
    assert (head.anchor_seq, head.anchor_mac) == (4, old[-1].mac)
    purge = AuditRecord.objects.get(seq=7)
    assert purge.action == Action.PURGE and purge.detail["deleted"] == 4
    assert purge.username == "process:manage.py audit_purge"
    done = manage("audit_verify")
    assert done.returncode == 0 and "共 3 条（第 5–7 号）" in done.stdout
    AuditRecord.objects.filter(seq=5).delete()  # after a purge, the first kept entry is still guarded
    assert "第 5 号审计记录缺失（在链首，已被删除）" in manage("audit_verify").stderr


def test_purge_refuses_to_delete_tampered_entries():
    entries = write(3, now=timezone.now() - timedelta(days=400))
    AuditRecord.objects.filter(pk=entries[1].pk).update(username="x")
    with pytest.raises(CommandError, match="校验不通过"):
        call_command("audit_purge", "--before", str(timezone.localdate() - timedelta(days=300)))
    assert AuditRecord.objects.count() == 3


def test_the_key_is_required_and_never_generated_on_the_fly(settings, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    settings.AUDIT = {**settings.AUDIT, "KEY_FILE": str(tmp_path / "missing.key")}
    with pytest.raises(ImproperlyConfigured, match="setup_keys"):
        services.record(Action.VIEW, "x.Y", actor=OFFICER)
    assert not (tmp_path / "missing.key").exists() and not AuditRecord.objects.exists()
