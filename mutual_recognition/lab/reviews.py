"""The LIS review loop (需求 1.2.2(4), 1.2.3(8)): a report the LIS submits for review enters its
module's queue, and the approval of a version starts its upload, with no second call.

``submit_for_review(data)``
    the LIS's report (the same body and validation as ``POST /api/lab/v1/reports``, see
    ``intake.LabReportIn``) plus ``module``, ``version`` and ``reviewers``: the report is stored
    as a lab version (``services.approve``: a changed report is version n+1) and opened for
    review in the module (``esign.services.open_review``). All or nothing.
``on_review_approved`` / ``on_approval_withdrawn``
    receivers of esign's signals (connected in ``LabConfig.ready``; esign never imports the lab).
    An approved version that is still the report's current one is archived at once (PDF + index
    with the visible signature block into the drop folder); the transfer service enqueues 3.4 +
    3.3 (and the PUB_LAB twins) from there. A withdrawn approval voids that version's uploads not
    yet sent and takes its unsent pair out of the drop folder; the municipal lab protocol has no
    void for a lab report, so a version the platform already holds stays there until the version
    is approved and signed again, which re-sends it as a change (3.3 re-submission = change).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from esign import services as esign
from esign.models import ReviewReport
from hospital_interop.errors import InvalidInput, field_error
from hospital_interop.municipal.gm import sm3_hex
from hospital_interop.uploads.models import OutboxRecord, State

from . import index, intake, payloads, services
from .conf import TransferConfig
from .models import LabReport, LabReportVersion, LabTransfer, LabTransferLog

log = logging.getLogger(__name__)

MODULE_ALIASES = {
    **{code: code for code in ReviewReport.Module.values},
    **{label: code for code, label in ReviewReport.Module.choices},
    "生化": "biochem",
    "骨髓": "marrow",
    "临检骨髓": "marrow",
}
MAX_CANDIDATES = 20
UNSENT = (State.PENDING, State.RETRY, State.ATTENTION)
LAB_INTERFACES = (payloads.PDF, payloads.DETAIL, *payloads.PUBLIC.values())


@dataclass
class Submitted:
    report: LabReport
    version: LabReportVersion
    changed: bool
    review: ReviewReport


def _extras(data) -> tuple[str, int | None, list[dict] | None, list[dict]]:
    """(module code, version or None, candidates or None, errors) of the review fields."""
    errors = []
    raw_module = data.get("module")
    module = MODULE_ALIASES.get(raw_module) if isinstance(raw_module, str) else None
    if raw_module is None or raw_module == "":
        errors.append(field_error("module", "required", "请填写审核模块（module）。"))
    elif module is None:
        errors.append(
            field_error(
                "module",
                "choice",
                f"审核模块 {str(raw_module)[:20]!r} 不存在，应为 "
                + "、".join(f"{code}（{label}）" for code, label in ReviewReport.Module.choices)
                + " 之一。",
            )
        )
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        errors.append(field_error("version", "type", "version 应为正整数（报告版本号，从 1 起）。"))
        version = None
    candidates = data.get("reviewers")
    clean = None
    if candidates is not None:
        if not isinstance(candidates, list) or not candidates:
            errors.append(
                field_error("reviewers", "type", "reviewers 应为非空数组：[{staffNo, name}]，或不传。")
            )
        elif len(candidates) > MAX_CANDIDATES:
            errors.append(field_error("reviewers", "maxItems", f"候选审核者最多 {MAX_CANDIDATES} 人。"))
        else:
            clean = []
            for i, c in enumerate(candidates):
                s = intake.StaffIn(data=c)
                if not s.is_valid():
                    errors += intake.drf_errors(s.errors, f"reviewers[{i}]")
                    continue
                clean.append(
                    {"staffNo": s.validated_data["staffNo"], "name": s.validated_data.get("name", "")}
                )
            seen = [c["staffNo"] for c in clean]
            for i, staff_no in enumerate(seen):
                if staff_no in seen[:i]:
                    errors.append(
                        field_error(f"reviewers[{i}].staffNo", "unique", f"候选审核者工号 {staff_no} 重复。")
                    )
    return module or "", version, clean, errors


def submit_for_review(data, *, source: str = "") -> Submitted:
    """Store the LIS's report as a lab version and open it for review in its module.

    Errors (all reported together, nothing stored): the review fields, the report content (as
    ``services.approve`` checks it), a reviewer (reviewDoctor) not among the candidates (400);
    ``version`` other than the version the content makes, or the version already in another
    module (409); another patient's visit or report (409, ``PatientConflict``)."""
    if not isinstance(data, dict):
        raise InvalidInput([field_error("", "type", "请求体应为 JSON 对象。")])
    module, wanted, candidates, errors = _extras(data)
    _, content_errors = intake.normalise(data)
    errors += content_errors
    reviewer = (data.get("reviewDoctor") or {}) if isinstance(data.get("reviewDoctor"), dict) else {}
    if (
        candidates
        and reviewer.get("staffNo")
        and reviewer["staffNo"] not in {c["staffNo"] for c in candidates}
    ):
        errors.append(
            field_error(
                "reviewDoctor.staffNo",
                "candidate",
                f"报告审核者（工号 {reviewer['staffNo']}）不在候选审核者 reviewers 中：只有报告所列审核者本人能签名。",
            )
        )
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        approved = services.approve(data, source=source)
        number = approved.version.version
        if wanted is not None and wanted != number:
            if approved.changed:
                message = (
                    f"报告 {approved.report.report_id} 的内容与已收到的版本不同，将生成第 {number} 版，"
                    f"与提交的 version {wanted} 不一致；未保存。"
                )
            else:
                message = (
                    f"报告 {approved.report.report_id} 的内容与已收到的第 {number} 版相同，"
                    f"不会生成第 {wanted} 版；内容未变时 version 应为 {number}。未保存。"
                )
            transaction.set_rollback(True)
            raise InvalidInput([field_error("version", "conflict", message)], status=409)
        existing = ReviewReport.objects.filter(
            report_id=approved.report.report_id, report_version=number
        ).first()
        if existing is not None and existing.module != module:
            transaction.set_rollback(True)
            raise InvalidInput(
                [
                    field_error(
                        "module",
                        "conflict",
                        f"报告 {approved.report.report_id} 第 {number} 版已在{existing.get_module_display()}"
                        "审核模块中，不能再提交到其他模块。",
                    )
                ],
                status=409,
            )
        review = esign.open_review(approved.version, module, candidates=candidates)
    log.info(
        "lab report %s v%s submitted for review in %s (%s)",
        approved.report.report_id,
        number,
        module,
        "new version" if approved.changed else "unchanged",
    )
    return Submitted(approved.report, approved.version, approved.changed, review)


