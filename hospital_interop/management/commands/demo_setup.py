from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from hospital_interop.demo import DEMO_USERS, ensure_demo_users
from hospital_interop.roles import ROLE_BY_CODE


class Command(BaseCommand):
    help = "Prepare the demo: keys, one user per role (random passwords kept in var/demo_logins.json)."

    def handle(self, *args, **options):
        call_command("setup_keys")
        logins = ensure_demo_users(settings.VAR_DIR / "demo_logins.json")
        self.stdout.write("演示账号（密码保存在 var/demo_logins.json）：")
        for username, _, role in DEMO_USERS:
            self.stdout.write(f"  {ROLE_BY_CODE[role].name:<6} 用户名 {username:<8} 密码 {logins[username]}")
