"""manage.py emr_backfill: 10,000 records of a day, with a progress bar, an error report, and
resumption (a repeated or continued run skips what is already stored). The rates are written to
var/test-artifacts/emr-backfill.txt beside the anchor: spec.validate alone on the same records."""

import json
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from emr_sharing.mapping import record_types
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads.models import OutboxRecord

pytestmark = pytest.mark.django_db
COUNT = 10_000


def day_of_records(count: int) -> list[dict]:
    """count records of all 29 types; seed s is one patient's encounter across types."""
    types = list(record_types())
    return [
        {"recordType": types[n % len(types)].slug, "record": types[n % len(types)].example(n // len(types))}
        for n in range(count)
    ]


def write_ndjson(path, lines) -> None:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines),
        encoding="utf-8",
    )


def test_backfill_of_a_day_with_progress_errors_and_resumption(tmp_path, artifacts_dir):
    lines = day_of_records(COUNT)
    bad_record = dict(lines[0]["record"], registrationId=None)
    first_part, full = tmp_path / "part.ndjson", tmp_path / "day.ndjson"
    write_ndjson(first_part, lines[:4000])
    write_ndjson(
        full,
        [
            *lines[:5000],
            "{not json",
            {"recordType": "op-nothing", "record": {}},
            {"recordType": "op-registration", "record": bad_record},
            "",
            *lines[5000:],
        ],
    )

    # an interrupted first connection: only part of the day got loaded
    call_command("emr_backfill", str(first_part), batch_size=500, stdout=StringIO(), stderr=StringIO())
    assert OutboxRecord.objects.count() == 4000

    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="3 行有误"):
        call_command("emr_backfill", str(full), batch_size=500, source="HIS", stdout=out, stderr=err)
    summary, progress = out.getvalue(), err.getvalue()
    assert f"共 {COUNT + 3} 行：新保存 6000，与已有版本相同 4000，有误 3" in summary
    assert "条/秒" in summary
    assert (
        "回填" in progress
        and "100%" in progress
        and f"{COUNT + 4}/{COUNT + 4}" in progress
        and "条/s" in progress
    )
    assert OutboxRecord.objects.count() == COUNT
    assert OutboxRecord.objects.filter(source="HIS").count() == 6000

    report = [
        json.loads(x)
        for x in (tmp_path / "day.ndjson.errors.ndjson").read_text(encoding="utf-8").splitlines()
    ]
    assert [
        (r["line"], r["recordType"], r["errors"][0]["field"], r["errors"][0]["rule"]) for r in report
    ] == [
        (5001, None, "", "json"),
        (5002, None, "", "recordType"),
        (5003, "op-registration", "registrationId", "required"),
    ]

    # the anchor, in the same run: the bare spec validation of the same records
    catalogue, rts = load_catalogue(), record_types()
    payloads = [(catalogue.interface(rts.get(x["recordType"]).interface), x["record"]) for x in lines]
    started = time.perf_counter()
    assert not any(spec.validate(payload) for spec, payload in payloads)
    validate_rate = COUNT / (time.perf_counter() - started)
    (artifacts_dir / "emr-backfill.txt").write_text(
        f"{summary.splitlines()[0]}\nanchor: spec.validate alone on the same {COUNT} records: {validate_rate:.0f} records/s\n",
        encoding="utf-8",
    )


def test_backfill_of_one_record_type_and_its_options(tmp_path, rts):
    rt = rts.get("op-order")
    path = tmp_path / "orders.ndjson"
    write_ndjson(path, [rt.example(s) for s in range(20)])
    out = StringIO()
    call_command(
        "emr_backfill",
        str(path),
        record_type="op-order",
        no_progress=True,
        no_wake=True,
        stdout=out,
        stderr=StringIO(),
    )
    assert "新保存 20" in out.getvalue()
    assert OutboxRecord.objects.filter(interface="OP_ORDER", source="backfill").count() == 20
    with pytest.raises(CommandError, match="文件不存在"):
        call_command("emr_backfill", str(tmp_path / "missing.ndjson"), stdout=StringIO(), stderr=StringIO())
