"""OpenAPI 3 of the RIS/PACS intake (drf-spectacular), generated from the interface specs: the
report body is the EXAM_RESULT_SUBMIT spec with the intake differences of ``mapping``; the
withdrawal body is the EXAM_REPORT_VOID spec. A new document version changes Swagger, not code."""

from __future__ import annotations

from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse

from hospital_interop.integrations.schema import FIELD_ERROR_REF, MachineSchema, register_error_components
from hospital_interop.municipal.specs import FieldSpec

from . import mapping

LISTED_CODES = 12
_TYPE_TEXT = {"date": "日期 yyyyMMdd", "datetime": "日期时间 yyyyMMddHHmmss", "file": "Base64"}


def _anchored(pattern: str) -> str:
    return pattern if pattern.startswith("^") and pattern.endswith("$") else f"^(?:{pattern})$"


def field_schema(f: FieldSpec, note: str = "") -> dict:
    t = f.type
    if t == "object":
        return object_schema(f.fields, f.title)
    if t == "array":
        items = object_schema(f.items.fields, "") if f.items.type == "object" else field_schema(f.items)
        return {"type": "array", "items": items, "description": f.title}
    if t in ("string", "code"):
        schema: dict = {"type": "string"}
        if f.length:
            schema["maxLength"] = f.length
        if t == "code" and f.value_set is not None:
            vs = f.value_set
            if not vs.subset and len(vs.codes) <= 300:
                schema["enum"] = list(vs.codes)
            elif vs.pattern is not None:
                schema["pattern"] = _anchored(vs.pattern.pattern)
        elif f.pattern is not None:
            schema["pattern"] = _anchored(f.pattern.pattern)
    elif t == "integer":
        schema = {"type": "integer"}
    elif t == "decimal":
        schema = {"type": "number"}
    elif t == "date":
        schema = {"type": "string", "pattern": "^[0-9]{8}$"}
    elif t == "datetime":
        schema = {"type": "string", "pattern": "^[0-9]{14}$"}
    elif t == "boolean":
        schema = {"type": "boolean"}
    else:
        schema = {"type": "string", "format": "byte"}
    parts = [f.title]
    if t in _TYPE_TEXT:
        parts.append(_TYPE_TEXT[t])
    if f.value_set is not None:
        codes = "；".join(f"{c} {n}" for c, n in list(f.value_set.codes.items())[:LISTED_CODES])
        parts.append(
            f"值域 {f.value_set.title}：{codes}" + (" 等" if len(f.value_set.codes) > LISTED_CODES else "")
        )
    if f.de:
        parts.append(f"数据元 {f.de}")
    if note:
        parts.append(note)
    schema["description"] = "。".join(parts)
    return schema


def object_schema(fields: dict[str, FieldSpec], title: str, *, skip=(), optional=(), notes=None) -> dict:
    notes = notes or {}
    props = {n: field_schema(f, notes.get(n, "")) for n, f in fields.items() if n not in skip}
    required = [
        n
        for n, f in fields.items()
        if f.required
        and n not in skip
        and n not in optional
        and not (f.type != "code" and any(g.name_field == n for g in fields.values()))
    ]
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    if title:
        schema["description"] = title
    if required:
        schema["required"] = required
    return schema


def report_schema() -> dict:
    spec = mapping.spec(mapping.RESULT)
    notes = {f: "院内科室代码（本服务按字典对照为标准科室代码与名称）" for f in mapping.DEPARTMENT_FIELDS}
    notes[mapping.BODY_PART_FIELD] = "院内检查部位代码，可省略（本服务按检查项目与部位对照为标准部位）"
    notes[mapping.EXAM_ITEM_FIELD] = "院内检查医嘱项目代码（本服务对照为互认项目代码）"
    schema = object_schema(
        spec.fields,
        "检查报告（审核或重新审核）",
        skip=mapping.server_filled(),
        optional=mapping.intake_optional(),
        notes=notes,
    )
    for name in (*mapping.DEPARTMENT_FIELDS, mapping.BODY_PART_FIELD):
        prop = schema["properties"][name]
        prop.pop("enum", None)
        prop.pop("pattern", None)
    schema["properties"][mapping.PDF_FIELD] = {
        "type": "object",
        "description": "报告 PDF（市平台检查报告提交服务上传的文件）",
        "additionalProperties": False,
        "required": [mapping.PDF_NAME, mapping.PDF_CONTENT],
        "properties": {
            mapping.PDF_NAME: {"type": "string", "maxLength": 100, "description": "文件名"},
            mapping.PDF_CONTENT: {"type": "string", "format": "byte", "description": "PDF 内容，Base64"},
        },
    }
    schema["properties"][mapping.IMAGE_FOLDER_FIELD] = {
        "type": "string",
        "description": "该检查 DICOM 文件所在目录（须在 DICOM_FOLDER_ROOTS 之下）；省略时按 "
        "studyInstanceUid 从 PACS 调取",
    }
    schema.setdefault("required", []).append(mapping.PDF_FIELD)
    return schema


