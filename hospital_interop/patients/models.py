"""Which patient each visit, order and report belongs to, fixed once stored.

Every intake (HIS events and prompts, LIS reports, RIS reports, EMR records) and the outbox
bind the identifiers a request names to the patient it names. The first binding wins; a later
request that names the same identifier with another patient is refused (HTTP 409) and leaves a
``BindingConflict`` row for ops. Identities are stored as digests only (``id_key``): the
registry never holds an identity number in clear.
"""

from __future__ import annotations

from django.db import models

from hospital_interop.atrest import patient_digest_key
from hospital_interop.municipal.gm import hmac_sm3


def id_key(id_type_code: str, id_no: str) -> str:
    """The one digest of a patient identity: HMAC-SM3 under the server's patient digest key
    (``settings.PATIENT_DIGEST_KEY_FILE``) of ``<ID type>|<ID number>``, as 40 hex characters.

    Used wherever a patient is found or compared without the ID number in clear: bindings, the
    outbox's ``patient_id_hash`` and its search, visits, lab reports, recognition cache bundles,
    audit entries. A plain hash of an ID number is reversed by trying the few billion valid
    numbers; without the key there is nothing to try."""
    data = f"{id_type_code}|{id_no.strip().upper()}".encode()
    return hmac_sm3(patient_digest_key(), data).hex()[:40]


class RefKind(models.TextChoices):
    """The namespaces of identifiers a patient owns (one HIS/LIS/RIS numbering each)."""

    VISIT = "visit", "就诊流水号"
    STAY = "stay", "住院流水号"
    ORDER = "order", "医嘱号"
    APPLICATION = "application", "电子申请单号"
    LAB_REPORT = "labReport", "检验报告单号"
    EXAM_REPORT = "examReport", "检查报告单号"


class PatientBinding(models.Model):
    kind = models.CharField("类别", max_length=16, choices=RefKind.choices)
    ref = models.CharField("编号", max_length=64)
    id_type_code = models.CharField("证件类别", max_length=2)
    id_key = models.CharField("证件摘要", max_length=40, db_index=True)
    patient_id = models.CharField("院内患者ID", max_length=32, blank=True, default="")
    source = models.CharField("首次登记来源", max_length=32, blank=True, default="")
    created_at = models.DateTimeField("登记时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "患者身份绑定"
        constraints = [models.UniqueConstraint(fields=["kind", "ref"], name="patient_binding_once")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.ref}"


class BindingConflict(models.Model):
    """A refused request that named a bound identifier with another patient (for ops)."""

    at = models.DateTimeField("时间", auto_now_add=True, db_index=True)
    source = models.CharField("来源", max_length=32, blank=True, default="")
    kind = models.CharField("类别", max_length=16, choices=RefKind.choices)
    ref = models.CharField("编号", max_length=64)
    field = models.CharField("字段", max_length=100, blank=True, default="")
    what = models.CharField("不一致之处", max_length=40, blank=True, default="")
    bound_key = models.CharField("已绑定患者（证件摘要）", max_length=40, blank=True, default="")
    given_key = models.CharField("请求中的患者（证件摘要）", max_length=40, blank=True, default="")

    class Meta:
        verbose_name = verbose_name_plural = "患者身份冲突"
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()} {self.ref}"
