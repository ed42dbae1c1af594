"""Realistic results of OTHER Beijing hospitals, deterministic per patient ID number.

The platform answers the recognition queries (EXAM_RECOGNIZABLE_ITEMS, LAB_RECOGNIZABLE_ITEMS)
with what other hospitals uploaded for the patient. The simulator invents them from the SM3 of
the ID number, so the same ID number always gets the same hospitals, items, values, flags and
relative dates (the absolute dates follow the day the patient was first seen, so every result
is inside its recognition window). Every patient gets at least one lab and one exam report.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from hospital_interop.municipal.gm import sm3_hex

# Beijing hospitals that upload to the platform (codes in the 18-character unified social
# credit code shape public hospitals use; the requesting hospital is never one of its own
# "external" sources).
HOSPITALS: tuple[tuple[str, str], ...] = (
    ("12110000400001234A", "北京大学人民医院"),
    ("12110000400005678B", "首都医科大学附属北京朝阳医院"),
    ("12110000400002135D", "首都医科大学附属北京天坛医院"),
    ("12110000400003018K", "首都医科大学宣武医院"),
    ("12110000400004526M", "北京积水潭医院"),
    ("12110000400006217P", "首都医科大学附属北京友谊医院"),
    ("12110000400007394Q", "北京大学第三医院"),
    ("12110000400008065R", "首都医科大学附属北京同仁医院"),
    ("12110000400009732T", "北京世纪坛医院"),
    ("12110000400010248W", "首都医科大学附属北京安贞医院"),
)

# (itemCode, itemName, recognitionItemCode, unit, low, high, decimals, method); low/high None =
# qualitative result (negative is normal).
LAB_PANELS: dict[str, dict] = {
    "血常规": {
        "specimen": ("01", "全血"),
        "window": 7,
        "items": [
            ("WBC", "白细胞计数", "JY0001", "10^9/L", 3.5, 9.5, 2, "电阻抗法"),
            ("RBC", "红细胞计数", "JY0002", "10^12/L", 4.3, 5.8, 2, "电阻抗法"),
            ("HGB", "血红蛋白", "JY0003", "g/L", 130, 175, 0, "比色法"),
            ("PLT", "血小板计数", "JY0004", "10^9/L", 125, 350, 0, "电阻抗法"),
        ],
    },
    "肝功能": {
        "specimen": ("02", "血清"),
        "window": 14,
        "items": [
            ("ALT", "丙氨酸氨基转移酶", "JY0021", "U/L", 9, 50, 0, "速率法"),
            ("AST", "天门冬氨酸氨基转移酶", "JY0022", "U/L", 15, 40, 0, "速率法"),
            ("TBIL", "总胆红素", "JY0023", "μmol/L", 0, 23, 1, "钒酸盐氧化法"),
            ("ALB", "白蛋白", "JY0024", "g/L", 40, 55, 1, "溴甲酚绿法"),
        ],
    },
    "肾功能": {
        "specimen": ("02", "血清"),
        "window": 14,
        "items": [
            ("CREA", "肌酐", "JY0031", "μmol/L", 57, 111, 0, "酶法"),
            ("UREA", "尿素", "JY0032", "mmol/L", 3.1, 8.0, 1, "速率法"),
            ("UA", "尿酸", "JY0033", "μmol/L", 208, 428, 0, "尿酸酶法"),
        ],
    },
    "甲功": {
        "specimen": ("02", "血清"),
        "window": 30,
        "items": [
            ("TSH", "促甲状腺激素", "JY0081", "mIU/L", 0.27, 4.2, 2, "化学发光法"),
            ("FT3", "游离三碘甲状腺原氨酸", "JY0082", "pmol/L", 3.1, 6.8, 2, "化学发光法"),
            ("FT4", "游离甲状腺素", "JY0083", "pmol/L", 12.0, 22.0, 1, "化学发光法"),
        ],
    },
    "凝血": {
        "specimen": ("03", "血浆"),
        "window": 7,
        "items": [
            ("PT", "凝血酶原时间", "JY0091", "s", 9.4, 12.5, 1, "凝固法"),
            ("INR", "国际标准化比值", "JY0092", "", 0.8, 1.2, 2, "计算法"),
            ("APTT", "活化部分凝血活酶时间", "JY0093", "s", 25.1, 36.5, 1, "凝固法"),
            ("FIB", "纤维蛋白原", "JY0094", "g/L", 2.0, 4.0, 2, "Clauss法"),
        ],
    },
    "血糖血脂": {
        "specimen": ("02", "血清"),
        "window": 14,
        "items": [
            ("GLU", "葡萄糖", "JY0041", "mmol/L", 3.9, 6.1, 1, "己糖激酶法"),
            ("TC", "总胆固醇", "JY0051", "mmol/L", 2.8, 5.2, 2, "酶法"),
        ],
    },
    "肿瘤标志物": {
        "specimen": ("02", "血清"),
        "window": 30,
        "items": [
            ("CEA", "癌胚抗原", "JY0061", "ng/mL", 0, 5, 1, "化学发光法"),
            ("AFP", "甲胎蛋白", "JY0062", "ng/mL", 0, 7, 1, "化学发光法"),
        ],
    },
    "乙肝表面抗原": {
        "specimen": ("02", "血清"),
        "window": 30,
        "items": [("HBsAg", "乙型肝炎病毒表面抗原", "JY0071", "", None, None, 0, "化学发光法")],
    },
}

ABNORMAL_NAMES = {"N": "正常", "H": "偏高", "L": "偏低", "P": "阳性"}

# Exams: recognition item, category, body part, window in days, (normal, abnormal) texts.
EXAMS: dict[str, dict] = {
    "JC0012": {
        "name": "胸部CT平扫",
        "category": ("CT", "计算机断层扫描"),
        "body": ("030", "胸部"),
        "window": 30,
        "images": (180, 420),
        "modality": "CT",
        "normal": (
            "双肺纹理清晰，走行自然，未见明确结节及实变影。气管及主支气管通畅，纵隔内未见肿大淋巴结，"
            "心影大小形态未见异常，双侧胸膜未见增厚，未见胸腔积液。",
            "胸部CT平扫未见明显异常。",
        ),
        "abnormal": (
            "右肺上叶尖段见一磨玻璃密度结节，大小约0.8cm×0.6cm，边界清楚，其内未见实性成分。"
            "余肺野清晰，纵隔内未见肿大淋巴结，未见胸腔积液。",
            "右肺上叶磨玻璃结节，建议6个月后复查胸部CT。",
        ),
    },
    "JC0105": {
        "name": "头颅MR平扫",
        "category": ("MR", "磁共振成像"),
        "body": ("010", "头颅"),
        "window": 30,
        "images": (220, 460),
        "modality": "MR",
        "normal": (
            "脑实质内未见异常信号影，灰白质分界清楚。脑室系统未见扩大，脑沟、脑裂未见增宽，中线结构居中。",
            "头颅MR平扫未见明显异常。",
        ),
        "abnormal": (
            "双侧额叶皮层下及侧脑室旁白质内见多发斑点状长T1长T2信号影，FLAIR序列呈高信号，"
            "DWI未见弥散受限。脑室系统未见扩大，中线结构居中。",
            "双侧额叶及侧脑室旁多发缺血性脑白质病变（Fazekas 1级）。",
        ),
    },
    "JC0201": {
        "name": "胸部正位DR",
        "category": ("DR", "数字X线摄影"),
        "body": ("030", "胸部"),
        "window": 30,
        "images": (1, 2),
        "modality": "DX",
        "normal": (
            "胸廓对称，气管居中。双肺纹理清晰，未见实变影。心影大小形态正常，双膈面光整，肋膈角锐利。",
            "心肺膈未见明显异常。",
        ),
        "abnormal": (
            "胸廓对称，气管居中。右下肺野见斑片状模糊影，边界欠清。心影大小形态正常，右侧肋膈角稍钝。",
            "右下肺炎症可能，建议结合临床及复查。",
        ),
    },
    "JC0301": {
        "name": "甲状腺超声",
        "category": ("US", "超声"),
        "body": ("090", "甲状腺"),
        "window": 15,
        "images": (8, 24),
        "modality": "US",
        "normal": (
            "甲状腺左右叶大小形态正常，包膜完整，实质回声均匀，未见明确占位性病变。CDFI：血流信号未见异常。"
            "双侧颈部未见明显肿大淋巴结。",
            "甲状腺未见明显异常。",
        ),
        "abnormal": (
            "甲状腺右叶中部见一低回声结节，大小约0.8cm×0.6cm，边界清，形态规则，纵横比<1，"
            "内未见强回声。CDFI：周边可见少许血流信号。",
            "甲状腺右叶结节，TI-RADS 3类。",
        ),
    },
    "JC0305": {
        "name": "腹部超声（肝胆胰脾）",
        "category": ("US", "超声"),
        "body": ("040", "上腹部"),
        "window": 15,
        "images": (10, 30),
        "modality": "US",
        "normal": (
            "肝脏大小形态正常，包膜光滑，实质回声均匀。胆囊大小正常，壁光滑，腔内未见异常回声。"
            "胰腺、脾脏大小形态正常，回声均匀。",
            "肝胆胰脾未见明显异常。",
        ),
        "abnormal": (
            "肝脏大小正常，实质回声细密增强，后方回声衰减，肝内管道显示欠清。胆囊、胰腺、脾脏未见明显异常。",
            "脂肪肝（轻度）。",
        ),
    },
}
EXAM_RESULT_NAMES = {"1": "正常", "2": "异常"}

DATETIME_FORMAT = "%Y%m%d%H%M%S"
DATE_FORMAT = "%Y%m%d"


def fmt_dt(dt: datetime) -> str:
    return dt.strftime(DATETIME_FORMAT)


def fmt_d(d: date) -> str:
    return d.strftime(DATE_FORMAT)


def patient_seed(id_no: str) -> int:
    return int(sm3_hex(id_no.encode("utf-8"))[:16], 16)


_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧建国志红玉兰平刚桂英"


def default_name(id_no: str) -> str:
    rng = random.Random(patient_seed(id_no) ^ 0x5EED)
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def patient_from_id(id_no: str, name: str | None = None) -> dict:
    """Name, sex and birth date (from a GB 11643 resident ID where the number is one)."""
    patient = {
        "name": name or default_name(id_no),
        "idNo": id_no,
        "idTypeCode": "01",
        "idTypeName": "居民身份证",
    }
    if len(id_no) == 18 and (id_no[:17].isascii() and id_no[:17].isdigit()):
        try:
            patient["birthDate"] = fmt_d(date(int(id_no[6:10]), int(id_no[10:12]), int(id_no[12:14])))
        except ValueError:
            pass
        patient["sexCode"], patient["sexName"] = ("1", "男") if int(id_no[16]) % 2 else ("2", "女")
    return patient


def mask_id(id_no: str) -> str:
    """``110105********1234``: region and last four digits kept."""
    if len(id_no) <= 10:
        return id_no[:2] + "*" * max(len(id_no) - 4, 0) + id_no[-2:]
    return id_no[:6] + "*" * (len(id_no) - 10) + id_no[-4:]


def _fmt_value(v: float, decimals: int) -> str:
    return f"{v:.{decimals}f}"


def lab_report(
    rng: random.Random,
    *,
    panel: str,
    hospital: tuple[str, str],
    report_id: str,
    today: date,
    days_ago: int | None = None,
) -> dict:
    spec = LAB_PANELS[panel]
    window = spec["window"]
    ago = days_ago if days_ago is not None else rng.randint(1, window - 1)
    sample = datetime.combine(
        today - timedelta(days=ago), time(rng.randint(7, 10), rng.choice((5, 15, 25, 40, 50)))
    )
    reported = sample + timedelta(hours=rng.randint(2, 6), minutes=rng.randint(0, 59))
    valid_until = fmt_d(sample.date() + timedelta(days=window))
    items = []
    for n, (code, name, rec_code, unit, low, high, decimals, method) in enumerate(spec["items"], start=1):
        item = {"itemNo": n, "itemCode": code, "itemName": name}
        if low is None:
            positive = rng.random() < 0.08
            item.update(
                resultValue="阳性" if positive else "阴性",
                referenceRange="阴性",
                abnormalFlagCode="P" if positive else "N",
            )
        else:
            span = high - low
            roll = rng.random()
            if roll < 0.72:
                value = rng.uniform(low + span * 0.05, high - span * 0.05)
            elif roll < 0.86:
                value = rng.uniform(high + span * 0.05, high + span * 0.6)
            else:
                value = (
                    rng.uniform(max(low - span * 0.4, low * 0.5), low - span * 0.03)
                    if low > 0
                    else high * 1.3
                )
            value = round(value, decimals)
            flag = "H" if value > high else "L" if value < low else "N"
            item.update(
                resultValue=_fmt_value(value, decimals),
                quantitativeResult=value,
                referenceRange=f"{_fmt_value(low, decimals)}-{_fmt_value(high, decimals)}",
                abnormalFlagCode=flag,
            )
            if unit:
                item["unit"] = unit
        item["abnormalFlagName"] = ABNORMAL_NAMES[item["abnormalFlagCode"]]
        item.update(
            testMethod=method,
            recognitionItemCode=rec_code,
            recognitionItemName=name,
            recognitionMark="HR",
            validUntil=valid_until,
        )
        items.append(item)
    return {
        "externalOrgCode": hospital[0],
        "externalOrgName": hospital[1],
        "reportId": report_id,
        "reportTitle": panel,
        "specimenTypeCode": spec["specimen"][0],
        "specimenTypeName": spec["specimen"][1],
        "sampleDateTime": fmt_dt(sample),
        "reportDateTime": fmt_dt(reported),
        "items": items,
    }


def exam_report(
    rng: random.Random,
    *,
    item_code: str,
    hospital: tuple[str, str],
    report_id: str,
    today: date,
    seed: int,
    index: int,
    days_ago: int | None = None,
) -> dict:
    spec = EXAMS[item_code]
    window = spec["window"]
    ago = days_ago if days_ago is not None else rng.randint(1, window - 1)
    exam_at = datetime.combine(
        today - timedelta(days=ago), time(rng.randint(8, 16), rng.choice((0, 10, 20, 30, 45)))
    )
    reported = exam_at + timedelta(hours=rng.randint(1, 20), minutes=rng.randint(0, 59))
    abnormal = rng.random() < 0.35
    findings, impression = spec["abnormal" if abnormal else "normal"]
    result_code = "2" if abnormal else "1"
    lo, hi = spec["images"]
    return {
        "externalOrgCode": hospital[0],
        "externalOrgName": hospital[1],
        "reportId": report_id,
        "recognitionItemCode": item_code,
        "recognitionItemName": spec["name"],
        "examCategoryCode": spec["category"][0],
        "examCategoryName": spec["category"][1],
        "bodyPartCode": spec["body"][0],
        "bodyPartName": spec["body"][1],
        "examDateTime": fmt_dt(exam_at),
        "reportDateTime": fmt_dt(reported),
        "findings": findings,
        "impression": impression,
        "resultCode": result_code,
        "resultName": EXAM_RESULT_NAMES[result_code],
        "recognitionMark": "HR",
        "validUntil": fmt_d(exam_at.date() + timedelta(days=window)),
        # 1.2.156.112605 is a Chinese UID root used by many PACS vendors; the rest is ours.
        "studyInstanceUid": f"1.2.156.112605.{seed % 10**12 + 1}.{exam_at:%Y%m%d%H%M%S}.{index + 1}",
        "imageCount": rng.randint(lo, hi),
    }


def report_id(kind: str, seed: int, index: int) -> str:
    return f"{'EJY' if kind == 'lab' else 'EXR'}{seed % 10**8:08d}{index:02d}"


def default_results(id_no: str, today: date) -> list[tuple[str, dict]]:
    """The deterministic external results of one ID number: [(kind, report)], lab first."""
    seed = patient_seed(id_no)
    rng = random.Random(seed)
    panels = rng.sample(sorted(LAB_PANELS), rng.randint(2, 4))
    exams = rng.sample(sorted(EXAMS), rng.randint(1, 3))
    out: list[tuple[str, dict]] = []
    for i, panel in enumerate(panels):
        out.append(
            (
                "lab",
                lab_report(
                    rng,
                    panel=panel,
                    hospital=rng.choice(HOSPITALS),
                    report_id=report_id("lab", seed, i),
                    today=today,
                ),
            )
        )
    for i, code in enumerate(exams):
        out.append(
            (
                "exam",
                exam_report(
                    rng,
                    item_code=code,
                    hospital=rng.choice(HOSPITALS),
                    report_id=report_id("exam", seed, i),
                    today=today,
                    seed=seed,
                    index=i,
                ),
            )
        )
    return out


def extra_results(
    id_no: str,
    today: date,
    *,
    start_index: int,
    lab: list[str],
    exam: list[str],
    days_ago: int | None,
    hospital: tuple[str, str] | None = None,
) -> list[tuple[str, dict]]:
    """More results for one ID number (``POST /_sim/seed``), numbered after the existing ones."""
    seed = patient_seed(id_no)
    rng = random.Random(seed + start_index * 7919)
    out: list[tuple[str, dict]] = []
    i = start_index
    for panel in lab:
        out.append(
            (
                "lab",
                lab_report(
                    rng,
                    panel=panel,
                    hospital=hospital or rng.choice(HOSPITALS),
                    report_id=report_id("lab", seed, i),
                    today=today,
                    days_ago=days_ago,
                ),
            )
        )
        i += 1
    for code in exam:
        out.append(
            (
                "exam",
                exam_report(
                    rng,
                    item_code=code,
                    hospital=hospital or rng.choice(HOSPITALS),
                    report_id=report_id("exam", seed, i),
                    today=today,
                    seed=seed,
                    index=i,
                    days_ago=days_ago,
                ),
            )
        )
        i += 1
    return out
