"""Prepare the e-signature demo against a running CA simulator: sample reports, CA parameters,
the demo lab user registered as signer with a software UKey bound to them."""

import base64
import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from esign import selectors, services
from esign.client import CAError, ReferenceVendorClient
from esign.demo import create_sample_reports
from esign.models import ReviewReport
from esign.protocol import DEMO_APP_ID
from esign.ukey_agent import create_keystore
from hospital_interop.errors import InvalidInput
from hospital_interop.municipal import gm


class Command(BaseCommand):
    help = (
        "E-signature demo data: sample reports in six modules, CA parameters, a registered signer and a UKey."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--ca-data", default=str(settings.VAR_DIR / "ca"), help="the simulator's data folder"
        )
        parser.add_argument("--username", default="lab")
        parser.add_argument("--staff-no", default="1001")
        parser.add_argument("--keystore", default=str(settings.VAR_DIR / "ukey" / "lab.json"))
        parser.add_argument("--pin", default=None, help="UKey PIN (default: a random 6-digit PIN, printed)")

    def handle(self, *args, **o):
        secret_file = Path(o["ca_data"]) / "app_secret"
        if not secret_file.exists():
            raise CommandError(
                f"{secret_file} not found: start the CA simulator first (python -m simulators.ca)"
            )
        services.set_parameters(
            {"CA_ENABLED": "1", "CA_APP_ID": DEMO_APP_ID, "CA_SECRET": secret_file.read_text().strip()},
            actor="esign_demo",
        )
        if not ReviewReport.objects.exists():
            create_sample_reports()
        user = get_user_model().objects.filter(username=o["username"]).first()
        if user is None:
            raise CommandError(f"user {o['username']} not found: run manage.py demo_setup first")
        profile = selectors.profile_for(user)
        if profile is None or not profile.registered:
            try:
                profile = services.register_signer(
                    user,
                    staff_no=o["staff_no"],
                    name="李检验",
                    id_number="110105198001010075",
                    mobile="13800001001",
                )
            except InvalidInput as exc:
                raise CommandError(str(exc)) from None
        keystore = Path(o["keystore"])
        pin_file = keystore.with_suffix(".pin")
        if not keystore.exists():
            o["pin"] = o["pin"] or f"{secrets.randbelow(10**6):06d}"
            pin_file.parent.mkdir(parents=True, exist_ok=True)
            pin_file.write_text(o["pin"])
            pin_file.chmod(0o600)
            client = services.ca_client()
            assert isinstance(client, ReferenceVendorClient)
            key = gm.generate_sm2_key()
            serial = "UKDEMO" + o["staff_no"]
            try:
                info = client.apply_ukey_certificate(
                    user_id=profile.ca_user_id, public_key_hex=key.public_key().hex, key_serial=serial
                )
            except CAError as exc:
                raise CommandError(exc.message) from None
            create_keystore(
                keystore,
                pin=o["pin"],
                key=key,
                serial=serial,
                certificates=[base64.b64decode(info.certificate)],
                label=profile.name,
            )
            services.set_staff_ca(user, ukey_serial=serial, ca_enabled=True)
        o["pin"] = o["pin"] or (pin_file.read_text().strip() if pin_file.exists() else "（见创建时的输出）")
        logins = settings.VAR_DIR / "demo_logins.json"
        if logins.exists():  # the demo's one place for what a demo user needs to log in
            saved = json.loads(logins.read_text())
            saved[f"{o['username']} 的 UKey PIN"] = o["pin"]
            logins.write_text(json.dumps(saved, ensure_ascii=False, indent=2))
            logins.chmod(0o600)
        self.stdout.write(
            f"电子签名演示已就绪：签名用户 {profile.name}（工号 {profile.staff_no}），"
            f"UKey 文件 {keystore}，PIN {o['pin']}。"
        )
        self.stdout.write(
            f"启动 UKey 客户端：.venv/bin/python -m esign.ukey_agent serve --keystore {keystore} --port 8710"
            " --allow-origin <本系统页面地址，默认 http://127.0.0.1:8000 与 http://localhost:8000>"
        )
