"""A real ``manage.py emr_backfill --jobs 2`` process killed with SIGKILL in the middle of a file
(its preparing process dies with it) and started again with the same file: the second run says where it continues, and when it ends every record
of the file is in the outbox exactly once (none missing, none stored twice, no stored batch
processed again) and the error report names each bad line once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from emr_sharing import services
from emr_sharing.mapping import record_types
from emr_sharing.models import BackfillCheckpoint
from hospital_interop.uploads.models import OutboxRecord
from tests.delivery_fixtures import wait_until
from tests.emr.test_backfill import day_of_records, write_ndjson

ROOT = Path(__file__).resolve().parents[2]
COUNT = 6000
BAD_AT = (1200, 4700)  # 0-based positions of the two bad lines among the records


def backfill_process(path: Path, log: Path) -> subprocess.Popen:
    db = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER'] or 'root'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        PYTHONUNBUFFERED="1",
    )
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "emr_backfill",
            str(path),
            "--batch-size",
            "200",
            "--no-wake",
            "--jobs",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.django_db(transaction=True)
def test_backfill_killed_mid_file_and_started_again_stores_every_record_once(tmp_path):
    records = day_of_records(COUNT)
    lines: list = list(records)
    for at in reversed(BAD_AT):
        lines.insert(at, "{not json")
    path = tmp_path / "history.ndjson"
    write_ndjson(path, lines)
    bad_lines = [at + 1 + i for i, at in enumerate(BAD_AT)]  # 1-based line numbers in the file

    first = backfill_process(path, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 300
        while True:  # a few batches committed, most of the file still to go: kill it
            row = BackfillCheckpoint.objects.first()
            if row is not None and row.line >= 1400:
                break
            assert first.poll() is None, (tmp_path / "first.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "the backfill stored nothing in 300 s"
            time.sleep(0.02)
        helpers = children(first.pid)  # the preparing process (--jobs 2)
        assert helpers
        os.kill(first.pid, signal.SIGKILL)  # the backfill alone: its helpers must not outlive it
        first.wait(timeout=30)
        wait_until(lambda: not any(alive(pid) for pid in helpers), timeout=30, message="helpers gone")
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    row = BackfillCheckpoint.objects.get()
    stored_before = OutboxRecord.objects.count()
    assert row.finished_at is None and 0 < stored_before < COUNT
    assert row.created == stored_before  # the checkpoint committed with exactly the stored batches
    report = path.with_name(path.name + ".errors.ndjson")
    assert report.exists()  # the first bad line was reported before the kill

    second = backfill_process(path, tmp_path / "second.log")
    assert second.wait(timeout=600) == 1  # the bad lines: CommandError, exit status 1
    output = (tmp_path / "second.log").read_text(errors="replace")
    assert f"从第 1 个文件第 {row.line + 1} 行续传" in output, output[-2000:]
    assert "100%" in output and f"{COUNT + 2}/{COUNT + 2}" in output
    assert f"共 {COUNT + 2} 行：新保存 {COUNT}，与已有版本相同 0，有误 2" in output, output[-2000:]

    keys = list(OutboxRecord.objects.values_list("interface", "business_key", "version"))
    assert len(keys) == COUNT
    assert len({(i, k) for i, k, _ in keys}) == COUNT and {v for _, _, v in keys} == {1}
    rts = record_types()
    expected = set()
    for r in records:
        prepared, errors = services.prepare(rts.get(r["recordType"]), r["record"])
        assert not errors
        expected.add((prepared.checked.interface, prepared.key))
    assert {(i, k) for i, k, _ in keys} == expected
    assert BackfillCheckpoint.objects.get().finished_at is not None
    reported = [json.loads(x)["line"] for x in report.read_text(encoding="utf-8").splitlines()]
    assert reported == bad_lines
