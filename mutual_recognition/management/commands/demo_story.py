from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mutual_recognition.demo_story import Replay


class Command(BaseCommand):
    help = "Replay a few days of hospital activity through the running server's APIs (the demo's story)."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the running server")
        parser.add_argument("--sim-url", default="http://127.0.0.1:8701", help="the platform simulator")

    def handle(self, *args, **o):
        self.stdout.write("==> 演示数据：按真实接口回放几天的医院业务")
        replay = Replay(o["base_url"], o["sim_url"], settings.PLATFORM["ORG_CODE"], say=self.stdout.write)
        told = replay.run()
        replay.quality_findings()  # once the worker has delivered what a finding names
        if told.refused:
            raise CommandError("服务器拒收了演示数据：" + "；".join(told.refused[:5]))
        self.stdout.write(
            f"    共提交 {sum(told.posted.values())} 次；上传看板随后显示发送、失败与超时的记录"
        )
