"""OpenAPI 3 for the EMR intake, generated from the interface specs (drf-spectacular).

Every record type gets its own operations (submit, bulk submit, status) whose request schema is
built from the spec's field tree through the record type's mapping: the intake field names,
Chinese titles and data elements as descriptions, lengths, value sets (enum for complete sets,
the pattern for open subsets such as ICD-10), date formats, nested objects and arrays. A new
document version therefore changes Swagger with no code change.
"""

from __future__ import annotations

from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from hospital_interop.integrations.schema import FIELD_ERROR_REF, MachineSchema, register_error_components
from hospital_interop.municipal.specs import FieldSpec

from .mapping import Node, RecordType

MAX_ENUM = 300  # value sets larger than this are described by pattern/description only
LISTED_CODES = 12  # codes spelled out in a field's description

_TYPE_TEXT = {
    "date": "日期，格式 yyyyMMdd",
    "datetime": "日期时间，格式 yyyyMMddHHmmss",
    "file": "文件内容，Base64 编码",
}
_FORMAT_TEXT = {
    "resident-id": "居民身份证号码（18位，校验位按 GB 11643 检查）",
    "sm3-hex": "SM3 摘要，64 位十六进制",
    "timestamp-ms": "时间戳，格式 yyyyMMddHHmmssSSS",
    "dicom-uid": "DICOM UID",
}


def component_name(record_type: RecordType) -> str:
    return "".join(part.capitalize() for part in record_type.slug.split("-")) + "Record"


def _cond_text(cond: dict) -> str:
    return "，".join(f"{k} 为 {'或'.join(map(str, v))}" for k, v in cond.items())


def _description(f: FieldSpec, node: Node, rt: RecordType, top: bool) -> str:
    parts = [f.title]
    if f.type in _TYPE_TEXT:
        parts.append(_TYPE_TEXT[f.type])
    if f.type == "decimal" and f.precision:
        p, s = f.precision
        parts.append(f"数值，整数部分至多 {p - s} 位，小数至多 {s} 位")
    if f.format:
        text = _FORMAT_TEXT.get(f.format, f.format)
        parts.append(text + (f"（当 {_cond_text(f.when)} 时）" if f.when else ""))
    if f.required_when:
        parts.append(f"当 {_cond_text(f.required_when)} 时必填")
    if f.value_set is not None:
        vs = f.value_set
        listed = "；".join(f"{c} {n}" for c, n in list(vs.codes.items())[:LISTED_CODES])
        more = f" 等（共 {len(vs.codes)} 项）" if len(vs.codes) > LISTED_CODES else ""
        subset = "；未列出的代码须符合编码规则" if vs.subset else ""
        parts.append(f"值域 {vs.id}「{vs.title}」（{vs.source or '本地'}）：{listed}{more}{subset}")
        if f.name_field:
            parts.append(f"名称写在 {node.intake_field(f.name_field)}，须与代码对应")
        if f.hospital_codes:
            parts.append('也可填院内代码 {"code": "…", "codeSystem": "hospital"}，按字典对照为标准代码')
    if rt.fill_names and f.name in node.name_fields:
        parts.append("可省略：按代码从值域自动填写")
    if top and f.name in rt.defaults:
        default = rt.defaults[f.name]
        source = f"系统设置 {default['setting']}" if isinstance(default, dict) else f"“{default}”"
        parts.append(f"可省略：默认取{source}")
    if f.de:
        parts.append(f"数据元 {f.de}")
    if f.note:
        parts.append(str(f.note))
    return "。".join(parts)


def _hospital_code_schema(f: FieldSpec) -> dict:
    dictionary = {"department": "院内科室（含标准科室对照）", "valueSet": "院内代码对照（值域）"}[
        f.hospital_codes
    ]
    return {
        "type": "object",
        "description": f"院内代码：按字典「{dictionary}」对照为{f.value_set.title}；未对照时记录待对照（202），暂不发送",
        "properties": {
            "code": {"type": "string", "maxLength": 64, "description": "代码"},
            "codeSystem": {
                "type": "string",
                "enum": ["hospital", "national"],
                "description": "hospital：院内代码（按字典对照）；national：国家标准代码（原样校验）",
            },
            "name": {"type": "string", "maxLength": 100, "description": "院内名称（可选，便于维护对照）"},
        },
        "required": ["code", "codeSystem"],
        "additionalProperties": False,
    }


