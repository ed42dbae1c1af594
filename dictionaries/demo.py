"""A demo data set shaped like the city's lists and a cancer hospital's own dictionaries.

``load_standard()``: standard departments, body parts, exam items (检查互认项目, JCnnnn) and lab
items (检验互认项目, JYnnnn) with their recognition windows, and the default refusal reasons
(data-elements.md). The real city lists (181 lab / 300 imaging items) replace these by import.

``load_hospital_demo()``: the hospital side and its mappings: departments, doctors, charge
items with Beijing-style price codes, exam order items and body parts, lab orders (panels) and
sub-items. One department and one exam item are left unmapped on purpose, so that the
"未对照" report has something to show.

Both are idempotent (update_or_create by code).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from . import models as m

STANDARD_DEPARTMENTS = (
    ("02", "全科医疗科"),
    ("03", "内科"),
    ("03.01", "呼吸内科专业"),
    ("03.02", "消化内科专业"),
    ("03.04", "心血管内科专业"),
    ("03.05", "血液内科专业"),
    ("03.07", "内分泌专业"),
    ("04", "外科"),
    ("04.01", "普通外科专业"),
    ("04.04", "胸外科专业"),
    ("05.01", "妇科专业"),
    ("07", "儿科"),
    ("19", "肿瘤科"),
    ("20", "急诊医学科"),
    ("30", "医学检验科"),
    ("30.01", "临床体液、血液专业"),
    ("30.03", "临床生化检验专业"),
    ("30.04", "临床免疫、血清学专业"),
    ("32", "医学影像科"),
    ("32.01", "X线诊断专业"),
    ("32.02", "CT诊断专业"),
    ("32.03", "磁共振成像诊断专业"),
    ("32.05", "超声诊断专业"),
    ("50", "中医科"),
    ("61", "健康体检科"),
)

STANDARD_BODY_PARTS = (
    ("010", "头颅"),
    ("020", "颈部"),
    ("030", "胸部"),
    ("040", "上腹部"),
    ("050", "下腹部"),
    ("060", "盆腔"),
    ("070", "腰椎"),
    ("080", "乳腺"),
    ("090", "甲状腺"),
    ("100", "全身"),
    ("110", "颈椎"),
    ("120", "膝关节"),
    ("130", "肩关节"),
    ("140", "心脏"),
    ("150", "泌尿系"),
    ("160", "鼻咽"),
    ("170", "眼眶"),
    ("180", "胸椎"),
)

# code, name, modality, body part, validity (days)
STANDARD_EXAM_ITEMS = (
    ("JC0001", "头颅CT平扫", "CT", "010", 30),
    ("JC0002", "头颅CT增强扫描", "CT", "010", 30),
    ("JC0005", "鼻咽CT平扫", "CT", "160", 30),
    ("JC0008", "颈部CT增强扫描", "CT", "020", 30),
    ("JC0012", "胸部CT平扫", "CT", "030", 30),
    ("JC0013", "胸部CT增强扫描", "CT", "030", 30),
    ("JC0015", "胸部低剂量CT平扫", "CT", "030", 30),
    ("JC0030", "上腹部CT平扫", "CT", "040", 30),
    ("JC0031", "上腹部CT增强扫描", "CT", "040", 30),
    ("JC0035", "下腹部CT增强扫描", "CT", "050", 30),
    ("JC0041", "盆腔CT增强扫描", "CT", "060", 30),
    ("JC0051", "腰椎CT平扫", "CT", "070", 30),
    ("JC0105", "头颅MR平扫", "MR", "010", 30),
    ("JC0106", "头颅MR增强扫描", "MR", "010", 30),
    ("JC0110", "鼻咽MR增强扫描", "MR", "160", 30),
    ("JC0115", "颈椎MR平扫", "MR", "110", 30),
    ("JC0121", "腰椎MR平扫", "MR", "070", 30),
    ("JC0125", "上腹部MR增强扫描", "MR", "040", 30),
    ("JC0131", "盆腔MR增强扫描", "MR", "060", 30),
    ("JC0135", "乳腺MR增强扫描", "MR", "080", 30),
    ("JC0141", "膝关节MR平扫", "MR", "120", 30),
    ("JC0201", "胸部正位DR", "DR", "030", 30),
    ("JC0202", "胸部正侧位DR", "DR", "030", 30),
    ("JC0210", "腰椎正侧位DR", "DR", "070", 30),
    ("JC0215", "颈椎正侧位DR", "DR", "110", 30),
    ("JC0220", "膝关节正侧位DR", "DR", "120", 30),
    ("JC0251", "乳腺钼靶摄影", "MG", "080", 90),
    ("JC0301", "甲状腺超声", "US", "090", 15),
    ("JC0305", "腹部超声（肝胆胰脾）", "US", "040", 15),
    ("JC0306", "泌尿系超声", "US", "150", 15),
    ("JC0310", "乳腺超声", "US", "080", 15),
    ("JC0311", "颈部淋巴结超声", "US", "020", 15),
    ("JC0315", "妇科超声（经腹）", "US", "060", 15),
    ("JC0320", "超声心动图", "US", "140", 30),
)

# panel title → (specimen, validity days, [(code, name, unit)])
STANDARD_LAB_PANELS = (
    (
        "血常规",
        "01",
        7,
        (
            ("JY0001", "白细胞计数", "10^9/L"),
            ("JY0002", "红细胞计数", "10^12/L"),
            ("JY0003", "血红蛋白", "g/L"),
            ("JY0004", "血小板计数", "10^9/L"),
            ("JY0005", "红细胞压积", "%"),
            ("JY0006", "平均红细胞体积", "fL"),
            ("JY0007", "中性粒细胞绝对值", "10^9/L"),
            ("JY0008", "淋巴细胞绝对值", "10^9/L"),
        ),
    ),
    (
        "肝功能",
        "02",
        14,
        (
            ("JY0021", "丙氨酸氨基转移酶", "U/L"),
            ("JY0022", "天门冬氨酸氨基转移酶", "U/L"),
            ("JY0023", "总胆红素", "μmol/L"),
            ("JY0024", "白蛋白", "g/L"),
            ("JY0025", "直接胆红素", "μmol/L"),
            ("JY0026", "碱性磷酸酶", "U/L"),
            ("JY0027", "γ-谷氨酰基转移酶", "U/L"),
            ("JY0028", "总蛋白", "g/L"),
        ),
    ),
    (
        "肾功能",
        "02",
        14,
        (("JY0031", "肌酐", "μmol/L"), ("JY0032", "尿素", "mmol/L"), ("JY0033", "尿酸", "μmol/L")),
    ),
    (
        "血糖血脂",
        "02",
        14,
        (
            ("JY0041", "葡萄糖", "mmol/L"),
            ("JY0051", "总胆固醇", "mmol/L"),
            ("JY0052", "甘油三酯", "mmol/L"),
            ("JY0053", "高密度脂蛋白胆固醇", "mmol/L"),
            ("JY0054", "低密度脂蛋白胆固醇", "mmol/L"),
        ),
    ),
    (
        "电解质",
        "02",
        7,
        (
            ("JY0045", "钾", "mmol/L"),
            ("JY0046", "钠", "mmol/L"),
            ("JY0047", "氯", "mmol/L"),
            ("JY0048", "钙", "mmol/L"),
        ),
    ),
    (
        "肿瘤标志物",
        "02",
        30,
        (
            ("JY0061", "癌胚抗原", "ng/mL"),
            ("JY0062", "甲胎蛋白", "ng/mL"),
            ("JY0063", "糖类抗原125", "U/mL"),
            ("JY0064", "糖类抗原19-9", "U/mL"),
            ("JY0065", "细胞角蛋白19片段", "ng/mL"),
            ("JY0066", "神经元特异性烯醇化酶", "ng/mL"),
            ("JY0067", "鳞状上皮细胞癌抗原", "ng/mL"),
        ),
    ),
    (
        "感染性疾病筛查",
        "02",
        30,
        (
            ("JY0071", "乙型肝炎病毒表面抗原", ""),
            ("JY0072", "丙型肝炎病毒抗体", ""),
            ("JY0073", "人类免疫缺陷病毒抗体", ""),
            ("JY0074", "梅毒螺旋体特异抗体", ""),
        ),
    ),
    (
        "甲状腺功能",
        "02",
        30,
        (
            ("JY0081", "促甲状腺激素", "mIU/L"),
            ("JY0082", "游离三碘甲状腺原氨酸", "pmol/L"),
            ("JY0083", "游离甲状腺素", "pmol/L"),
        ),
    ),
    (
        "凝血功能",
        "03",
        7,
        (
            ("JY0091", "凝血酶原时间", "s"),
            ("JY0092", "国际标准化比值", ""),
            ("JY0093", "活化部分凝血活酶时间", "s"),
            ("JY0094", "纤维蛋白原", "g/L"),
            ("JY0095", "D-二聚体", "mg/L FEU"),
        ),
    ),
    (
        "尿常规",
        "04",
        3,
        (
            ("JY0101", "尿蛋白", ""),
            ("JY0102", "尿葡萄糖", ""),
            ("JY0103", "尿潜血", ""),
            ("JY0104", "尿白细胞", ""),
        ),
    ),
)

REFUSAL_REASONS = (  # code, name, platform code, needs note
    ("1", "病情变化，已有结果与临床表现不符", "1", False),
    ("2", "项目随病程变化快", "2", False),
    ("3", "对诊疗有重要意义（如手术、输血前）", "3", False),
    ("4", "急诊、急救", "4", False),
    ("5", "司法、伤残、病退等鉴定", "5", False),
    ("6", "检查设备或试剂差异导致结果不宜互认", "6", False),
    ("9", "其他（须填写说明）", "9", True),
)

HOSPITAL_DEPARTMENTS = (  # code, name, standard
    ("1001", "胸外科", "04.04"),
    ("1002", "腹部外科", "04.01"),
    ("1003", "乳腺外科", "04.01"),
    ("1004", "头颈外科", "04"),
    ("1005", "妇瘤科", "05.01"),
    ("1101", "内科（肿瘤内科）", "19"),
    ("1102", "放疗科", "19"),
    ("1103", "中西医结合科", "50"),
    ("1104", "综合科", "03"),
    ("1201", "急诊科", "20"),
    ("1301", "检验科", "30"),
    ("1302", "影像诊断科", "32"),
    ("1303", "超声科", "32.05"),
    ("1401", "体检中心", "61"),
    ("1501", "国际医疗部", None),
)

DOCTORS = (  # staff no, name, license no, department, title
    ("D1001", "王建国", "110110000123456", "1001", "主任医师"),
    ("D1002", "李秀英", "110110000234567", "1101", "副主任医师"),
    ("D1003", "张伟", "110110000345678", "1002", "主治医师"),
    ("D1004", "刘芳", "110110000456789", "1003", "主治医师"),
    ("D1005", "陈明", "110110000567890", "1201", "住院医师"),
    ("D1006", "杨静", "", "1501", "主治医师"),
)

CHARGE_ITEMS = (  # code, name, price (yuan)
    ("210300001", "X线计算机体层(CT)平扫", "180.00"),
    ("210300002", "X线计算机体层(CT)增强扫描", "350.00"),
    ("210200001", "磁共振平扫", "500.00"),
    ("210200002", "磁共振增强扫描", "800.00"),
    ("210102015", "数字化X线摄影(DR)", "60.00"),
    ("210103001", "乳腺钼靶摄影", "150.00"),
    ("220101001", "浅表器官彩色多普勒超声", "85.00"),
    ("220101002", "腹部彩色多普勒超声", "120.00"),
    ("250101015", "血细胞分析（五分类）", "25.00"),
    ("250305001", "丙氨酸氨基转移酶测定", "5.00"),
    ("250305002", "天门冬氨酸氨基转移酶测定", "5.00"),
    ("250305004", "总胆红素测定", "5.00"),
    ("250305008", "白蛋白测定", "4.00"),
    ("250307002", "肌酐测定", "10.00"),
    ("250307001", "尿素测定", "5.00"),
    ("250307004", "尿酸测定", "8.00"),
    ("250302001", "葡萄糖测定", "4.00"),
    ("250303001", "血清总胆固醇测定", "6.00"),
    ("250310016", "促甲状腺激素测定", "35.00"),
    ("250310019", "游离T3测定", "30.00"),
    ("250310020", "游离T4测定", "30.00"),
    ("250203001", "凝血酶原时间测定(PT)", "10.00"),
    ("250203004", "活化部分凝血活酶时间测定(APTT)", "10.00"),
    ("250203005", "纤维蛋白原测定(FIB)", "15.00"),
    ("250403001", "癌胚抗原测定(CEA)", "40.00"),
    ("250403002", "甲胎蛋白测定(AFP)", "40.00"),
    ("250403010", "乙型肝炎表面抗原测定(HBsAg)", "15.00"),
)

HOSPITAL_BODY_PARTS = (
    ("B01", "头部", "010"),
    ("B02", "颈部", "020"),
    ("B03", "胸部", "030"),
    ("B04", "上腹部", "040"),
    ("B06", "盆腔", "060"),
    ("B07", "腰椎", "070"),
)

EXAM_ORDER_ITEMS = (  # code, name, modality, charge, [(hospital body part or None, standard item)]
    ("CT0001", "头颅CT平扫", "CT", "210300001", [(None, "JC0001")]),
    ("CT0012", "胸部CT平扫", "CT", "210300001", [(None, "JC0012")]),
    ("CT0013", "胸部CT增强", "CT", "210300002", [(None, "JC0013")]),
    ("CT0031", "上腹部CT增强", "CT", "210300002", [(None, "JC0031")]),
    (
        "CT9000",
        "CT平扫（按部位）",
        "CT",
        "210300001",
        [("B01", "JC0001"), ("B03", "JC0012"), ("B04", "JC0030")],
    ),
    ("MR0105", "头颅MR平扫", "MR", "210200001", [(None, "JC0105")]),
    ("MR0121", "腰椎MR平扫", "MR", "210200001", [(None, "JC0121")]),
    ("DR0201", "胸部正位DR", "DR", "210102015", [(None, "JC0201")]),
    ("MG0251", "乳腺钼靶", "MG", "210103001", [(None, "JC0251")]),
    ("US0301", "甲状腺超声", "US", "220101001", [(None, "JC0301")]),
    ("US0305", "腹部超声（肝胆胰脾）", "US", "220101002", [(None, "JC0305")]),
    ("PT0001", "全身PET-CT", "PT", None, []),  # not a recognition item: left unmapped on purpose
)

LAB_SUB_ITEMS = (  # code, name, unit, standard, charge item
    ("WBC", "白细胞计数", "10^9/L", "JY0001", "250101015"),
    ("RBC", "红细胞计数", "10^12/L", "JY0002", "250101015"),
    ("HGB", "血红蛋白", "g/L", "JY0003", "250101015"),
    ("PLT", "血小板计数", "10^9/L", "JY0004", "250101015"),
    ("NEUT%", "中性粒细胞百分比", "%", None, "250101015"),
    ("ALT", "丙氨酸氨基转移酶", "U/L", "JY0021", "250305001"),
    ("AST", "天门冬氨酸氨基转移酶", "U/L", "JY0022", "250305002"),
    ("TBIL", "总胆红素", "μmol/L", "JY0023", "250305004"),
    ("ALB", "白蛋白", "g/L", "JY0024", "250305008"),
    ("CREA", "肌酐", "μmol/L", "JY0031", "250307002"),
    ("UREA", "尿素", "mmol/L", "JY0032", "250307001"),
    ("UA", "尿酸", "μmol/L", "JY0033", "250307004"),
    ("GLU", "葡萄糖", "mmol/L", "JY0041", "250302001"),
    ("TC", "总胆固醇", "mmol/L", "JY0051", "250303001"),
    ("TSH", "促甲状腺激素", "mIU/L", "JY0081", "250310016"),
    ("FT3", "游离三碘甲状腺原氨酸", "pmol/L", "JY0082", "250310019"),
    ("FT4", "游离甲状腺素", "pmol/L", "JY0083", "250310020"),
    ("PT", "凝血酶原时间", "s", "JY0091", "250203001"),
    ("INR", "国际标准化比值", "", "JY0092", "250203001"),
    ("APTT", "活化部分凝血活酶时间", "s", "JY0093", "250203004"),
    ("FIB", "纤维蛋白原", "g/L", "JY0094", "250203005"),
    ("CEA", "癌胚抗原", "ng/mL", "JY0061", "250403001"),
    ("AFP", "甲胎蛋白", "ng/mL", "JY0062", "250403002"),
    ("HBsAg", "乙型肝炎病毒表面抗原", "", "JY0071", "250403010"),
)

LAB_ORDERS = (  # code, name, specimen, sub-items
    ("XCG", "血常规", "01", ("WBC", "RBC", "HGB", "PLT", "NEUT%")),
    ("GGN", "肝功能", "02", ("ALT", "AST", "TBIL", "ALB")),
    ("SGN", "肾功能", "02", ("CREA", "UREA", "UA")),
    ("XTXZ", "血糖+血脂", "02", ("GLU", "TC")),
    ("JGN", "甲功三项", "02", ("TSH", "FT3", "FT4")),
    ("NXS", "凝血四项", "03", ("PT", "INR", "APTT", "FIB")),
    ("ZLBZW", "肿瘤标志物（CEA+AFP）", "02", ("CEA", "AFP")),
    ("ALT1", "丙氨酸氨基转移酶", "02", ("ALT",)),
    ("HBSAG", "乙肝表面抗原", "02", ("HBsAg",)),
)


@transaction.atomic
def load_standard() -> None:
    for code, name in STANDARD_DEPARTMENTS:
        m.StandardDepartment.objects.update_or_create(code=code, defaults={"name": name})
    parts = {}
    for code, name in STANDARD_BODY_PARTS:
        parts[code], _ = m.StandardBodyPart.objects.update_or_create(code=code, defaults={"name": name})
    for code, name, modality, part, days in STANDARD_EXAM_ITEMS:
        m.StandardExamItem.objects.update_or_create(
            code=code,
            defaults={"name": name, "modality_code": modality, "body_part": parts[part], "valid_days": days},
        )
    for _, specimen, days, items in STANDARD_LAB_PANELS:
        for code, name, unit in items:
            m.StandardLabItem.objects.update_or_create(
                code=code,
                defaults={"name": name, "specimen_type_code": specimen, "unit": unit, "valid_days": days},
            )
    for position, (code, name, platform_code, needs_note) in enumerate(REFUSAL_REASONS, start=1):
        m.RefusalReason.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "platform_code": platform_code,
                "needs_note": needs_note,
                "position": position,
            },
        )


@transaction.atomic
def load_hospital_demo() -> None:
    std_dept = {d.code: d for d in m.StandardDepartment.objects.all()}
    depts = {}
    for code, name, std in HOSPITAL_DEPARTMENTS:
        depts[code], _ = m.HospitalDepartment.objects.update_or_create(
            code=code, defaults={"name": name, "standard": std_dept.get(std) if std else None}
        )
    for staff_no, name, license_no, dept, title in DOCTORS:
        m.Doctor.objects.update_or_create(
            staff_no=staff_no,
            defaults={"name": name, "license_no": license_no, "department": depts[dept], "title": title},
        )
    charges = {}
    for code, name, price in CHARGE_ITEMS:
        charges[code], _ = m.ChargeItem.objects.update_or_create(
            code=code, defaults={"name": name, "price": Decimal(price)}
        )
    std_parts = {p.code: p for p in m.StandardBodyPart.objects.all()}
    parts = {}
    for code, name, std in HOSPITAL_BODY_PARTS:
        parts[code], _ = m.HospitalBodyPart.objects.update_or_create(
            code=code, defaults={"name": name, "standard": std_parts[std]}
        )
    std_exam = {i.code: i for i in m.StandardExamItem.objects.all()}
    for code, name, modality, charge, mappings in EXAM_ORDER_ITEMS:
        item, _ = m.ExamOrderItem.objects.update_or_create(
            code=code, defaults={"name": name, "modality_code": modality, "charge_item": charges.get(charge)}
        )
        for part, std in mappings:
            m.ExamItemMapping.objects.update_or_create(
                order_item=item,
                body_part=parts[part] if part else None,
                defaults={"standard_item": std_exam[std]},
            )
    std_lab = {i.code: i for i in m.StandardLabItem.objects.all()}
    subs = {}
    for code, name, unit, std, charge in LAB_SUB_ITEMS:
        subs[code], _ = m.LabSubItem.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "unit": unit,
                "standard": std_lab.get(std) if std else None,
                "charge_item": charges.get(charge),
            },
        )
        if std and charge:
            m.LabChargeMapping.objects.get_or_create(charge_item=charges[charge], standard_item=std_lab[std])
    for code, name, specimen, sub_codes in LAB_ORDERS:
        order, _ = m.LabOrder.objects.update_or_create(
            code=code, defaults={"name": name, "specimen_type_code": specimen}
        )
        for position, sub in enumerate(sub_codes, start=1):
            m.LabOrderItem.objects.update_or_create(
                order=order, sub_item=subs[sub], defaults={"position": position}
            )


def load_all() -> None:
    load_standard()
    load_hospital_demo()
