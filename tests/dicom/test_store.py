"""The C-STORE sender against real peers: Orthanc and dcmtk's storescp (Debian packages), pynetdicom
SCPs; with pydicom's bundled test files for the real-world cases of issue 17."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from io import BytesIO
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_context, evt
from pynetdicom.dimse_messages import C_ECHO_RSP, C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import CTImageStorage

from hospital_interop.dicom.config import DicomConfig, Peer
from hospital_interop.dicom.files import read_instance, scan_folder
from hospital_interop.dicom.store import (
    StoreResponse,
    StoreSCU,
    decode_response_command,
    encode_store_command,
    plan_batches,
    status_kind,
    status_reason,
)
from hospital_interop.dicom.synthetic import write_ct_study
from tests.dicom.compare import same_instance
from tests.dicom.orthanc import free_port
from tests.dicom.peers import NO_BIG_ENDIAN_NOR_DEFLATE, storescu


def test_command_set_is_byte_for_byte_what_pynetdicom_encodes():
    for uid, message_id in ((generate_uid(), 1), ("1.2.3.4", 65535), ("1.2.840.10008.999.12345.1", 42)):
        req = C_STORE()
        req.MessageID, req.Priority = message_id, 0
        req.AffectedSOPClassUID, req.AffectedSOPInstanceUID = CTImageStorage, uid
        req._dataset_path = ("unused", 0)  # tells pynetdicom a data set follows
        msg = C_STORE_RQ()
        msg.primitive_to_message(req)
        assert encode_store_command(CTImageStorage, uid, message_id) == encode(msg.command_set, True, True)


def test_a_response_command_set_that_pynetdicom_encodes_decodes_to_its_status_and_comment():
    """The sender reads its C-STORE-RSPs itself during a batch (store._Link._read_response)."""
    for message_id, status, comment in (
        (1, 0x0000, None),
        (65535, 0xA700, "磁盘已满 disk full"),
        (7, 0xB007, "x"),
    ):
        rsp = C_STORE()
        rsp.MessageIDBeingRespondedTo, rsp.Status = message_id, status
        rsp.AffectedSOPClassUID, rsp.AffectedSOPInstanceUID = CTImageStorage, generate_uid()
        if comment is not None:
            rsp.ErrorComment = comment.encode("ascii", "replace").decode()
        msg = C_STORE_RSP()
        msg.primitive_to_message(rsp)
        field, got = decode_response_command(encode(msg.command_set, True, True))
        expected = (comment or "").encode("ascii", "replace").decode()
        assert field == 0x8001 and got == StoreResponse(message_id, status, expected)
    echo = C_ECHO()
    echo.MessageIDBeingRespondedTo, echo.Status = 3, 0
    msg = C_ECHO_RSP()
    msg.primitive_to_message(echo)
    assert decode_response_command(encode(msg.command_set, True, True)) == (0x8030, None)


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
    assert [r.kind for r in outcome.results] == ["stored", "stored", "rejected"]  # refused for good
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


def test_a_peer_that_dies_mid_study_loses_the_in_flight_instance_and_cannot_take_the_rest(fep, tmp_path):
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
    assert not outcome.ok and "无法连接前置机" in outcome.error  # the rest would go on a new association
    assert [r.kind for r in results] == ["stored"] * 5 + ["lost"] and "连接中断" in results[-1].error


# --------------------------------------------------------------------------- real-world files (issue 17)


def _testdata(name: str) -> str:
    """One of pydicom's bundled test files (installed with pydicom; never downloaded)."""
    path = get_testdata_file(name, download=False)
    assert path, f"{name} is not installed with pydicom"
    return path


def _config(peer_aet: str, port: int, **changes) -> DicomConfig:
    return DicomConfig(fep=Peer(peer_aet, "127.0.0.1", port), **{"dimse_timeout": 5.0, **changes})


