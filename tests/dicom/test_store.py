"""The C-STORE sender against real peers: Orthanc (Debian package) and a pynetdicom SCP."""

from __future__ import annotations

import socket
import threading
from collections import Counter

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_context, evt
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import CTImageStorage

from hospital_interop.dicom.config import DicomConfig, Peer
from hospital_interop.dicom.files import scan_folder
from hospital_interop.dicom.store import StoreSCU, encode_store_command, plan_batches
from hospital_interop.dicom.synthetic import write_ct_study
from tests.dicom.orthanc import free_port


def test_command_set_is_byte_for_byte_what_pynetdicom_encodes():
    for uid, message_id in ((generate_uid(), 1), ("1.2.3.4", 65535), ("1.2.840.10008.999.12345.1", 42)):
        req = C_STORE()
        req.MessageID, req.Priority = message_id, 0
        req.AffectedSOPClassUID, req.AffectedSOPInstanceUID = CTImageStorage, uid
        req._dataset_path = ("unused", 0)  # tells pynetdicom a data set follows
        msg = C_STORE_RQ()
        msg.primitive_to_message(req)
        assert encode_store_command(CTImageStorage, uid, message_id) == encode(msg.command_set, True, True)


def test_a_study_arrives_exactly_once_and_nothing_else(fep, tmp_path):
    study = write_ct_study(tmp_path / "study", 24, series=3)
    other = write_ct_study(tmp_path / "study" / "zz-other", 2)  # another study in the same folder
    (tmp_path / "study" / "README.txt").write_text("not DICOM")
    scan = scan_folder(tmp_path / "study", study.study_instance_uid)
    assert len(scan.instances) == 24 and len(scan.skipped) == 3
    assert {i.sop_instance_uid for i in scan.instances} == set(study.sop_instance_uids)

    config = DicomConfig(fep=Peer(fep.aet, "127.0.0.1", fep.dicom_port), batch_size=10)
    seen = []
    outcome = StoreSCU(config).send_all(scan.instances, on_result=seen.append)

    assert outcome.ok and outcome.stored == 24 and outcome.problems == 0
    assert [r.kind for r in seen] == ["stored"] * 24 and {r.status for r in seen} == {0}
    assert sorted(fep.sop_instance_uids(study.study_instance_uid)) == sorted(study.sop_instance_uids)
    assert fep.sop_instance_uids(other.study_instance_uid) == []
    assert Counter(fep.receipts()) == Counter(study.sop_instance_uids)  # each received once, 3 associations
    stored = dcmread(next(p for p in (fep.base / "storage").rglob("*") if p.is_file() and len(p.name) == 36))
    assert stored.Rows == 512 and len(stored.PixelData) == 512 * 512 * 2  # the data set arrived whole


def test_contexts_come_from_the_files_and_an_uncompressed_file_falls_back(tmp_path):
    """A peer that accepts CT only in implicit VR little endian: the exact (explicit VR) context is
    refused, the fallback context is used and the instance re-encoded; a refused SOP class is
    reported per instance while the rest of the batch goes on."""
    study = write_ct_study(tmp_path / "s", 3, rows=64, columns=64)
    mr = dcmread(study.folder / "00003.dcm")
    mr.SOPClassUID = mr.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR: not accepted
    mr.save_as(study.folder / "00003.dcm", enforce_file_format=True)
    received, requested = [], []

    def on_store(event):
        received.append(
            (
                event.request.AffectedSOPInstanceUID,
                event.context.transfer_syntax,
                len(event.dataset.PixelData),
            )
        )
        return 0x0000

    def on_requested(event):
        requested.extend(
            (cx.abstract_syntax, tuple(cx.transfer_syntax)) for cx in event.assoc.requestor.requested_contexts
        )

    scp = AE(ae_title="IMPLICIT_ONLY")
    scp.add_supported_context(CTImageStorage, [ImplicitVRLittleEndian])
    port = free_port()
    server = scp.start_server(
        ("127.0.0.1", port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_REQUESTED, on_requested)],
    )
    try:
        instances = scan_folder(study.folder).instances
        scu = StoreSCU(DicomConfig(fep=Peer("IMPLICIT_ONLY", "127.0.0.1", port)))
        outcome = scu.send_all(instances)
        probe = scu.ae.associate(
            "127.0.0.1", port, ae_title="IMPLICIT_ONLY", contexts=[build_context(CTImageStorage)]
        )
        nodelay = probe.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        probe.release()
    finally:
        server.shutdown()
    assert nodelay  # Nagle's algorithm is off on the sender's sockets
    assert outcome.ok and outcome.stored == 2 and outcome.problems == 1
    assert [r.kind for r in outcome.results] == ["stored", "stored", "unsupported"]
    assert "1.2.840.10008.5.1.4.1.1.4" in outcome.results[2].error
    assert {(uid, ts) for uid, ts, _ in received} == {
        (u, ImplicitVRLittleEndian) for u in study.sop_instance_uids[:2]
    }
    assert {n for *_, n in received} == {64 * 64 * 2}
    assert (CTImageStorage, (ExplicitVRLittleEndian,)) in requested  # exact, from the files
    assert (CTImageStorage, (ExplicitVRLittleEndian, ImplicitVRLittleEndian)) in requested  # fallback


def test_batches_respect_size_and_the_context_limit(tmp_path):
    study = write_ct_study(tmp_path / "s", 5, rows=8, columns=8)
    instances = scan_folder(study.folder).instances
    assert [len(b) for b in plan_batches(instances, 2)] == [2, 2, 1]
    many = [
        i.__class__(**{**i.__dict__, "sop_class_uid": f"1.2.3.{n}"}) for n, i in enumerate(instances * 30)
    ]
    batches = plan_batches(many, 1000)
    assert sum(map(len, batches)) == 150 and all(len(b) <= 64 for b in batches)


def test_a_peer_that_is_down_is_an_association_error_not_an_exception(tmp_path):
    study = write_ct_study(tmp_path / "s", 2, rows=8, columns=8)
    config = DicomConfig(fep=Peer("NOBODY", "127.0.0.1", free_port()), connect_timeout=2)
    outcome = StoreSCU(config).send_all(scan_folder(study.folder).instances)
    assert not outcome.ok and "NOBODY" in outcome.error and outcome.stored == 0 and outcome.results == []


def test_a_peer_that_dies_mid_study_ends_the_batch_with_the_in_flight_instance_lost(fep, tmp_path):
    study = write_ct_study(tmp_path / "s", 12)
    instances = scan_folder(study.folder).instances
    results = []

    def on_result(res):
        results.append(res)
        if len(results) == 5:
            threading.Thread(target=fep.kill).start()
            fep.process.wait(timeout=30)

    outcome = StoreSCU(DicomConfig(fep=Peer(fep.aet, "127.0.0.1", fep.dicom_port))).send_all(
        instances, on_result
    )
    assert not outcome.ok and "连接中断" in outcome.error
    assert [r.kind for r in results] == ["stored"] * 5 + ["lost"]
