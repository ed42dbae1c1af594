"""Mask identity numbers, phone numbers and names before a log line leaves the process.

Resident ID ``110105199001011234`` becomes ``110105********1234``; a mobile number keeps its
first three and last four digits; values logged under a name-like key (``name=张三``,
``"patientName": "张三"``) keep their first character only.
"""

import logging
import re

_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_NAME = re.compile(
    r"""((?:[A-Za-z]*[Nn]ame|姓名)["']?\s*[:=]\s*["']?)([\u4e00-\u9fff·]{1,20}|[A-Za-z][A-Za-z .'-]{0,40}[A-Za-z])"""
)


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1) if name else name


def mask_text(text: str) -> str:
    text = _ID.sub(r"\1********\2", text)
    text = _MOBILE.sub(r"\1****\2", text)
    return _NAME.sub(lambda m: m.group(1) + mask_name(m.group(2)), text)


class MaskPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