def withdraw_schema() -> dict:
    spec = mapping.spec(mapping.VOID)
    return object_schema(
        spec.fields,
        "撤回（作废）检查报告",
        skip={*mapping.DEFAULTS, *spec.key},
        optional={mapping.VOID_DEFAULT_TIME},
    )


STUDY_EVENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["studyInstanceUid"],
    "properties": {
        "studyInstanceUid": {"type": "string", "maxLength": 64, "description": "Study Instance UID"},
        "imageFolder": {
            "type": "string",
            "description": "DICOM 文件所在目录；省略时从 PACS 调取（C-GET 或 C-MOVE，按配置）",
        },
        "accessionNo": {"type": "string", "maxLength": 32, "description": "检查号"},
        "reportId": {"type": "string", "maxLength": 20, "description": "检查报告单编号"},
    },
}
UPLOAD = {
    "type": "object",
    "nullable": True,
    "properties": {
        "interface": {"type": "string"},
        "version": {"type": "integer"},
        "state": {"type": "string"},
        "stateName": {"type": "string"},
        "attempts": {"type": "integer"},
        "lastCode": {"type": "string"},
        "lastMessage": {"type": "string"},
        "acceptedAt": {"type": "string", "nullable": True},
        "receipt": {"type": "string"},
    },
}
STUDY = {
    "type": "object",
    "nullable": True,
    "properties": {
        "studyInstanceUid": {"type": "string"},
        "state": {"type": "string"},
        "stateName": {"type": "string"},
        "total": {"type": "integer"},
        "stored": {"type": "integer", "description": "前置机已确认接收的实例数"},
        "rejected": {"type": "integer"},
        "attempts": {"type": "integer"},
        "nextAttemptAt": {"type": "string", "nullable": True},
        "lastError": {"type": "string"},
        "statusUrl": {"type": "string"},
    },
}
REPORT_STATUS = {
    "type": "object",
    "properties": {
        "reportId": {"type": "string"},
        "state": {"type": "string", "enum": ["held", "active", "withdrawn"]},
        "stateName": {"type": "string"},
        "version": {"type": "integer"},
        "created": {"type": "boolean"},
        "changed": {"type": "boolean"},
        "problems": {
            "type": "array",
            "items": FIELD_ERROR_REF,
            "description": "待对照时：未对照的院内代码（字段、规则 mapping.*、中文说明）",
        },
        "uploads": {
            "type": "object",
            "properties": {k: {"$ref": "#/components/schemas/ExamUpload"} for k in ("pdf", "result", "void")},
        },
        "study": {"$ref": "#/components/schemas/ExamStudy"},
        "statusUrl": {"type": "string"},
    },
}
SHARED = {"ExamUpload": UPLOAD, "ExamStudy": STUDY, "ExamReportStatus": REPORT_STATUS}


class ExamSchema(MachineSchema):
    """Views declare ``openapi = {method: {"request": name|None, "responses": {status: (name, text)},
    "errors": {status: text}, ...}}``: ``responses`` are the answers with a body of their own,
    ``errors`` describe the error answers (the one ApiError body, see MachineSchema)."""

    def _component(self, name: str) -> dict:
        builders = {
            "ExamReport": report_schema,
            "ExamWithdraw": withdraw_schema,
            "ExamStudyEvent": lambda: STUDY_EVENT,
        }
        register_error_components(self.registry)  # the report status lists its problems as ApiFieldErrors
        for shared, schema in SHARED.items():
            self.registry.register_on_missing(
                ResolvedComponent(shared, ResolvedComponent.SCHEMA, schema=schema, object=shared)
            )
        if name in builders:
            self.registry.register_on_missing(
                ResolvedComponent(name, ResolvedComponent.SCHEMA, schema=builders[name](), object=name)
            )
        return {"$ref": f"#/components/schemas/{name}"}

    def _spec(self) -> dict:
        return self.view.openapi.get(self.method.lower(), {})

    def get_tags(self):
        return ["检查（影像）数据接入"]

    def get_summary(self):
        return self._spec().get("summary")

    def get_description(self):
        return self._spec().get("description", "")

    def get_request_serializer(self):
        name = self._spec().get("request")
        return {"application/json": self._component(name)} if name else None

    def get_response_serializers(self):
        return {
            status: OpenApiResponse(self._component(name), description=text)
            for status, (name, text) in self._spec().get("responses", {}).items()
        }

    def get_error_answers(self) -> dict[int, str]:
        return {
            **super().get_error_answers(),
            403: "该接入系统无权提交此类记录",
            **self._spec().get("errors", {}),
        }
