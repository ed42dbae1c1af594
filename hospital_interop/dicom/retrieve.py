"""Retrieve a study from the PACS into a folder: C-GET (instances come back on our association)
or C-MOVE (the PACS opens an association to our temporary storage SCP, whose AE title and port
the PACS must know). Received data sets are written as they arrived, without decoding."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from pynetdicom.status import code_to_category

from hospital_interop.filemodes import write_private

from .config import DicomConfig

log = logging.getLogger(__name__)

RECEIVE_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]


@dataclass
class RetrieveOutcome:
    received: int = 0
    completed: int | None = None  # the PACS's final counts, when it sent them
    failed: int | None = None
    warning: int | None = None
    error: str = ""  # Chinese; empty when the retrieval finished
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error


class _Sink:
    """Writes each received instance to ``folder/<SOP Instance UID>.dcm`` (atomically, mode 0600)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.lock = threading.Lock()
        self.files: list[Path] = []

    def handle_store(self, event) -> int:
        try:
            sop = str(event.request.AffectedSOPInstanceUID)
            target = write_private(self.folder, f"{sop}.dcm", event.encoded_dataset(), durable=False)
        except Exception:  # an unwritable folder must answer "out of resources", not kill the thread
            log.exception("cannot write a retrieved instance")
            return 0xA700
        with self.lock:
            self.files.append(target)
        return 0x0000


def _query(study_instance_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_instance_uid
    return ds


def _finish(outcome: RetrieveOutcome, responses, what: str) -> RetrieveOutcome:
    last = None
    for status, _identifier in responses:
        if not status:  # no response within the DIMSE timeout, or the association ended
            outcome.error = f"{what}未完成：PACS 无应答或连接中断"
            return outcome
        last = status
        if code_to_category(status.Status) != "Pending":
            break
    if last is None:
        outcome.error = f"{what}未完成：PACS 无应答"
        return outcome
    outcome.completed = last.get("NumberOfCompletedSuboperations")
    outcome.failed = last.get("NumberOfFailedSuboperations")
    outcome.warning = last.get("NumberOfWarningSuboperations")
    category = code_to_category(last.Status)
    if category == "Failure" or (outcome.failed or 0) > 0:
        outcome.error = f"{what}失败：PACS 返回状态 0x{last.Status:04X}，失败 {outcome.failed or 0} 个实例"
    elif category == "Cancel":
        outcome.error = f"{what}被取消"
    return outcome


def _retrieve_ae(config: DicomConfig) -> AE:
    ae = AE(ae_title=config.calling_ae_title)
    ae.maximum_pdu_size = config.max_pdu
    ae.acse_timeout = config.acse_timeout
    ae.dimse_timeout = config.dimse_timeout
    ae.network_timeout = config.network_timeout
    ae.connection_timeout = config.connect_timeout
    return ae


def retrieve_study(config: DicomConfig, study_instance_uid: str, folder: str | Path) -> RetrieveOutcome:
    """Fetch every instance of the study from ``config.pacs`` into ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if config.pacs is None or not config.pacs.configured:
        return RetrieveOutcome(error="未配置 PACS（DICOM_PACS_AE_TITLE / HOST / PORT），无法调取影像")
    if config.retrieve_mode == "c-move":
        return _c_move(config, study_instance_uid, folder)
    return _c_get(config, study_instance_uid, folder)


def _c_get(config: DicomConfig, study_instance_uid: str, folder: Path) -> RetrieveOutcome:
    ae = _retrieve_ae(config)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    storage = StoragePresentationContexts[:127]
    roles = []
    for cx in storage:
        ae.add_requested_context(cx.abstract_syntax, RECEIVE_SYNTAXES)
        roles.append(build_role(cx.abstract_syntax, scp_role=True))
    sink = _Sink(folder)
    outcome = RetrieveOutcome()
    assoc = ae.associate(
        config.pacs.host,
        config.pacs.port,
        ae_title=config.pacs.ae_title,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, sink.handle_store)],
    )
    if not assoc.is_established:
        outcome.error = f"无法与 PACS {config.pacs} 建立关联（C-GET）"
        return outcome
    try:
        _finish(
            outcome,
            assoc.send_c_get(_query(study_instance_uid), StudyRootQueryRetrieveInformationModelGet),
            "C-GET 调取",
        )
    finally:
        if assoc.is_established:
            assoc.release()
    outcome.files, outcome.received = list(sink.files), len(sink.files)
    return outcome


def _c_move(config: DicomConfig, study_instance_uid: str, folder: Path) -> RetrieveOutcome:
    dest = config.move_destination
    if dest is None or not dest.configured:
        return RetrieveOutcome(
            error="C-MOVE 需要配置本机接收 AE（DICOM_MOVE_DESTINATION_AE_TITLE / HOST / PORT）"
        )
    sink = _Sink(folder)
    scp = AE(ae_title=dest.ae_title)
    scp.maximum_pdu_size = config.max_pdu
    scp.network_timeout = config.network_timeout
    for cx in StoragePresentationContexts:
        scp.add_supported_context(cx.abstract_syntax, RECEIVE_SYNTAXES)
    server = scp.start_server(
        (dest.host, dest.port), block=False, evt_handlers=[(evt.EVT_C_STORE, sink.handle_store)]
    )
    outcome = RetrieveOutcome()
    try:
        ae = _retrieve_ae(config)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = ae.associate(config.pacs.host, config.pacs.port, ae_title=config.pacs.ae_title)
        if not assoc.is_established:
            outcome.error = f"无法与 PACS {config.pacs} 建立关联（C-MOVE）"
            return outcome
        try:
            _finish(
                outcome,
                assoc.send_c_move(
                    _query(study_instance_uid), dest.ae_title, StudyRootQueryRetrieveInformationModelMove
                ),
                "C-MOVE 调取",
            )
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        server.shutdown()
    outcome.files, outcome.received = list(sink.files), len(sink.files)
    return outcome