def test_an_odd_length_deflated_data_set_is_padded_and_storescp_and_orthanc_store_it(
    fep, storescp_factory, tmp_path
):
    """image_dfl.dcm: a deflated stream of 4,303 bytes. Framed unpadded, storescp aborts ("Odd
    Fragment Length") and Orthanc never answers; padded to an even length (PS3.5 §A.5) both store
    it, identical to the original."""
    original = Path(_testdata("image_dfl.dcm"))
    inst = read_instance(original)
    assert (inst.size - inst.data_offset) % 2 == 1  # the file's data set really is of odd length
    scp = storescp_factory()
    for peer, stored_copy in (
        (
            Peer(scp.aet, "127.0.0.1", scp.port),
            lambda: scp.stored_files()[inst.sop_instance_uid].read_bytes(),
        ),
        (Peer(fep.aet, "127.0.0.1", fep.dicom_port), lambda: fep.stored_file(inst.sop_instance_uid)),
    ):
        outcome = StoreSCU(_config(peer.ae_title, peer.port)).send_all([inst])
        assert outcome.ok and [r.kind for r in outcome.results] == ["stored"], (peer, outcome.error)
        assert same_instance(original, stored_copy()) == []


def test_no_fragment_is_of_odd_length_even_when_the_peer_offers_an_odd_maximum_pdu(tmp_path):
    """A peer whose maximum PDU length is odd: the data set is cut in even-length PDVs."""
    study = write_ct_study(tmp_path / "s", 2, rows=128, columns=128)
    lengths, received = [], []

    def on_pdu(event):
        for item in getattr(event.pdu, "presentation_data_value_items", []):
            lengths.append(len(item.presentation_data_value) - 1)  # minus the message control header

    def on_store(event):
        received.append(bytes(event.dataset.PixelData))
        return 0x0000

    scp = AE(ae_title="ODD_PDU")
    scp.maximum_pdu_size = 16385
    scp.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian])
    port = free_port()
    server = scp.start_server(
        ("127.0.0.1", port),
        block=False,
        evt_handlers=[(evt.EVT_PDU_RECV, on_pdu), (evt.EVT_C_STORE, on_store)],
    )
    try:
        outcome = StoreSCU(_config("ODD_PDU", port)).send_all(scan_folder(study.folder).instances)
    finally:
        server.shutdown()
    assert outcome.ok and outcome.stored == 2
    assert len(lengths) > 4 and [n for n in lengths if n % 2] == []
    assert received == [dcmread(p).PixelData for p in sorted(study.folder.glob("*.dcm"))]


RT_MISMATCHED = (
    "rtdose.dcm",
    "rtdose_1frame.dcm",
    "rtdose_expb.dcm",
    "rtdose_expb_1frame.dcm",
    "rtplan.dcm",
    "badVR.dcm",
)


def test_the_store_command_names_the_data_sets_uids_not_the_file_metas(fep):
    """Six of pydicom's files carry another SOP Instance UID in their file meta than in their data
    set; Orthanc refuses a command whose UID is not the data set's (0xA900). The data set's UIDs
    go in the command; the meta's is kept to be reported. (The six share their data set UID: each
    is sent to an emptied Orthanc.)"""
    scu = StoreSCU(_config(fep.aet, fep.dicom_port))
    for name in RT_MISMATCHED:
        inst = read_instance(_testdata(name))
        ds = dcmread(_testdata(name), stop_before_pixels=True)
        assert inst.sop_instance_uid == ds.SOPInstanceUID and inst.sop_class_uid == ds.SOPClassUID
        assert inst.meta_sop_instance_uid == ds.file_meta.MediaStorageSOPInstanceUID != ds.SOPInstanceUID
        assert (
            inst.meta_sop_instance_uid in inst.meta_mismatch and inst.sop_instance_uid in inst.meta_mismatch
        )
        outcome = scu.send_all([inst])
        assert [r.kind for r in outcome.results] == ["stored"], (name, outcome.results[0].error)
        assert same_instance(Path(inst.path), fep.stored_file(inst.sop_instance_uid)) == [], name
        fep.forget()


UNSENDABLE = {  # file: what the reason must name
    "SC_rgb_jpeg.dcm": "隐式 VR",  # an implicit VR data set labelled JPEG Baseline (explicit VR)
    "MR_truncated.dcm": "不完整",  # pixel data cut short
    "rtplan_truncated.dcm": "不完整",  # a sequence cut short
    "UN_sequence.dcm": "SOPInstanceUID",  # no SOP Class / Instance UID in the data set
    "dicomdirtests/DICOMDIR": "DICOMDIR",  # a media directory, not an instance
    "JPEGLSNearLossless_08.dcm": "SeriesInstanceUID",  # the tags a PACS files an instance under
}


