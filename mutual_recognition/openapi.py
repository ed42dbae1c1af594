"""OpenAPI 3 of the recognition machine API (prompt, events, decisions, results; see api.py).

The request schemas state what ``services`` checks (``encounter_fields``, ``parse_items``, their
length limits); the answer schemas state what ``services.answer_prompt``, ``services.
order_summaries`` and ``selectors.result_row`` write. Views name their operation's entry here
(``openapi = PROMPT_DOC``); ``RecognitionSchema`` turns it into the operation, with the
error answers (the one ApiError body) from ``MachineSchema``.
"""

from __future__ import annotations

from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from hospital_interop.integrations.schema import FIELD_ERROR_REF, MachineSchema

from . import services


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(limit: int, description: str, **extra) -> dict:
    return {"type": "string", "maxLength": limit, "description": description, **extra}


def _limited(limits, titles: dict[str, str]) -> dict:
    return {key: _text(limit, titles[key]) for key, *_, limit in limits}


_STR = {"type": "string"}

# --------------------------------------------------------------------------- requests

PATIENT = {
    "type": "object",
    "required": ["name", "idNo"],
    "description": "患者",
    "properties": {
        **_limited(
            services.PATIENT_LIMITS,
            {
                "patientId": "院内患者 ID",
                "name": "姓名",
                "idTypeCode": "证件类别代码（值域 ID_TYPE，默认 01 居民身份证）",
                "idNo": "证件号码（居民身份证按 GB 11643 检查校验位）",
                "sexCode": "性别代码（值域 SEX）",
                "birthDate": "出生日期 yyyyMMdd（须为有效日期）",
                "phone": "联系电话",
            },
        ),
    },
}
PATIENT["properties"]["birthDate"]["pattern"] = "^[0-9]{8}$"
VISIT = {
    "type": "object",
    "required": ["visitId"],
    "description": "就诊",
    "properties": {
        **_limited(
            services.VISIT_LIMITS,
            {
                "visitId": "就诊 ID（本次就诊在 HIS 中的唯一编号）",
                "outpatientNo": "门（急）诊号",
                "inpatientNo": "住院号",
            },
        ),
        "patientTypeCode": {
            "type": "string",
            "enum": list(services.PATIENT_TYPES),
            "description": "患者类型：1 门诊、2 急诊、3 住院、9 其他（默认 1）",
        },
    },
}
_STAFF = {
    "doctor": _text(services.STAFF_LIMIT, "开单医师工号（院内）"),
    "dept": _text(services.STAFF_LIMIT, "开单科室代码（院内）"),
}
_NO_SEPARATORS = "^[^~,]+$"  # "~" and "," separate the items of the signed link
ORDERED_ITEM = {
    "type": "object",
    "required": ["kind", "itemCode", "orderId"],
    "description": "医嘱项目",
    "properties": {
        "kind": {"type": "string", "enum": ["exam", "lab"], "description": "exam 检查、lab 检验"},
        "itemCode": _text(
            services.ITEM_LIMITS["itemCode"], "院内医嘱项目代码（不含 ~ 和 ,）", pattern=_NO_SEPARATORS
        ),
        "bodyPartCode": _text(
            services.ITEM_LIMITS["bodyPartCode"], "院内检查部位代码（检查可填）", pattern="^[^~,]*$"
        ),
        "orderId": _text(
            services.ITEM_LIMITS["orderId"], "HIS 医嘱号（不含 ~ 和 ,）", pattern=_NO_SEPARATORS
        ),
    },
}
PROMPT_REQUEST = {
    "type": "object",
    "required": ["patient", "visit", "items"],
    "properties": {
        "patient": _ref("RecognitionPatient"),
        "visit": _ref("RecognitionVisit"),
        **_STAFF,
        "items": {
            "type": "array",
            "minItems": 1,
            "items": _ref("RecognitionOrderedItem"),
            "description": "本次开立的医嘱项目",
        },
    },
    "example": {
        "patient": {"patientId": "P000001", "name": "张伟", "idTypeCode": "01", "idNo": "11010519491231002X"},
        "visit": {"visitId": "V0000000001", "patientTypeCode": "1", "outpatientNo": "MZ00000001"},
        "doctor": "D1001",
        "dept": "1001",
        "items": [
            {"kind": "exam", "itemCode": "CT0012", "orderId": "YZ001"},
            {"kind": "lab", "itemCode": "GGN", "orderId": "YZ003"},
        ],
    },
}
EVENT_REQUEST = {
    "type": "object",
    "required": ["patient", "visit"],
    "properties": {
        "eventType": {
            "type": "string",
            "enum": list(services.EVENTS),
            "description": "挂号 registration（默认）、入院 admission、预约 appointment",
        },
        "patient": _ref("RecognitionPatient"),
        "visit": _ref("RecognitionVisit"),
        **_STAFF,
    },
    "example": {
        "eventType": "registration",
        "patient": {"patientId": "P000001", "name": "张伟", "idTypeCode": "01", "idNo": "11010519491231002X"},
        "visit": {"visitId": "V0000000001", "patientTypeCode": "1", "outpatientNo": "MZ00000001"},
        "doctor": "D1001",
        "dept": "1001",
    },
}

