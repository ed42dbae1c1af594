"""Sample review reports for the six modules (demo and tests)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import ReviewReport

SAMPLES = {
    "clinical": (
        "血常规（五分类）",
        "静脉血",
        [
            ("WBC", "白细胞计数", "6.8", "10^9/L", "3.5-9.5", ""),
            ("HGB", "血红蛋白", "102", "g/L", "115-150", "L"),
            ("PLT", "血小板计数", "188", "10^9/L", "125-350", ""),
        ],
    ),
    "immuno": (
        "肿瘤标志物",
        "血清",
        [
            ("CEA", "癌胚抗原", "8.9", "ng/mL", "0-5", "H"),
            ("AFP", "甲胎蛋白", "3.1", "ng/mL", "0-7", ""),
            ("CA125", "糖类抗原125", "21.4", "U/mL", "0-35", ""),
        ],
    ),
    "biochem": (
        "肝功能",
        "血清",
        [
            ("ALT", "丙氨酸氨基转移酶", "56", "U/L", "7-40", "H"),
            ("AST", "天门冬氨酸氨基转移酶", "38", "U/L", "13-35", "H"),
            ("TBIL", "总胆红素", "12.5", "μmol/L", "0-21", ""),
        ],
    ),
    "molecular": (
        "EGFR 基因突变检测",
        "组织",
        [
            ("EGFR19", "EGFR 19 外显子缺失", "阳性", "", "阴性", "H"),
            ("EGFR21", "EGFR L858R", "阴性", "", "阴性", ""),
        ],
    ),
    "micro": (
        "血培养及药敏",
        "血液",
        [("BC", "培养结果", "大肠埃希菌", "", "无菌生长", "H"), ("AMK", "阿米卡星", "S", "", "", "")],
    ),
    "marrow": (
        "骨髓细胞形态学",
        "骨髓",
        [("BLAST", "原始细胞", "2.0", "%", "0-2", ""), ("MEG", "巨核细胞", "35", "个/片", "7-35", "")],
    ),
}
PATIENTS = [
    ("王建国", "男", "62岁"),
    ("李秀英", "女", "55岁"),
    ("张伟", "男", "47岁"),
    ("刘芳", "女", "39岁"),
    ("陈志强", "男", "70岁"),
    ("杨丽", "女", "58岁"),
]


@transaction.atomic
def create_sample_reports(per_module: int = 4, prefix: str = "R", modules=None) -> list[ReviewReport]:
    now = timezone.now()
    made = []
    for code in modules or list(SAMPLES):
        title, specimen, items = SAMPLES[code]
        for i in range(per_module):
            name, sex, age = PATIENTS[(i + len(made)) % len(PATIENTS)]
            report_id = f"{prefix}{code[:3].upper()}{now:%y%m%d}{random.randint(0, 99999):05d}{i}"
            made.append(
                ReviewReport.objects.create(
                    module=code,
                    report_id=report_id,
                    patient_name=name,
                    patient_id=f"P{random.randint(1000000, 9999999)}",
                    sex=sex,
                    age=age,
                    specimen=specimen,
                    title=title,
                    reported_by="赵检验",
                    items=[
                        dict(zip(("code", "name", "result", "unit", "range", "flag"), it, strict=True))
                        for it in items
                    ],
                    collected_at=now - timedelta(hours=5),
                    tested_at=now - timedelta(hours=2, minutes=i),
                )
            )
    return made