def test_a_file_that_cannot_be_sent_is_refused_before_anything_is_proposed(fep):
    """Each file is checked before its context is proposed: header parseable and complete, the
    transfer syntax consistent with the data set's encoding, the tags the peer needs present. A
    file that fails is reported with its reason and never goes on the wire; its neighbours go."""
    healthy = [read_instance(_testdata(name)) for name in ("CT_small.dcm", "MR_small.dcm")]
    bad = [read_instance(_testdata(name)) for name in UNSENDABLE]
    results = []
    outcome = StoreSCU(_config(fep.aet, fep.dicom_port)).send_all(
        [healthy[0], *bad, healthy[1]], on_result=results.append
    )
    assert outcome.ok, outcome.error
    kinds = {Path(r.instance.path).name: (r.kind, r.error) for r in results}
    assert kinds[Path(healthy[0].path).name][0] == kinds[Path(healthy[1].path).name][0] == "stored"
    for name, words in UNSENDABLE.items():
        kind, reason = kinds[Path(name).name]
        assert kind == "invalid" and words in reason, (name, kind, reason)
    assert sorted(fep.receipts()) == sorted(i.sop_instance_uid for i in healthy)  # nothing else sent


def test_a_link_lost_on_one_instance_ends_only_that_association(choking_scp_factory, tmp_path):
    """The peer aborts (or never answers) on the third instance of six: that instance is reported
    lost, and the three after it go on a new association."""
    study = write_ct_study(tmp_path / "s", 6, rows=64, columns=64)
    instances = scan_folder(study.folder).instances
    poison = instances[2].sop_instance_uid
    for mode in ("abort", "stall"):
        scp = choking_scp_factory([poison], mode=mode)
        outcome = StoreSCU(_config(scp.aet, scp.port, dimse_timeout=2.0)).send_all(instances)
        assert outcome.ok, (mode, outcome.error)
        assert [r.kind for r in outcome.results] == ["stored", "stored", "lost", "stored", "stored", "stored"]
        assert "中止" in outcome.results[2].error or "未收到应答" in outcome.results[2].error
        assert scp.receipts() == [i.sop_instance_uid for i in instances]  # each sent once, in order


PRIVATE_SOP_CLASS = "1.2.826.0.1.3680043.9.7433.1.1"  # no peer here knows it


def test_a_sop_class_the_peer_refuses_is_a_permanent_per_instance_refusal_naming_it(fep, tmp_path):
    """Orthanc refuses the presentation contexts of a SOP class it does not know. Its instances are
    refused for good with the SOP class named, the others go; when every context is refused the
    association is not a link failure either."""
    study = write_ct_study(tmp_path / "s", 3, rows=32, columns=32)
    odd = dcmread(study.folder / "00002.dcm")
    odd.SOPClassUID = odd.file_meta.MediaStorageSOPClassUID = PRIVATE_SOP_CLASS
    odd.save_as(study.folder / "00002.dcm", enforce_file_format=True)
    instances = scan_folder(study.folder).instances
    scu = StoreSCU(_config(fep.aet, fep.dicom_port))

    mixed = scu.send_all(instances)
    assert mixed.ok and [r.kind for r in mixed.results] == ["stored", "rejected", "stored"]
    assert PRIVATE_SOP_CLASS in mixed.results[1].error and "不支持" in mixed.results[1].error

    alone = scu.send_all([instances[1]])
    assert alone.ok, alone.error  # not "cannot reach the front-end processor"
    assert [r.kind for r in alone.results] == ["rejected"] and PRIVATE_SOP_CLASS in alone.results[0].error