def field_schema(f: FieldSpec, node: Node, rt: RecordType, *, top: bool = False) -> dict:
    """JSON Schema (OpenAPI 3.0) of one spec field, in the record type's intake names."""
    t = f.type
    if t == "object":
        schema = object_schema(f.fields, node.children[f.name], rt)
    elif t == "array":
        item = f.items
        if item.type == "object":
            items = object_schema(item.fields, node.children[f.name], rt)
        else:
            items = field_schema(item, node, rt)
        schema = {"type": "array", "items": items}
        if f.min_items:
            schema["minItems"] = f.min_items
        if f.max_items is not None:
            schema["maxItems"] = f.max_items
    elif t in ("string", "code"):
        schema = {"type": "string"}
        if f.length:
            schema["maxLength"] = f.length
        if t == "code":
            vs = f.value_set
            codes = [c for c in vs.codes if not f.length or len(c) <= f.length]
            if not vs.subset and len(codes) <= MAX_ENUM:
                schema["enum"] = codes
            elif vs.pattern is not None:
                schema["pattern"] = _anchored(vs.pattern.pattern)
        elif f.pattern is not None:
            schema["pattern"] = _anchored(f.pattern.pattern)
        elif f.format == "sm3-hex":
            schema["pattern"] = "^[0-9a-fA-F]{64}$"
        elif f.format == "timestamp-ms":
            schema["pattern"] = "^[0-9]{17}$"
    elif t == "integer":
        top_value = 10**f.length - 1 if f.length else 2**31 - 1
        schema = {"type": "integer", "minimum": -top_value, "maximum": top_value}
    elif t == "decimal":
        p, s = f.precision
        bound = float(10 ** (p - s)) - 10.0**-s if s else float(10**p - 1)
        schema = {"type": "number", "minimum": -bound, "maximum": bound}
    elif t == "date":
        schema = {"type": "string", "pattern": "^[0-9]{8}$", "minLength": 8, "maxLength": 8}
    elif t == "datetime":
        schema = {"type": "string", "pattern": "^[0-9]{14}$", "minLength": 14, "maxLength": 14}
    elif t == "boolean":
        schema = {"type": "string", "enum": ["T", "F"]} if f.boolean_encoding == "TF" else {"type": "boolean"}
    elif t == "file":
        schema = {"type": "string", "format": "byte"}
    else:  # pragma: no cover - TYPES is closed
        raise AssertionError(t)
    if t == "code" and f.hospital_codes:
        schema = {"oneOf": [schema, _hospital_code_schema(f)]}
    if f.name:  # array items have no name of their own
        schema["description"] = _description(f, node, rt, top)
    return schema


def object_schema(fields: dict[str, FieldSpec], node: Node, rt: RecordType, *, top: bool = False) -> dict:
    properties, required = {}, []
    for name, f in fields.items():
        intake = node.intake_field(name)
        properties[intake] = field_schema(f, node, rt, top=top)
        if (
            f.required
            and not (rt.fill_names and name in node.name_fields)
            and not (top and name in rt.defaults)
        ):
            required.append(intake)
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _anchored(pattern: str) -> str:
    """JSON Schema patterns search; the spec's patterns must match whole values."""
    return pattern if pattern.startswith("^") and pattern.endswith("$") else f"^(?:{pattern})$"


def record_schema(rt: RecordType) -> dict:
    spec = rt.spec
    schema = object_schema(spec.request.fields, rt.root, rt, top=True)
    schema["title"] = f"{spec.name}（{rt.slug}）"
    schema["description"] = (
        f"{rt.group_title} · {spec.name}。市平台服务 {spec.code}（{spec.document} v{spec.version} §{spec.section}），"
        f"主键 {', '.join(rt.key_fields)}。字段、长度与值域取自接口规范文件，未定义的字段会被拒收。"
    )
    schema["example"] = rt.example(0)
    return schema


# --------------------------------------------------------------------------- shared components

