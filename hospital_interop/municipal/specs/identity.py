"""Identity checks for intakes that carry a patient in formats of their own (HIS, LIS).

They sit above the loader because they need the catalogue's value sets (ID_TYPE, SEX).
"""

from __future__ import annotations

from hospital_interop.errors import field_error

from .loader import load_catalogue
from .validate import _date_ok, _resident_id_problem


def identity_errors(patient: dict, prefix: str = "patient") -> list[dict[str, str]]:
    """The platform's rules for a patient's identity fields, for intakes whose own formats carry
    them (HIS events and prompts, LIS reports): ID type in ID_TYPE, a 身份证 (type 01) with its
    birth date and GB 11643 check digit, sex in SEX, birth date a real calendar date (yyyyMMdd).
    Absent fields are the caller's to require; errors name ``prefix.field``."""
    catalogue, errors = load_catalogue(), []
    id_type, id_no = patient.get("idTypeCode") or "01", patient.get("idNo")
    if id_type not in catalogue.value_set("ID_TYPE"):
        errors.append(
            field_error(
                f"{prefix}.idTypeCode",
                "valueSet",
                f"证件类别代码 {id_type} 不在值域 ID_TYPE 中",
                "not in value set ID_TYPE",
            )
        )
    elif (
        id_type == "01"
        and isinstance(id_no, str)
        and id_no
        and (problem := _resident_id_problem(id_no.upper()))
    ):
        errors.append(field_error(f"{prefix}.idNo", *problem))
    sex = patient.get("sexCode")
    if sex and sex not in catalogue.value_set("SEX"):
        errors.append(
            field_error(
                f"{prefix}.sexCode", "valueSet", f"性别代码 {sex} 不在值域 SEX 中", "not in value set SEX"
            )
        )
    birth = patient.get("birthDate")
    if birth and not (isinstance(birth, str) and _date_ok(birth)):
        errors.append(
            field_error(
                f"{prefix}.birthDate",
                "format",
                "出生日期应为有效日期 yyyyMMdd",
                "expected a real date yyyyMMdd",
            )
        )
    return errors