RESULTS_QUERY = {
    "type": "object",
    "description": "按患者（或就诊）读取互认结果：证件号码只在请求体中提交，不放在网址里",
    "properties": {
        "idNo": _text(32, "证件号码"),
        "idTypeCode": _text(2, "证件类别代码，默认 01"),
        "visitId": _text(32, "就诊 ID"),
        "kind": {"type": "string", "enum": ["exam", "lab"], "description": "只要检查或只要检验"},
        "status": {
            "type": "string",
            "enum": ["recognized", "all"],
            "description": "recognized：只要已互认的",
        },
    },
    "example": {"idNo": "11010519491231002X", "idTypeCode": "01", "kind": "lab", "status": "recognized"},
}

# --------------------------------------------------------------------------- answers

_RESULT_COMMON = {
    "externalOrgCode": {**_STR, "description": "外院机构代码"},
    "externalOrgName": {**_STR, "description": "外院名称"},
    "reportId": {**_STR, "description": "外院报告单号"},
    "date": {**_STR, "description": "检查 / 采样日期 yyyy-MM-dd"},
    "validUntil": {**_STR, "description": "可互认至 yyyy-MM-dd"},
}
EXAM_RESULT = {
    "type": "object",
    "required": [*_RESULT_COMMON, "conclusion", "result"],
    "properties": {
        **_RESULT_COMMON,
        "conclusion": {**_STR, "description": "检查结论（印象）"},
        "result": {**_STR, "description": "结果"},
    },
}
LAB_RESULT = {
    "type": "object",
    "properties": {
        **_RESULT_COMMON,
        "subItemCode": {**_STR, "description": "院内检验子项代码"},
        "subItemName": _STR,
        "standardCode": {**_STR, "description": "互认项目代码"},
        "standardName": _STR,
        "value": {**_STR, "description": "结果值"},
        "unit": _STR,
        "flag": {**_STR, "description": "异常标识"},
        "referenceRange": _STR,
    },
    "required": [
        *_RESULT_COMMON,
        "subItemCode",
        "subItemName",
        "standardCode",
        "standardName",
        "value",
        "unit",
        "flag",
        "referenceRange",
    ],
}
PROMPT_ITEM = {
    "type": "object",
    "required": ["orderId", "kind", "itemCode", "itemName", "mapped", "recognizable", "coverage", "summary"],
    "properties": {
        "orderId": _STR,
        "kind": {"type": "string", "enum": ["exam", "lab"]},
        "itemCode": _STR,
        "itemName": {**_STR, "description": "医嘱项目名称（未对照时可能为空）"},
        "mapped": {"type": "boolean", "description": "该项目已对照互认项目"},
        "recognizable": {"type": "boolean", "description": "有外院可互认结果"},
        "coverage": {
            "type": "string",
            "enum": ["none", "partial", "full"],
            "description": "检验：全部 / 部分 / 没有子项有可互认结果；检查：full 或 none",
        },
        "summary": {**_STR, "description": "一句话提示（中文）"},
        "standardCode": {**_STR, "description": "检查：互认项目代码"},
        "standardName": _STR,
        "lineCount": {"type": "integer", "description": "检验：组合内子项数"},
        "recognizableLineCount": {"type": "integer", "description": "检验：有可互认结果的子项数"},
        "results": {
            "type": "array",
            "description": "外院可互认结果（检查：RecognitionExamResult；检验：RecognitionLabResult）",
            "items": {"oneOf": [_ref("RecognitionExamResult"), _ref("RecognitionLabResult")]},
        },
    },
}
PLATFORM_ERROR = {
    "type": "object",
    "required": ["kind", "code", "message"],
    "properties": {
        "kind": {"type": "string", "enum": ["exam", "lab"]},
        "code": {**_STR, "description": "市平台返回码（未收到应答时为空）"},
        "message": _STR,
    },
}
PROMPT_ANSWER = {
    "type": "object",
    "required": ["ok", "visitId", "source", "anyRecognizable", "items"],
    "properties": {
        "ok": {"type": "boolean", "enum": [True]},
        "visitId": _STR,
        "source": {
            "type": "string",
            "enum": ["cache", "platform"],
            "description": "cache：来自预加载的缓存；platform：本次直接查询市平台",
        },
        "anyRecognizable": {"type": "boolean", "description": "至少一个医嘱项目有外院可互认结果"},
        "items": {
            "type": "array",
            "items": _ref("RecognitionPromptItem"),
            "description": "逐个医嘱项目（与请求顺序相同）",
        },
        "promptUrl": {**_STR, "description": "有可互认结果时：嵌入页面的签名链接（医生站在弹窗中打开）"},
        "platformErrors": {
            "type": "array",
            "items": _ref("RecognitionPlatformError"),
            "description": "市平台查询失败（此时按无外院结果回答，不报错）",
        },
        "warnings": {
            "type": "array",
            "items": FIELD_ERROR_REF,
            "description": "不影响回答的问题，如医师工号不在字典中、科室未对照",
        },
        "degraded": {
            "type": "object",
            "required": ["cache", "message"],
            "description": "缓存服务不可用时出现",
            "properties": {"cache": {"type": "boolean", "enum": [False]}, "message": _STR},
        },
    },
}
EVENT_ANSWER = {
    "type": "object",
    "required": ["ok", "visitId", "preload"],
    "properties": {
        "ok": {"type": "boolean", "enum": [True]},
        "visitId": _STR,
        "preload": {"type": "string", "enum": ["scheduled"], "description": "已安排预加载外院结果"},
    },
}
DECISION_REF = {
    "type": "object",
    "required": ["standardCode", "standardName", "reportId", "externalOrgName", "decision"],
    "properties": {
        "standardCode": _STR,
        "standardName": _STR,
        "reportId": {**_STR, "description": "外院报告单号"},
        "externalOrgName": _STR,
        "decision": {"type": "string", "enum": ["1", "2"], "description": "1 互认、2 不互认"},
        "reasonCode": {**_STR, "description": "不互认原因代码（平台值域）"},
        "reasonName": _STR,
        "note": {**_STR, "description": "不互认说明"},
        "subItemCode": {**_STR, "description": "检验：院内子项代码"},
        "subItemName": _STR,
    },
}
ORDER_SUMMARY = {
    "type": "object",
    "required": [
        "orderId",
        "kind",
        "itemCode",
        "itemName",
        "action",
        "chargeAvoided",
        "recognized",
        "refused",
    ],
    "properties": {
        "orderId": _STR,
        "kind": {"type": "string", "enum": ["exam", "lab"]},
        "itemCode": _STR,
        "itemName": _STR,
        "action": {
            "type": "string",
            "enum": ["cancel", "reduce", "keep"],
            "description": "HIS 应如何处理该医嘱：cancel 全部互认可撤销、reduce 减去已互认子项、keep 照常执行",
        },
        "chargeAvoided": {**_STR, "description": "估算节省费用（元，十进制字符串）"},
        "recognized": {"type": "array", "items": _ref("RecognitionDecisionRef")},
        "refused": {"type": "array", "items": _ref("RecognitionDecisionRef")},
        "keepSubItems": {
            "type": "array",
            "description": "检验：仍需检验的子项",
            "items": {
                "type": "object",
                "required": ["subItemCode", "subItemName", "chargeItemCode"],
                "properties": {"subItemCode": _STR, "subItemName": _STR, "chargeItemCode": _STR},
            },
        },
    },
}
DECISIONS_ANSWER = {
    "type": "object",
    "required": ["ok", "visitId", "orders"],
    "properties": {
        "ok": {"type": "boolean", "enum": [True]},
        "visitId": _STR,
        "orders": {"type": "array", "items": _ref("RecognitionOrderSummary")},
    },
}
_ROW_TEXT = (
    "visitId",
    "orderId",
    "orderItemCode",
    "orderItemName",
    "subItemCode",
    "subItemName",
    "standardCode",
    "standardName",
    "externalOrgCode",
    "externalOrgName",
    "externalReportId",
    "deptCode",
    "deptName",
    "standardDeptCode",
    "standardDeptName",
    "doctorId",
    "doctorName",
)
RESULT_ROW = {
    "type": "object",
    "required": [
        *_ROW_TEXT,
        "kind",
        "recognitionStatus",
        "recognitionMark",
        "externalDateTime",
        "validUntil",
        "decidedAt",
        "chargeAvoided",
    ],
    "properties": {
        **{name: _STR for name in _ROW_TEXT},
        "kind": {"type": "string", "enum": ["exam", "lab"]},
        "recognitionStatus": {"type": "string", "enum": ["recognized", "refused"]},
        "recognitionMark": {"type": "string", "enum": ["HR", ""], "description": "互认标识：已互认为 HR"},
        "externalDateTime": {**_STR, "description": "外院检查 / 采样时间（ISO 8601，可能为空）"},
        "validUntil": {**_STR, "description": "可互认至（ISO 日期，可能为空）"},
        "decidedAt": {"type": "string", "format": "date-time", "description": "医生决定时间"},
        "chargeAvoided": {**_STR, "description": "估算节省费用（元，十进制字符串）"},
        "resultValue": {**_STR, "description": "检验：结果值"},
        "unit": _STR,
        "referenceRange": _STR,
        "abnormalFlagCode": _STR,
        "chargeItemCode": {**_STR, "description": "检验：院内收费项目代码"},
        "findings": {**_STR, "description": "检查：所见"},
        "impression": {**_STR, "description": "检查：印象"},
        "resultName": _STR,
        "studyInstanceUid": _STR,
        "refusalReasonCode": {**_STR, "description": "不互认原因代码"},
        "refusalReasonName": _STR,
        "refusalNote": _STR,
    },
}
RESULTS_ANSWER = {
    "type": "object",
    "required": ["ok", "results"],
    "properties": {
        "ok": {"type": "boolean", "enum": [True]},
        "results": {
            "type": "array",
            "maxItems": 500,
            "items": _ref("RecognitionResult"),
            "description": "当前有效的互认决定，按决定时间倒序，至多 500 条",
        },
    },
}

