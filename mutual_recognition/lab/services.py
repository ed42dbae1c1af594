"""Writes of the lab report flow: approval (审核) and archive (归档) as the LIS reports them.

``approve(data)`` validates the LIS content (schema, dictionaries, the 3.3 spec — all or
nothing), resolves the doctors' recognition decisions for the visit when the LIS did not send
them, and stores a new version when the content changed (a re-approval with changed results is
version n+1; the same content again changes nothing).

``archive(report_id)`` renders the report PDF and writes it and its index file into the drop
folder (atomically), keeping the PDF bytes as archived; the transfer service (``manage.py
lab_transfer``) takes it from there.
Nothing is sent to the platform inside a request.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from hospital_interop import atrest
from hospital_interop.errors import InvalidInput
from hospital_interop.logmask import mask_name
from hospital_interop.municipal.gm import sm3_hex
from hospital_interop.patients import services as patients
from hospital_interop.patients.models import RefKind
from hospital_interop.patients.services import Identity, Ref
from mutual_recognition.models import Decision, mask_id

from . import index, intake, payloads, pdf
from .conf import TransferConfig
from .models import LabArchivedPdf, LabReport, LabReportVersion, LabTransfer
from .signing import signature_for

log = logging.getLogger(__name__)


@dataclass
class Approval:
    report: LabReport
    version: LabReportVersion
    created: bool  # a new report number
    changed: bool  # a new version was stored


@dataclass
class Archive:
    report: LabReport
    version: LabReportVersion
    pdf_path: Path
    index_path: Path
    written: bool  # False: this version was archived before and nothing was written again


def _iso(value) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else ""


def recognition_from_decisions(
    visit_id: str, patient_key: str, order_ids: list[str] | None
) -> tuple[list[dict], list[dict]]:
    """The doctors' current lab decisions for the visit (requirement 1.2.2 4): refusals become
    non-recognition information, recognitions the accepted external results. Only decisions
    about the report's own patient (``patient_key``, see patients.models.id_key) in that visit."""
    qs = Decision.objects.filter(
        encounter__visit_id=visit_id, encounter__id_key=patient_key, kind="lab", current=True
    )
    if order_ids:
        qs = qs.filter(order_id__in=order_ids)
    refused, accepted = [], []
    for d in qs.order_by("decided_at", "id"):
        if d.recognized:
            r = d.result or {}
            accepted.append(
                {
                    "recognitionItemCode": d.standard_code,
                    "externalOrgCode": d.external_org_code,
                    "externalOrgName": d.external_org_name,
                    "externalReportId": d.external_report_id,
                    "resultValue": str(r.get("value", "")) or "—",
                    "unit": r.get("unit", ""),
                    "externalReportAt": _iso(d.external_at or d.decided_at),
                    "doctorName": d.doctor_name,
                    "acceptedAt": _iso(d.decided_at),
                }
            )
        elif d.platform_reason_code:
            refused.append(
                {
                    "recognitionItemCode": d.standard_code,
                    "externalOrgCode": d.external_org_code,
                    "externalReportId": d.external_report_id,
                    "refusalReasonCode": d.platform_reason_code,
                    "note": d.note,
                    "doctorName": d.doctor_name,
                    "decidedAt": _iso(d.decided_at),
                }
            )
    return refused, accepted


def _patient_claim(content: dict) -> tuple[Identity, list[Ref]]:
    """The patient of a report and the visit, report, application and orders it names."""
    patient = content["patient"]
    refs = [
        Ref(RefKind.VISIT, content["visit"]["visitId"], "visit.visitId"),
        Ref(RefKind.LAB_REPORT, content["reportId"], "reportId"),
        Ref(RefKind.APPLICATION, content["applicationId"], "applicationId"),
    ]
    refs += [Ref(RefKind.ORDER, o, f"orderIds[{i}]") for i, o in enumerate(content.get("orderIds") or [])]
    return Identity(patient.get("idTypeCode") or "01", patient["idNo"], patient.get("patientId") or ""), refs


def approve(data, *, source: str = "") -> Approval:
    """Store an approved report (PatientConflict when it names a visit, report, application or order
    of another patient; InvalidInput for bad content; nothing stored either way)."""
    content, errors = intake.normalise(data)
    if errors:
        raise InvalidInput(errors)
    identity, refs = _patient_claim(content)
    if content["nonRecognitions"] is None or content["externalResults"] is None:
        refused, accepted = recognition_from_decisions(
            content["visit"]["visitId"], identity.key, content.get("orderIds")
        )
        if content["nonRecognitions"] is None:
            content["nonRecognitions"] = refused
        if content["externalResults"] is None:
            content["externalResults"] = accepted
    _, errors = payloads.detail(content)  # dictionaries and the 3.3 spec, before anything is stored
    if errors:
        raise InvalidInput(errors)
    digest = intake.content_hash(content)
    now = timezone.now()
    patient = content["patient"]
    fields = {
        "title": content["reportTitle"],
        "patient_name": patient["name"],
        "patient_key": identity.key,
        "id_masked": mask_id(patient["idNo"]),
        "visit_id": content["visit"]["visitId"],
        "request_dept": content["requestDept"],
        "reported_at": content["reportedAt"],
        "approved_at": now,
        "source": source,
    }
    with transaction.atomic():
        patients.bind(identity, refs, source=f"lab-{source}" if source else "lab")
        report, created = LabReport.objects.select_for_update().get_or_create(
            report_id=content["reportId"], defaults={**fields, "version": 1}
        )
        latest = report.versions.order_by("-version").first()
        if latest is not None and latest.content_hash == digest:
            return Approval(report, latest, created=False, changed=False)
        number = latest.version + 1 if latest else 1
        version = LabReportVersion.objects.create(
            report=report, version=number, content=content, content_hash=digest, approved_at=now
        )
        for k, v in {
            **fields,
            "version": number,
            "status": LabReport.Status.APPROVED,
            "archived_at": None,
        }.items():
            setattr(report, k, v)
        report.save()
    log.info("lab report %s approved, version %s (%s)", report.report_id, number, mask_name(patient["name"]))
    return Approval(report, version, created=created, changed=True)