def test_statuses_are_classified_as_ps3_4_defines_them():
    """Success and Warning store; 0xA7xx (Refused: Out of Resources) and 0x0213 may pass; the
    other failures are refusals of this instance; every reason says what the code means."""
    expected = {
        0x0000: "stored",
        0xB000: "stored",
        0xB007: "stored",
        0xB006: "stored",
        0x0001: "stored",
        0xA700: "failed",
        0xA7FF: "failed",
        0x0213: "failed",
        0xA900: "rejected",
        0xA9FF: "rejected",
        0xC000: "rejected",
        0xCFFF: "rejected",
        0x0122: "rejected",
        0x0124: "rejected",
        0x0117: "rejected",
        0x0212: "rejected",
        0xFFFF: "rejected",
    }
    assert {code: status_kind(code) for code in expected} == expected
    assert "资源不足" in status_reason(0xA700, CTImageStorage)
    assert "SOP 类" in status_reason(0xA900, CTImageStorage) and "CT Image Storage" in status_reason(
        0xA900, CTImageStorage
    )
    assert "无法理解" in status_reason(0xC001, CTImageStorage, "bad tag")
    assert "bad tag" in status_reason(0xC001, CTImageStorage, "bad tag")


BIG_ENDIAN_OR_DEFLATED = (
    ("MR_small_bigendian.dcm", "MR_small.dcm"),  # (file, its little endian twin in pydicom's set)
    ("MR_small_expb.dcm", "MR_small.dcm"),
    ("SC_rgb_small_odd_big_endian.dcm", "SC_rgb_small_odd.dcm"),
    ("rtdose_expb.dcm", None),  # 32-bit OW: dcmtk's conversion is the reference
    ("liver_expb_1frame.dcm", "liver_1frame.dcm"),
    ("ExplVR_BigEnd.dcm", None),
    ("image_dfl.dcm", None),
)


def test_big_endian_and_deflated_files_are_converted_losslessly_for_a_peer_that_takes_neither(
    orthanc_factory,
):
    """Explicit VR big endian and deflated explicit VR little endian files reach a PACS that takes
    neither, converted to explicit VR little endian as storescu converts them: same elements and
    pixel data as storescu's copy, and as pydicom's little endian twin of the file where it has one."""
    ours = orthanc_factory("OURS", **NO_BIG_ENDIAN_NOR_DEFLATE)
    theirs = orthanc_factory("THEIRS", **NO_BIG_ENDIAN_NOR_DEFLATE)
    instances = [read_instance(_testdata(name)) for name, _ in BIG_ENDIAN_OR_DEFLATED]
    outcome = StoreSCU(_config(ours.aet, ours.dicom_port)).send_all(instances)
    assert [r.kind for r in outcome.results] == ["stored"] * len(instances), [
        r.error for r in outcome.results
    ]
    for inst, (name, twin) in zip(instances, BIG_ENDIAN_OR_DEFLATED, strict=True):
        assert storescu(inst.path, theirs.aet, theirs.dicom_port).stored, name
        copy, reference = ours.stored_file(inst.sop_instance_uid), theirs.stored_file(inst.sop_instance_uid)
        assert dcmread(BytesIO(copy)).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, name
        assert same_instance(Path(inst.path), copy) == [], name
        assert dcmread(BytesIO(copy)).PixelData == dcmread(BytesIO(reference)).PixelData, name
        if twin:
            assert dcmread(BytesIO(copy)).PixelData == dcmread(_testdata(twin)).PixelData, name


def test_big_endian_and_deflated_files_reach_a_peer_that_takes_only_implicit_vr(storescp_factory):
    """storescp +xi (implicit VR little endian only): converted to it, pixel data intact."""
    scp = storescp_factory("IMPLICIT", options=("+xi",))
    names = ("MR_small_bigendian.dcm", "image_dfl.dcm", "MR_small.dcm")
    instances = [read_instance(_testdata(name)) for name in names]
    outcome = StoreSCU(_config(scp.aet, scp.port)).send_all(instances)
    assert [r.kind for r in outcome.results] == ["stored"] * 3, [r.error for r in outcome.results]
    stored = scp.stored_files()
    for inst in instances:
        copy = stored[inst.sop_instance_uid]
        assert dcmread(copy).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert same_instance(Path(inst.path), copy.read_bytes()) == []
    assert (
        dcmread(stored[instances[0].sop_instance_uid]).PixelData
        == dcmread(_testdata("MR_small.dcm")).PixelData
    )