COMPONENTS = {
    "RecognitionPatient": PATIENT,
    "RecognitionVisit": VISIT,
    "RecognitionOrderedItem": ORDERED_ITEM,
    "RecognitionPromptRequest": PROMPT_REQUEST,
    "RecognitionEvent": EVENT_REQUEST,
    "RecognitionExamResult": EXAM_RESULT,
    "RecognitionLabResult": LAB_RESULT,
    "RecognitionPromptItem": PROMPT_ITEM,
    "RecognitionPlatformError": PLATFORM_ERROR,
    "RecognitionPromptAnswer": PROMPT_ANSWER,
    "RecognitionEventAnswer": EVENT_ANSWER,
    "RecognitionDecisionRef": DECISION_REF,
    "RecognitionOrderSummary": ORDER_SUMMARY,
    "RecognitionDecisions": DECISIONS_ANSWER,
    "RecognitionResult": RESULT_ROW,
    "RecognitionResults": RESULTS_ANSWER,
    "RecognitionResultsQuery": RESULTS_QUERY,
}

# --------------------------------------------------------------------------- operations


def _query(name: str, limit: int, description: str, **extra) -> OpenApiParameter:
    return OpenApiParameter(
        name, {"type": "string", "maxLength": limit}, OpenApiParameter.QUERY, description=description, **extra
    )