_TIME = {"type": "string", "format": "date-time", "nullable": True}
STATUS = {
    "type": "object",
    "required": ["recordType", "interface", "businessKey", "version", "state", "stateName", "attempts"],
    "properties": {
        "recordType": {"type": "string", "description": "记录类型"},
        "interface": {"type": "string", "description": "市平台服务编码"},
        "businessKey": {"type": "string", "description": "主键值，以 | 连接"},
        "version": {"type": "integer", "description": "本院保存的版本号（内容变化才产生新版本）"},
        "state": {
            "type": "string",
            "enum": ["pending", "sending", "retry", "attention", "done", "superseded", "voided"],
            "description": "投递状态代码",
        },
        "stateName": {
            "type": "string",
            "description": "投递状态：待发送、发送中、等待重试、需人工处理、已接收、已被新版本取代、已作废",
        },
        "attempts": {"type": "integer", "description": "向市平台发送的次数"},
        "lastCode": {
            "type": "string",
            "description": "市平台最后一次返回码（0 成功，2001 业务校验未通过，2002 上级记录不存在……）",
        },
        "lastMessage": {"type": "string", "description": "最后信息（如等待上级记录、平台返回的说明）"},
        "lastErrors": {"type": "array", "items": FIELD_ERROR_REF, "description": "市平台返回的字段错误"},
        "waitingFor": {
            "type": "array",
            "items": {"type": "string"},
            "description": "尚待市平台接收的上级记录（接口#主键）",
        },
        "source": {"type": "string", "description": "提交该版本的接入系统"},
        "enqueuedAt": _TIME,
        "nextAttemptAt": _TIME,
        "acceptedAt": {**_TIME, "description": "市平台接收时间"},
        "receipt": {"type": "string", "description": "市平台回执号"},
        "versions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["version", "state", "stateName"],
                "properties": {
                    "version": {"type": "integer"},
                    "state": {"type": "string"},
                    "stateName": {"type": "string"},
                    "enqueuedAt": _TIME,
                    "acceptedAt": _TIME,
                },
            },
        },
    },
}
SUBMIT_RESULT = {
    "type": "object",
    "required": ["created", "statusUrl", "status"],
    "properties": {
        "created": {
            "type": "boolean",
            "description": "true：新记录或新版本已保存待发送；false：与最新版本完全相同，未重复保存",
        },
        "statusUrl": {"type": "string", "description": "查询该记录投递状态的地址"},
        "status": {"$ref": "#/components/schemas/EmrRecordStatus"},
    },
}
BULK_RESULT = {
    "type": "object",
    "required": ["received", "created", "unchanged", "results"],
    "properties": {
        "received": {"type": "integer", "description": "收到的记录数"},
        "created": {"type": "integer", "description": "新保存（新记录或新版本）的记录数"},
        "unchanged": {"type": "integer", "description": "与最新版本相同、未重复保存的记录数"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["line", "businessKey", "created", "version", "state", "stateName", "statusUrl"],
                "properties": {
                    "line": {"type": "integer"},
                    "businessKey": {"type": "string"},
                    "created": {"type": "boolean"},
                    "version": {"type": "integer"},
                    "state": {"type": "string"},
                    "stateName": {"type": "string"},
                    "statusUrl": {"type": "string"},
                },
            },
        },
    },
}
RECORD_TYPE_LIST = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["recordType", "interface", "name", "group", "key", "parents", "url"],
        "properties": {
            "recordType": {"type": "string", "description": "记录类型（URL 中使用）"},
            "interface": {"type": "string", "description": "市平台服务编码"},
            "name": {"type": "string"},
            "group": {"type": "string"},
            "document": {"type": "string"},
            "version": {"type": "string"},
            "section": {"type": "string"},
            "key": {"type": "array", "items": {"type": "string"}, "description": "主键字段"},
            "parents": {
                "type": "array",
                "items": {"type": "string"},
                "description": "须先被市平台接收的上级记录",
            },
            "allowed": {"type": "boolean", "nullable": True, "description": "当前令牌是否有权提交"},
            "url": {"type": "string", "description": "提交地址"},
        },
    },
}
SHARED = {"EmrRecordStatus": STATUS, "EmrSubmitResult": SUBMIT_RESULT, "EmrBulkResult": BULK_RESULT}


