"""The home page's tiles: each leads a role to its work. A tile shows when the user holds its
permission, the access matrix (``access.py``) lets them open its page, and the page exists, so a
feature appears on the home page by adding one line here and no one sees a tile that answers 403."""

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from .access import may_open
from .roles import holds


@dataclass(frozen=True)
class Tile:
    permission: str
    title: str
    description: str
    url_name: str
    group: str


TILES = (
    Tile(
        "hospital_interop.view_uploads",
        "上传看板",
        "每个接口的待发送、重试、需处理与时效，失败原因与重推",
        "uploads:dashboard",
        "上传监控",
    ),
    Tile(
        "hospital_interop.view_uploads",
        "上传记录查询",
        "按接口、主键、患者、状态、日期查找每一条上传",
        "uploads:records",
        "上传监控",
    ),
    Tile(
        "hospital_interop.view_uploads",
        "数据质量反馈",
        "卫健委、质控中心反馈的问题：截止时间、分派、修正重传与回复",
        "quality:findings",
        "上传监控",
    ),
    Tile(
        "quality.handle_lab_findings",
        "检验数据质量反馈",
        "分派给检验科的质控问题：核实、由 LIS 重传后回复",
        "quality:findings",
        "检验电子签名",
    ),
    Tile(
        "hospital_interop.view_interfaces",
        "接口目录",
        "六份市平台接口文档的全部接口、字段、主键与值域",
        "interfaces",
        "平台接口",
    ),
    Tile(
        "hospital_interop.review_lab_reports",
        "报告审核",
        "临检、免疫、生化组、分子生物、微生物、临检骨髓组报告审核与电子签名",
        "esign:review",
        "检验电子签名",
    ),
    Tile(
        "hospital_interop.review_lab_reports",
        "电子签名",
        "UKey / 二维码签名登录、自动签名、签名用户注册、移动证书下载与退出",
        "esign:home",
        "检验电子签名",
    ),
    Tile(
        "esign.manage_ca",
        "人员 CA 设置",
        "检验人员的 UKey 唯一标识与是否启用 CA 验证",
        "esign:staff",
        "检验电子签名",
    ),
    Tile(
        "esign.manage_ca",
        "CA 参数设置",
        "统一代码表：CA 是否启用、二维码服务 URL、应用 ID、验证密钥",
        "esign:parameters",
        "检验电子签名",
    ),
    Tile(
        "hospital_interop.use_recognition",
        "患者互认结果",
        "按证件号或就诊号查看已互认（HR）的外院结果与不互认记录",
        "recognition:patients",
        "检查检验互认",
    ),
    Tile(
        "hospital_interop.use_recognition",
        "开单互认演示",
        "模拟医生站开单：调用互认提示接口并嵌入互认提示页",
        "recognition:demo-his",
        "检查检验互认",
    ),
    Tile(
        "hospital_interop.view_recognition_stats",
        "互认统计",
        "按科室、医师、项目与时间的互认率、不互认原因与节省费用",
        "recognition:stats",
        "检查检验互认",
    ),
    Tile(
        "hospital_interop.view_audit_log",
        "调阅审计",
        "谁在何时调阅或互认了哪位患者的外院报告与影像",
        "recognition:audit",
        "检查检验互认",
    ),
    Tile(
        "hospital_interop.view_uploads",
        "检查报告上传",
        "RIS 审核的检查报告：PDF、结果、作废的上传状态，待对照的院内代码",
        "exam:reports",
        "检查数据上传",
    ),
    Tile(
        "hospital_interop.view_uploads",
        "影像同步",
        "推送到前置机的检查影像：每个检查的送达进度、失败实例与重试",
        "exam:studies",
        "检查数据上传",
    ),
    Tile(
        "hospital_interop.view_uploads",
        "检查日报",
        "每日各科室上传的检查报告数量：定时上报，可重报任一日期",
        "exam:daily",
        "检查数据上传",
    ),
    Tile(
        "hospital_interop.maintain_dictionaries",
        "检查报告待对照",
        "因院内科室、检查项目或部位未对照而暂停上传的检查报告，对照后自动上传",
        "exam:reports",
        "字典与对照",
    ),
    Tile(
        "hospital_interop.maintain_dictionaries",
        "字典对照检查",
        "尚未对照到市平台标准字典的院内科室、检查检验项目与收费项",
        "dictionaries:unmapped",
        "字典与对照",
    ),
    Tile(
        "hospital_interop.maintain_dictionaries",
        "电子病历待对照",
        "含未对照院内代码（科室、诊断、手术等）而暂不发送的电子病历记录，对照后自动发送",
        "emr_sharing:held",
        "字典与对照",
    ),
    Tile(
        "is_authenticated",
        "电子病历接入",
        "HIS/EMR 提交29类病历记录：记录类型、Swagger 接口文档与接入指南",
        "emr_sharing:integration",
        "电子病历共享",
    ),
    Tile(
        "hospital_interop.review_lab_reports",
        "检验报告上传",
        "审核归档的检验报告、PDF 与索引、3.4/3.3 上传状态；市平台报告列表查询与外院互认结果",
        "lab:reports",
        "检验报告上传",
    ),
    Tile(
        "hospital_interop.view_uploads",
        "检验报告文件传输",
        "投递目录、配对与上传、隔离文件与传输日志；市平台报告列表核对",
        "lab:transfers",
        "上传监控",
    ),
    Tile(
        "audit.view_auditrecord",
        "审计日志",
        "谁在何时、从何处读写了哪位患者的数据：按时间、用户、操作、患者、对象查询与导出",
        "audit:log",
        "安全审计",
    ),
    Tile("is_staff", "系统管理", "用户、角色、系统参数与字典的后台维护", "admin:index", "系统"),
    Tile(
        "hospital_interop.view_uploads",
        "运行状态",
        "数据库、消息队列与市平台的连通性（JSON）",
        "healthz",
        "系统",
    ),
)


def tiles_for(user) -> list[dict]:
    shown = []
    for tile in TILES:
        if tile.permission == "is_authenticated":
            allowed = user.is_authenticated
        elif tile.permission == "is_staff":
            allowed = user.is_staff
        else:
            allowed = holds(user, tile.permission)
        if not allowed or not may_open(user, tile.url_name):
            continue
        try:
            url = reverse(tile.url_name)
        except NoReverseMatch:
            continue
        shown.append({"title": tile.title, "description": tile.description, "url": url, "group": tile.group})
    return shown