# ---------------------------------------------------------------------------------------------
# Receivers of esign's signals
# ---------------------------------------------------------------------------------------------


def _event(event: str, message: str, report_id: str) -> None:
    LabTransferLog.objects.create(event=event, message=message[:4000], report_id=report_id)
    log.info("lab review %s %s: %s", event, report_id, message)


def on_review_approved(sender, review: ReviewReport, signature=None, **kwargs) -> None:
    """An approved (and signed) review version: archive it (PDF + index into the drop folder)."""
    if review.lab_version_id is None:
        return  # a demo report: nothing to upload
    version = LabReportVersion.objects.select_related("report").get(pk=review.lab_version_id)
    report = version.report
    if report.version != version.version:
        _event(
            LabTransferLog.Event.SUPERSEDED,
            f"第 {version.version} 版审核通过，但已有更新的第 {report.version} 版，本版本不再归档上传",
            report.report_id,
        )
        return
    try:
        archived = services.archive(report.report_id)
    except InvalidInput as exc:
        _event(
            LabTransferLog.Event.ERROR,
            f"第 {version.version} 版审核通过后自动归档失败："
            + "；".join(e["message"] for e in exc.errors[:5]),
            report.report_id,
        )
        return
    how = "含电子签名" if archived.version.signed else "未进行电子签名"
    _event(
        LabTransferLog.Event.REVIEWED,
        f"第 {version.version} 版审核通过（{how}），已自动归档：{archived.pdf_path.name}"
        if archived.written
        else f"第 {version.version} 版审核通过，该版本此前已按相同签名状态归档，未重复投递",
        report.report_id,
    )


