"""``manage.py specs``: look at the interface catalogue, validate payload files, print examples.

manage.py specs list                                  every interface of the current versions
manage.py specs show LAB_REPORT_DETAIL                its field tree
manage.py specs check payload.json --interface CODE   exit status 1 when the payload is invalid
manage.py specs example OP_VISIT [--seed 3] [--response]
"""

from django.core.management.base import BaseCommand, CommandError

from hospital_interop.municipal import specs


class Command(BaseCommand):
    help = "Interface catalogue: list, show CODE, check FILE --interface CODE, example CODE."
    requires_system_checks = []  # reads spec files only: no database, no apps to check

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="table of all interfaces")
        show = sub.add_parser("show", help="field tree of one interface")
        show.add_argument("code")
        check = sub.add_parser("check", help="validate a JSON payload file")
        check.add_argument("file")
        check.add_argument("--interface", required=True, dest="code")
        example = sub.add_parser("example", help="print a valid example payload")
        example.add_argument("code")
        example.add_argument("--seed", type=int, default=0)
        example.add_argument("--response", action="store_true", help="the response data instead")

    def handle(self, *args, action, **options):
        catalogue = specs.load_catalogue()
        code = options.get("code")
        if code is not None and code not in {s.code for s in catalogue.interfaces}:
            raise CommandError(f"未知的服务编码 (unknown service code): {code}")
        if action == "list":
            self.stdout.write(specs.catalogue_table(catalogue))
        elif action == "show":
            self.stdout.write(specs.field_tree(catalogue.interface(code)))
        elif action == "example":
            self.stdout.write(
                specs.example_json(code, options["seed"], catalogue, response=options["response"])
            )
        elif action == "check":
            status, text = specs.check_payload_file(options["file"], code, catalogue)
            self.stdout.write(text)
            if status:
                raise CommandError("载荷校验未通过 (payload invalid)", returncode=status)