def archive(report_id: str, *, regenerate: bool = False, config: TransferConfig | None = None) -> Archive:
    """Write the current version's PDF and index into the drop folder (PDF first, index last) and
    keep the PDF bytes as archived (``LabArchivedPdf``).

    They carry this version's own signature only (``signing.signature_for``: same report number
    and version, over the canonical text of this content, by the reviewer it names), else none.
    An archived version is written again only with ``regenerate`` or when its signature state
    changed since (signed after it was archived unsigned, or its signature no longer matches)."""
    report = LabReport.objects.filter(report_id=report_id).first()
    if report is None:
        raise InvalidInput(
            [{"field": "reportId", "rule": "unknown", "message": f"报告 {report_id} 尚未审核上报"}],
            status=404,
        )
    cfg = config or TransferConfig.from_settings()
    version = report.versions.get(version=report.version)
    stem = index.stem_for(report.report_id, version.version)
    pdf_path, index_path = cfg.drop_dir / (stem + index.PDF_EXT), cfg.drop_dir / (stem + index.INDEX_EXT)
    mapped = payloads.map_content(version.content)
    signature = None if mapped.errors else signature_for(version, mapped)
    if (
        version.archived_at
        and not regenerate
        and (mapped.errors or version.signed == (signature is not None))
    ):
        return Archive(report, version, pdf_path, index_path, written=False)
    if mapped.errors:  # the dictionaries changed since approval
        raise InvalidInput(mapped.errors, status=409)
    pdf_bytes = pdf.render(mapped, signature)
    archived_at = timezone.now()
    index_bytes = index.build(
        report_id=report.report_id,
        version=version.version,
        archived_at=_iso(archived_at),
        pdf_name=pdf_path.name,
        pdf_bytes=pdf_bytes,
        content=version.content,
        signature=signature,
        key=cfg.index_key(),
    )
    index.atomic_write(cfg.drop_dir, pdf_path.name, pdf_bytes)
    index.atomic_write(cfg.drop_dir, index_path.name, index_bytes)
    with transaction.atomic():
        LabReportVersion.objects.filter(pk=version.pk).update(
            archived_at=archived_at,
            pdf_file=pdf_path.name,
            index_file=index_path.name,
            pdf_sm3=sm3_hex(pdf_bytes),
            signed=signature is not None,
        )
        LabArchivedPdf.objects.update_or_create(
            version=version,
            defaults={"data": pdf_bytes, "sm3": sm3_hex(pdf_bytes), "archived_at": archived_at},
        )
        LabReport.objects.filter(pk=report.pk, version=version.version).update(
            status=LabReport.Status.ARCHIVED, archived_at=archived_at
        )
    report.refresh_from_db()
    version.refresh_from_db()
    log.info("lab report %s v%s archived: %s", report.report_id, version.version, pdf_path.name)
    return Archive(report, version, pdf_path, index_path, written=True)


def requeue_quarantined(transfer_id: int, config: TransferConfig | None = None) -> list[str]:
    """Move a quarantined pair's files back into the drop folder (PDF first, index last), after the
    cause was fixed (e.g. a dictionary mapping added), opened: the drop folder is the LIS hand-off,
    in clear. The transfer service then processes them again. A sealed file that does not open
    (changed on disk) moves nothing (ValueError)."""
    cfg = config or TransferConfig.from_settings()
    t = LabTransfer.objects.filter(pk=transfer_id, state=LabTransfer.State.QUARANTINED).first()
    if t is None or not t.disposition:
        raise ValueError("该记录不是隔离状态，无法重新处理")
    folder = Path(t.disposition)
    # name -> its file in the quarantine folder: in clear if a person put a fixed copy there (opened
    # with manage.py open_sealed_file, or quarantined before files were sealed), else sealed
    found = {}
    for name in (t.pdf_name, t.index_name):
        for path in (folder / name, folder / (name + atrest.SEALED_SUFFIX)):
            if name and path.exists():
                found[name] = path
                break
    if not found:
        raise ValueError(f"隔离目录 {folder} 中已没有该报告的文件")
    for name in found:
        if (cfg.drop_dir / name).exists():
            raise ValueError(f"投递目录中已有同名文件 {name}，请先处理")
    opened = {}
    for name, path in found.items():  # every file opens before any is moved
        if path.name.endswith(atrest.SEALED_SUFFIX):
            try:
                opened[name] = atrest.read_sealed_file(path)
            except atrest.SealBroken as broken:
                raise ValueError(f"隔离文件 {path.name} 无法解密：{broken.message}") from None
    names = sorted(found, key=lambda n: n.endswith(index.INDEX_EXT))  # the PDF first
    for name in names:
        if name in opened:
            index.atomic_write(cfg.drop_dir, name, opened[name])
            found[name].unlink()
        else:
            os.replace(found[name], cfg.drop_dir / name)
            (folder / (name + atrest.SEALED_SUFFIX)).unlink(missing_ok=True)  # the copy it replaced
    index.fsync_dir(cfg.drop_dir)
    LabTransfer.objects.filter(pk=t.pk).update(disposition=f"{t.disposition}（已移回投递目录）")
    return names
