"""Create a calling system (if needed) and print a new token for it, once."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from hospital_interop.integrations import services
from hospital_interop.integrations.models import CallingSystem
from hospital_interop.municipal.specs import load_catalogue


class Command(BaseCommand):
    help = "为接入系统生成 API 令牌（不存在则创建该系统）。令牌只打印这一次。"

    def add_arguments(self, parser):
        parser.add_argument("code", help="系统代码，如 HIS、EMR（记为上传记录的来源系统）")
        parser.add_argument("--name", help="系统名称（创建时必填）")
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--all", action="store_true", help="允许提交全部记录类型")
        scope.add_argument("--interfaces", help="允许的市平台服务编码，逗号分隔，如 OP_REGISTRATION,OP_VISIT")
        parser.add_argument(
            "--rotate", action="store_true", help="系统已有令牌时生成新令牌（旧令牌立即失效）"
        )
        parser.add_argument("--quiet-token", action="store_true", help="只输出令牌本身（便于脚本读取）")

    def handle(self, *args, code, name, all, interfaces, rotate, quiet_token, **options):
        codes = [c.strip() for c in (interfaces or "").split(",") if c.strip()]
        known = {s.code for s in load_catalogue().interfaces}
        unknown = sorted(set(codes) - known)
        if unknown:
            raise CommandError(f"未知的服务编码：{', '.join(unknown)}")
        system = CallingSystem.objects.filter(code=code).first()
        if system is None:
            if not name:
                raise CommandError(f"接入系统 {code} 不存在；创建时请用 --name 给出系统名称")
            try:
                system = services.create_system(code, name, allow_all=all, interfaces=codes)
            except ValidationError as exc:
                raise CommandError(
                    "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                ) from None
            created = True
        else:
            created = False
            if system.has_token and not rotate:
                raise CommandError(f"接入系统 {code} 已有令牌（{system.token_hint}…）；如需更换请加 --rotate")
            changed = []
            if name:
                system.name = name
                changed.append("name")
            if all or codes:
                system.allow_all, system.allowed_interfaces = all, sorted(set(codes))
                changed += ["allow_all", "allowed_interfaces"]
            if changed:
                system.save(update_fields=changed)
        token = services.issue_token(system)
        if quiet_token:
            self.stdout.write(token)
            return
        scope = (
            "全部记录类型"
            if system.allow_all
            else (", ".join(system.allowed_interfaces) or "（暂无，请在后台勾选）")
        )
        self.stdout.write(
            f"{'已创建' if created else '已更新'}接入系统 {system.code}（{system.name}），允许：{scope}"
        )
        self.stdout.write("新令牌（只显示这一次，请妥善保存）：")
        self.stdout.write(token)
        self.stdout.write("调用时加请求头：Authorization: Token <令牌>")
