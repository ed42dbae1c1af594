"""pydicom's bundled test files through the project's sender, beside dcmtk's storescu, to a real
Orthanc and a real storescp (issue 17).

The corpus is every storage object installed with pydicom: each file under
``pydicom/data/test_files`` whose file meta names a SOP class (pydicom 3.0.2 installs 176 files
there, 160 of them such objects; the 79 files pydicom would download from GitHub on demand are
not used: no network). storescu decides what can be sent: each file is sent by storescu (``-R``
and the option proposing the file's own transfer syntax, see peers.storescu) to its own peers,
and by the project (``StoreSCU.send_all``, all files of a round on one association, bad ones
among them) to another pair. The Orthanc takes neither explicit VR big endian nor deflate, like
many PACS, so conversion is exercised; the storescp takes every transfer syntax and SOP class.

For every file storescu stores, the project must store it too, and every copy the project's peer
stored must be identical to the original (tests/dicom/compare.py: elements with their values,
PixelData, transfer syntax, SOP Instance UID). Files the project does not store are reported per
instance with a reason. Several files share a SOP Instance UID (pydicom's variants of one image):
they are sent in successive rounds, and the copies of an earlier round deleted first.

Cost: about 160 storescu runs per peer (four at a time) and two Orthanc and two storescp
processes; about 40 s on a shared 2-core machine (60 s when it is busy).
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydicom.data.data_manager import DATA_ROOT
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info

from hospital_interop.dicom.config import DicomConfig, Peer
from hospital_interop.dicom.files import read_instance
from hospital_interop.dicom.store import StoreSCU
from tests.dicom.compare import same_instance
from tests.dicom.peers import NO_BIG_ENDIAN_NOR_DEFLATE, storescu

pytestmark = pytest.mark.slow


def storage_objects() -> list[Path]:
    """The installed test files whose file meta names a SOP class (never downloads anything)."""
    found = []
    for path in sorted(Path(DATA_ROOT, "test_files").rglob("*")):
        if not path.is_file():
            continue
        try:
            meta = read_file_meta_info(path)
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue
        if meta.get("MediaStorageSOPClassUID"):
            found.append(path)
    return found


def uid_of(path: Path) -> str:
    try:
        return read_instance(path, ()).sop_instance_uid
    except (InvalidDicomError, OSError, ValueError):
        return str(read_file_meta_info(path).get("MediaStorageSOPInstanceUID", ""))


def rounds(files: list[Path]) -> list[list[Path]]:
    """The files in rounds in which no two share a SOP Instance UID (of the data set, else the meta)."""
    by_uid: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_uid[uid_of(path)].append(path)
    depth = max(len(group) for group in by_uid.values())
    return [[group[i] for group in by_uid.values() if i < len(group)] for i in range(depth)]


def test_every_file_storescu_stores_the_project_stores_identically_and_the_rest_are_reported(
    orthanc_factory, storescp_factory
):
    corpus = storage_objects()
    assert len(corpus) >= 100, f"pydicom's test files are not all installed ({len(corpus)} found)"

    orthanc = {  # SyncStorageArea off: no fsync per instance (this test stores some 600 of them)
        who: orthanc_factory(f"O{who.upper()}", SyncStorageArea=False, **NO_BIG_ENDIAN_NOR_DEFLATE)
        for who in ("scu", "ours")
    }
    storescp = {who: storescp_factory(f"S{who.upper()}") for who in ("scu", "ours")}
    peers = {  # name: (storescu's peer, ours, tags it needs, stored copy, forget these instances)
        "orthanc": (
            (orthanc["scu"].aet, orthanc["scu"].dicom_port),
            (orthanc["ours"].aet, orthanc["ours"].dicom_port),
            ("StudyInstanceUID", "SeriesInstanceUID"),  # Orthanc refuses an instance without them (0xA700)
            lambda uid: orthanc["ours"].stored_file(uid),
            lambda uids: [o.forget(uids) for o in orthanc.values()],
        ),
        "storescp": (
            (storescp["scu"].aet, storescp["scu"].port),
            (storescp["ours"].aet, storescp["ours"].port),
            (),  # storescp files nothing under any tag
            lambda uid: (lambda p: p.read_bytes() if p else None)(storescp["ours"].stored_files().get(uid)),
            lambda uids: [s.forget(uids) for s in storescp.values()],
        ),
    }
    summary, failures = {}, []
    for name, (scu_peer, our_peer, required, stored_copy, forget) in peers.items():
        config = DicomConfig(
            fep=Peer(our_peer[0], "127.0.0.1", our_peer[1]), dimse_timeout=10, required_tags=required
        )
        counts = defaultdict(int)
        for files in rounds(corpus):
            forget([uid_of(path) for path in files])  # stored in an earlier round, from another file
            with ThreadPoolExecutor(max_workers=4) as pool:
                reference = dict(
                    zip(files, pool.map(storescu, files, *([x] * len(files) for x in scu_peer)), strict=True)
                )
            ours, instances = {}, []
            for path in files:
                try:
                    instances.append(read_instance(path, required))
                except (InvalidDicomError, OSError, ValueError) as exc:
                    ours[path] = ("unreadable", f"不是可发送的 DICOM 文件：{exc}")
            outcome = StoreSCU(config).send_all(instances)
            assert outcome.ok, (name, outcome.error)
            ours.update({Path(r.instance.path): (r.kind, r.error) for r in outcome.results})
            for path in files:
                kind, reason = ours[path]
                rel = os.path.relpath(path, DATA_ROOT)
                counts["storescu stored"] += reference[path].stored
                counts[f"project {kind}"] += 1
                if reference[path].stored and kind != "stored":
                    failures.append(f"{name}: storescu stored {rel}, the project did not: {kind} {reason}")
                if kind == "stored":
                    copy = stored_copy(read_instance(path, ()).sop_instance_uid)
                    differences = same_instance(path, copy) if copy else ["no stored copy"]
                    if differences:
                        failures.append(f"{name}: {rel} stored differently: {differences[:3]}")
                elif not reason:
                    failures.append(f"{name}: {rel} not stored ({kind}) and no reason given")
        summary[name] = dict(counts)
    print(f"\ncorpus: {len(corpus)} storage objects; per peer: {summary}")
    assert failures == [], "\n".join(failures)
    assert all(s["storescu stored"] and s["project stored"] >= s["storescu stored"] for s in summary.values())