def on_approval_withdrawn(sender, review: ReviewReport, reason: str = "", **kwargs) -> None:
    """A withdrawn approval: void what of that version was not sent, take its pair out of the
    drop folder, and mark the version unarchived (a new approval archives and sends it again)."""
    if review.lab_version_id is None:
        return
    version = LabReportVersion.objects.select_related("report").get(pk=review.lab_version_id)
    report = version.report
    now = timezone.now()
    cfg = TransferConfig.from_settings()
    with transaction.atomic():
        transfers = list(
            LabTransfer.objects.select_for_update().filter(
                report_id=report.report_id,
                report_version=version.version,
                state__in=(LabTransfer.State.DISCOVERED, LabTransfer.State.ENQUEUED),
            )
        )
        record_ids = [r for t in transfers for r in (t.pdf_record_id, t.detail_record_id) if r]
        rows = OutboxRecord.objects.filter(pk__in=record_ids)
        if report.version == version.version:  # the twins and any re-drive of the current version too
            keys = set(rows.values_list("business_key", flat=True))
            rows = OutboxRecord.objects.filter(interface__in=LAB_INTERFACES, business_key__in=keys)
        held = rows.filter(state__in=(State.DONE, State.SENDING)).count()
        voided = rows.filter(state__in=UNSENT).update(
            state=State.VOIDED,
            last_message="审核已撤销，本版本不再上传",
            next_attempt_at=None,
            updated_at=now,
        )
        for t in transfers:
            LabTransfer.objects.filter(pk=t.pk).update(
                state=LabTransfer.State.CLEARED,
                cleared_at=now,
                reason="审核已撤销，本版本不再上传",
                disposition="审核已撤销：文件已从投递目录取回删除",
            )
        LabReportVersion.objects.filter(pk=version.pk).update(archived_at=None, signed=False)
        LabReport.objects.filter(pk=report.pk, version=version.version).update(
            status=LabReport.Status.APPROVED, archived_at=None
        )
    removed = _remove_own_files(cfg, version, transfers)
    parts = [f"第 {version.version} 版撤销审核（原因：{reason}）"]
    if voided:
        parts.append(f"未发送的 {voided} 条上传已作废")
    if removed:
        parts.append(f"投递目录中的 {removed} 个文件已取回删除")
    if held:
        parts.append(
            f"平台已接收或正在接收 {held} 条：检验互认接口没有作废服务，该版本重新审核签名后以变更（再次上报）覆盖"
        )
    _event(LabTransferLog.Event.WITHDRAWN, "；".join(parts), report.report_id)


def _remove_own_files(cfg: TransferConfig, version: LabReportVersion, transfers: list[LabTransfer]) -> int:
    """Delete this version's pair from the drop folder: the index first (the pair is then never
    complete), each file only when its bytes are this server's archive of the version or the
    transfer's own."""
    own = {t.pdf_name: t.pdf_sm3 for t in transfers} | {t.index_name: t.index_sm3 for t in transfers}
    names = [n for n in (version.index_file, version.pdf_file) if n] + [
        n for n in own if n and n not in (version.index_file, version.pdf_file)
    ]
    removed = 0
    for name in sorted(set(names), key=lambda n: not n.endswith(index.INDEX_EXT)):
        path = cfg.drop_dir / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        digest = sm3_hex(data)
        ours = (
            digest == own.get(name)
            or (name == version.pdf_file and digest == version.pdf_sm3)
            or (name == version.index_file and _index_of(data, version))
        )
        if not ours:
            continue  # a newer drop under the same name: not ours to touch
        path.unlink(missing_ok=True)
        removed += 1
    index.fsync_dir(cfg.drop_dir)
    return removed


def _index_of(data: bytes, version: LabReportVersion) -> bool:
    """An index file this server wrote for this version (its PDF digest is the version's)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return False
    return (
        isinstance(doc, dict)
        and (doc.get("pdf") or {}).get("sm3") == version.pdf_sm3
        and doc.get("reportId") == version.report.report_id
        and doc.get("version") == version.version
    )
