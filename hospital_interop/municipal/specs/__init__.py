"""The interface catalogue as data: loader, payload validator and example generator.

Every municipal interface's document, version, path, key fields, ordering and payload schema
live in the YAML files of this folder (``_common/*.yaml``, ``<document>/<version>.yaml``);
:func:`load_catalogue` reads, lints and compiles them once into a :class:`Catalogue`.

Modules, each importing at run time only those listed above it:

    validate.py   format rules (resident ID, dates, SM3 hex, ...) and the compiler that turns
                  field specs into payload checks
    examples.py   synthetic personas; valid and deliberately invalid example payloads
    loader.py     YAML reading, ``$use`` groups, the spec linter (:class:`SpecError`), the spec
                  classes and :func:`load_catalogue`; its docstring documents the spec format
    identity.py   the platform's identity rules for intakes whose own formats carry a patient
    render.py     the text views of ``manage.py specs``

Validation errors are dictionaries ``{"field": "items[2].resultValue", "rule": ...,
"message": "中文说明 (English)"}`` with rule one of required, type, length, precision, valueSet,
nameMatch, format, checksum, minItems, unknown. The platform is strict: fields the spec does
not define are errors at every level.

Public API (import it from here, not from the modules): :func:`load_catalogue`,
:class:`Catalogue`, :class:`DocumentSpec`, :class:`InterfaceSpec`, :class:`FieldSpec`,
:class:`ValueSet`, :class:`Parent`, :class:`SpecError`, :func:`resident_id_ok`,
:func:`identity_errors`, and the renderers used by ``manage.py specs``:
:func:`catalogue_table`, :func:`field_tree`, :func:`check_payload_file`, :func:`example_json`.
"""

# Also importable from here, outside __all__, because tests import them from here: gm's sm3_hex
# and the resident ID check digit.
from hospital_interop.municipal.gm import sm3_hex as sm3_hex

from .identity import identity_errors
from .loader import (
    SPEC_ROOT,
    Catalogue,
    DocumentSpec,
    FieldSpec,
    InterfaceSpec,
    Parent,
    SpecError,
    ValueSet,
    load_catalogue,
)
from .render import catalogue_table, check_payload_file, example_json, field_tree
from .validate import _id_check_digit as _id_check_digit
from .validate import resident_id_ok

__all__ = [
    "SPEC_ROOT",
    "Catalogue",
    "DocumentSpec",
    "FieldSpec",
    "InterfaceSpec",
    "Parent",
    "SpecError",
    "ValueSet",
    "catalogue_table",
    "check_payload_file",
    "example_json",
    "field_tree",
    "identity_errors",
    "load_catalogue",
    "resident_id_ok",
]
