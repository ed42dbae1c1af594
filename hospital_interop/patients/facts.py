"""Facts about a patient and about this hospital, in the platform's terms: built here only.

``patient_facts`` gives the ``patient`` object every interface spec shares (``patientCore`` in
``specs/_common/fields.yaml``): name, sex and birth date (taken from a 身份证 when not given),
age on a day, ID type and number, phone. ``org_facts`` gives ``orgCode``/``orgName``;
``platform_datetime`` the wire format of a moment. The recognition, lab and exam payload
builders and the lab PDF all use these, so a rule (e.g. sex from the ID number's 17th digit)
exists once.
"""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.utils import timezone

from hospital_interop.municipal.specs import resident_id_ok


def from_resident_id(id_type: str, id_no: str) -> tuple[str, str]:
    """(sex code, birth date yyyyMMdd) a valid 身份证 tells, else ("", "")."""
    if (id_type or "01") == "01" and resident_id_ok(id_no or ""):
        return ("1" if int(id_no[16]) % 2 else "2"), id_no[6:14]
    return "", ""


def age_at(birth: str, on: date) -> int | None:
    """Age in full years on a day (birth as yyyyMMdd)."""
    if not birth or len(birth) != 8 or not (birth.isascii() and birth.isdigit()):
        return None
    born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def patient_facts(
    *,
    name: str,
    id_type: str,
    id_no: str,
    sex_code: str = "",
    birth_date: str = "",
    phone: str = "",
    on: date | None = None,
) -> dict:
    """The platform's patient object; ``on`` is the day the age is counted at (default today)."""
    id_sex, id_birth = from_resident_id(id_type, id_no)
    sex, birth = sex_code or id_sex, birth_date or id_birth
    facts = {
        "name": name,
        "sexCode": sex or "0",
        "birthDate": birth,
        "idTypeCode": id_type or "01",
        "idNo": id_no,
        "phone": phone,
    }
    age = age_at(birth, on or date.today())
    if age is not None:
        facts["ageYears"] = age
    return facts


def org_facts() -> dict:
    return {"orgCode": settings.PLATFORM["ORG_CODE"], "orgName": settings.HOSPITAL_NAME}


def platform_datetime(value: str | datetime | None) -> str:
    """A moment (a datetime, or ISO 8601 text as the LIS sends it) → yyyyMMddHHmmss, Beijing time;
    "" for none."""
    if not value:
        return ""
    moment = (
        value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S")