PROMPT_DOC = {
    "operation_id": "recognition_prompt",
    "summary": "互认提示：开立医嘱时查询外院可互认结果",
    "description": (
        "医生站开立检查、检验医嘱时调用（每张医嘱一次）。对每个医嘱项目回答是否有外院可互认结果、结果摘要；"
        "有可互认结果时返回嵌入页面的签名链接 promptUrl，医生在弹窗中逐项决定是否互认。\n\n"
        "* 已预加载的就诊（挂号事件后）由缓存直接回答（source = cache）；否则本次查询市平台（source = platform）。\n"
        "* 市平台不可用时按无外院结果回答，并在 platformErrors 中说明；缓存服务不可用时直接查询市平台，"
        "并返回 degraded。\n"
        "* 请求有误时返回 400 和逐字段错误。就诊 ID 已属于另一位患者时返回 409。"
    ),
    "request": "RecognitionPromptRequest",
    "responses": {200: ("RecognitionPromptAnswer", "逐项提示")},
    "errors": {409: "就诊 ID 已属于另一位患者"},
}
EVENTS_DOC = {
    "operation_id": "recognition_event",
    "summary": "挂号 / 入院 / 预约事件：预加载外院结果",
    "description": (
        "HIS 在挂号、入院或预约时调用：保存就诊并在后台向市平台预加载该患者的外院可互认结果，"
        "使开立医嘱时的互认提示由缓存即时回答。"
    ),
    "request": "RecognitionEvent",
    "responses": {202: ("RecognitionEventAnswer", "已保存就诊，已安排预加载")},
    "errors": {409: "就诊 ID 已属于另一位患者"},
}
DECISIONS_DOC = {
    "operation_id": "recognition_decisions",
    "summary": "读取医生对一次就诊的互认决定",
    "description": (
        "HIS 读取医生在互认页面中对本次就诊各医嘱所做的决定，以及每张医嘱应撤销（cancel）、"
        "减项（reduce）还是照常执行（keep）。与页面保存后的应答格式相同。"
    ),
    "parameters": [_query("visitId", 32, "就诊 ID", required=True)],
    "responses": {200: ("RecognitionDecisions", "各医嘱的决定")},
    "errors": {404: "未找到该就诊"},
}
RESULTS_DOC = {
    "operation_id": "recognition_results",
    "summary": "检查、检验系统读取互认结果",
    "description": (
        "检查（RIS）与检验（LIS）系统按就诊读取医生已互认（及不互认）的外院结果，"
        "用于在本院报告中标注互认（HR）或免做。按患者查询请用 POST（证件号码不放在网址中）。"
    ),
    "parameters": [
        _query("visitId", 32, "就诊 ID"),
        OpenApiParameter(
            "kind", str, OpenApiParameter.QUERY, enum=["exam", "lab"], description="只要检查或只要检验"
        ),
        OpenApiParameter(
            "status",
            str,
            OpenApiParameter.QUERY,
            enum=["recognized", "all"],
            description="recognized：只要已互认的；all（默认）：含不互认",
        ),
    ],
    "responses": {200: ("RecognitionResults", "互认结果")},
    "errors": {400: "参数有误（如未填 visitId，或网址中带了 idNo）"},
}
RESULTS_POST_DOC = {
    "operation_id": "recognition_results_by_patient",
    "summary": "检查、检验系统按患者读取互认结果",
    "description": "请求体提交 idNo（及 idTypeCode）或 visitId；结果与 GET 相同。",
    "request": "RecognitionResultsQuery",
    "responses": {200: ("RecognitionResults", "互认结果")},
    "errors": {400: "参数有误（如 idNo 与 visitId 都未填）"},
}


