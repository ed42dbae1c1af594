"""The 审计日志 page's filter form. It is POSTed: an ID number typed into it never travels in a
URL; the page turns it into the patient digest at once and carries only the digest on."""

from __future__ import annotations

from django import forms

from hospital_interop.municipal.specs import resident_id_ok

from .models import Action
from .selectors import TrailFilter
from .services import patient_digest

ID_TYPES = [("01", "居民身份证"), ("02", "居民户口簿"), ("03", "护照"), ("04", "军官证"), ("99", "其他证件")]


class TrailFilterForm(forms.Form):
    start = forms.DateField(label="从", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="至", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    user = forms.CharField(label="用户", required=False, max_length=150)
    action = forms.ChoiceField(label="操作", required=False, choices=[("", "全部"), *Action.choices])
    id_type = forms.ChoiceField(label="证件类别", required=False, choices=ID_TYPES, initial="01")
    id_no = forms.CharField(
        label="患者证件号",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off", "size": 20}),
    )
    patient = forms.RegexField(regex=r"^[0-9a-f]{40,64}$", required=False, widget=forms.HiddenInput)
    object_type = forms.CharField(label="对象类型", required=False, max_length=64)
    object_id = forms.CharField(label="对象", required=False, max_length=128)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("开始日期不能晚于结束日期。")
        id_no, id_type = (data.get("id_no") or "").strip().upper(), data.get("id_type") or "01"
        if id_no:
            if id_type == "01" and not resident_id_ok(id_no):
                self.add_error("id_no", "请输入有效的居民身份证号（18 位，校验位正确）。")
            else:
                data["patient"] = patient_digest(id_no, id_type)
        return data

    def to_filter(self) -> TrailFilter:
        d = self.cleaned_data
        return TrailFilter(
            start=d.get("start"),
            end=d.get("end"),
            user=(d.get("user") or "").strip(),
            action=d.get("action") or "",
            patient=d.get("patient") or "",
            object_type=(d.get("object_type") or "").strip(),
            object_id=(d.get("object_id") or "").strip(),
        )

    def carried(self) -> dict:
        """The fields the next request (another page, the export) sends again: the ID number
        only as its digest."""
        d = self.cleaned_data if self.is_valid() else {}
        out = {k: d.get(k) for k in ("start", "end", "user", "action", "object_type", "object_id", "patient")}
        return {k: ("" if v is None else v) for k, v in out.items()}