class RecordSchema(MachineSchema):
    """AutoSchema of the intake view set: one record type per URL pattern (``view.record_type``).
    Error answers (the one ApiError body) are MachineSchema's, described here per action."""

    def _component(self, name: str, schema: dict) -> dict:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name)
        self.registry.register_on_missing(component)
        return component.ref

    def _shared(self, name: str) -> dict:
        register_error_components(self.registry)  # the status schema's lastErrors are ApiFieldErrors
        for shared_name, schema in SHARED.items():  # register all: they reference each other
            self._component(shared_name, schema)
        return {"$ref": f"#/components/schemas/{name}"}

    @property
    def rt(self) -> RecordType:
        return self.view.get_record_type()

    def _record_ref(self) -> dict:
        return self._component(component_name(self.rt), record_schema(self.rt))

    def get_tags(self):
        return [self.rt.group_title]

    def get_operation_id(self):
        return f"{self.rt.slug.replace('-', '_')}_{self.view.action}"

    def get_summary(self):
        name = self.rt.spec.name
        return {"create": f"提交：{name}", "bulk": f"批量提交：{name}", "retrieve": f"查询投递状态：{name}"}[
            self.view.action
        ]

    def get_description(self):
        rt, spec = self.rt, self.rt.spec
        parents = "、".join(f"{p.interface}" for p in spec.parents)
        order = (
            f"\n\n顺序：本记录须在上级记录（{parents}）被市平台接收后才发送；先到的下级记录会保存并等待，不会被拒收。"
            if parents
            else ""
        )
        head = (
            f"记录类型 `{rt.slug}` → 市平台服务 `{spec.code}` {spec.path}"
            f"（{spec.document} v{spec.version} §{spec.section}），主键 {', '.join(rt.key_fields)}。"
        )
        if self.view.action == "create":
            return (
                head
                + "\n\n按主键幂等：与该主键最新版本完全相同的记录返回 200（不重复保存）；内容变化时保存为新版本"
                "（返回 201），尚未发送的旧版本不再发送。记录有误时返回 400 和逐字段错误，什么也不保存。"
                '\n\n代码字段可填国家标准代码（字符串），也可填院内代码 `{"code": "1001", "codeSystem": "hospital"}`'
                "（接口规范声明可对照的字段），按字典对照为标准代码；尚未对照时返回 202，记录待对照、暂不发送。"
                + order
            )
        if self.view.action == "bulk":
            return (
                head
                + "\n\n请求体为 NDJSON（`Content-Type: application/x-ndjson`，每行一条记录，空行忽略）或 JSON 数组"
                "（`application/json`）。**全部成功或全部不保存**：任何一行有误时返回 400，错误带行号"
                "（JSON 数组为元素序号，从 1 起），一条也不保存；全部正确时在一个事务中保存，"
                "逐行返回结果。每次至多 5000 条。" + order
            )
        return (
            head
            + "\n\n返回该主键最新版本的投递状态及全部版本。主键值以 `|` 连接（URL 中写作 `%7C`），本院记录可省略 orgCode。"
        )

    def get_override_parameters(self):
        if self.view.action != "retrieve":
            return []
        example = "|".join(self.rt.key_fields[1:]) if len(self.rt.key_fields) > 1 else self.rt.key_fields[0]
        return [
            OpenApiParameter(
                "businessKey",
                str,
                OpenApiParameter.PATH,
                description=f"主键值：{'|'.join(self.rt.key_fields)}，以 | 连接；本院记录可省略 orgCode（即 {example}）",
            )
        ]

    def get_request_serializer(self):
        if self.view.action == "create":
            return {"application/json": self._record_ref()}
        if self.view.action == "bulk":
            many = {"type": "array", "items": self._record_ref(), "minItems": 1, "maxItems": 5000}
            return {"application/json": many, "application/x-ndjson": many}
        return None

    def get_response_serializers(self):
        if self.view.action == "create":
            return {
                201: OpenApiResponse(
                    self._shared("EmrSubmitResult"), description="已保存（新记录或新版本），等待发送"
                ),
                200: OpenApiResponse(
                    self._shared("EmrSubmitResult"), description="与最新版本相同，未重复保存"
                ),
                202: OpenApiResponse(
                    self._shared("EmrSubmitResult"),
                    description="记录无误但有院内代码尚未对照（待对照，held）：已保存、暂不发送，"
                    "字典维护对照后自动发送；status.problems 列出字段、院内代码与字典",
                ),
            }
        if self.view.action == "bulk":
            return {
                200: OpenApiResponse(
                    self._shared("EmrBulkResult"), description="全部记录已保存或与最新版本相同"
                )
            }
        return {200: OpenApiResponse(self._shared("EmrRecordStatus"), description="投递状态")}

    def get_error_answers(self) -> dict[int, str]:
        answers = {**super().get_error_answers(), 403: "该接入系统无权提交此类记录"}
        if self.view.action == "create":
            answers.update(
                {
                    400: "记录有误（逐字段错误），什么也没有保存",
                    409: "记录中的就诊、医嘱或报告单号属于另一位患者，什么也没有保存",
                }
            )
        elif self.view.action == "bulk":
            answers.update(
                {
                    400: "至少一行有误（错误带行号），一条也没有保存",
                    413: "请求体过大或行数超过上限",
                    409: "记录中的就诊、医嘱或报告单号属于另一位患者，一条也没有保存",
                    415: "Content-Type 应为 application/x-ndjson 或 application/json",
                }
            )
        else:
            answers[404] = "没有该主键的记录"
        return answers