class RecognitionSchema(MachineSchema):
    """Views declare ``openapi`` (one of the operation entries above)."""

    def _spec(self) -> dict:
        """The view's operation entry; a view with several methods maps each to its own entry."""
        spec = getattr(self.view, "openapi", {})
        return spec.get(self.method.lower(), spec) if "operation_id" not in spec else spec

    def _component(self, name: str) -> dict:
        for component, schema in COMPONENTS.items():  # all: they reference each other
            self.registry.register_on_missing(
                ResolvedComponent(component, ResolvedComponent.SCHEMA, schema=schema, object=component)
            )
        return _ref(name)

    def get_operation_id(self):
        return self._spec()["operation_id"]

    def get_tags(self):
        return ["检查检验互认"]

    def get_summary(self):
        return self._spec()["summary"]

    def get_description(self):
        return self._spec()["description"]

    def get_override_parameters(self):
        return self._spec().get("parameters", [])

    def get_request_serializer(self):
        name = self._spec().get("request")
        return {"application/json": self._component(name)} if name else None

    def get_response_serializers(self):
        return {
            status: OpenApiResponse(self._component(name), description=text)
            for status, (name, text) in self._spec()["responses"].items()
        }

    def get_error_answers(self) -> dict[int, str]:
        return {**super().get_error_answers(), **self._spec().get("errors", {})}
