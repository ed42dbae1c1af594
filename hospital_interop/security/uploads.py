"""Upload size limits of the forms that take files (settings.UPLOAD_LIMITS, bytes per form).

A form's file field gets ``FileSizeLimit(UPLOAD_LIMITS[<form>])``: a larger file is refused with a
Chinese message naming both sizes, before anything parses it. Today the only such form is the
dictionaries' Excel/CSV import in the admin (``LimitedImportForm``); the machine APIs take JSON
bodies and have their own limits (INTEGRATION_BODY_LIMITS, hospital_interop/integrations/api.py).
tests/security/test_upload_limits.py fails when a form with a file field has no limit."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from import_export.forms import ImportForm


def human_size(n: int, *, up: bool = False) -> str:
    """Bytes in MB (or KB below 1 MB) with one decimal; ``up`` rounds up, so a file a few bytes over
    a 5 MB limit reads 5.1 MB, never "5 MB"."""
    unit, name = (1024 * 1024, "MB") if n >= 1024 * 1024 else (1024, "KB")
    tenths = -(-n * 10 // unit) if up else n * 10 // unit
    return f"{tenths // 10}{'.' + str(tenths % 10) if tenths % 10 else ''} {name}"


@deconstructible
class FileSizeLimit:
    def __init__(self, limit_name: str):
        self.limit_name = limit_name

    @property
    def max_bytes(self) -> int:
        return int(settings.UPLOAD_LIMITS[self.limit_name])

    def __call__(self, upload):
        size = getattr(upload, "size", 0) or 0
        if size > self.max_bytes:
            raise ValidationError(
                f"文件过大：{human_size(size, up=True)}，本页面最多接受 {human_size(self.max_bytes)}。"
                "请拆分文件或删除多余的工作表后重新上传。",
                code="file_too_large",
            )

    def __eq__(self, other):
        return isinstance(other, FileSizeLimit) and other.limit_name == self.limit_name


class LimitedImportForm(ImportForm):
    """The admin import form of the dictionaries, with the size limit on its file."""

    import_file = forms.FileField(
        label=ImportForm.base_fields["import_file"].label, validators=[FileSizeLimit("dictionary_import")]
    )
