from django.core.management.base import BaseCommand

from dictionaries import demo


class Command(BaseCommand):
    help = "载入标准字典（市互认项目示例、标准科室与部位、不互认原因）；加 --hospital-demo 同时载入演示用院内字典与对照。"

    def add_arguments(self, parser):
        parser.add_argument(
            "--hospital-demo", action="store_true", help="also load the demo hospital dictionaries"
        )

    def handle(self, *args, hospital_demo=False, **options):
        demo.load_standard()
        if hospital_demo:
            demo.load_hospital_demo()
        self.stdout.write(self.style.SUCCESS("dictionaries loaded"))
