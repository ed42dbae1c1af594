"""The masking filter (hospital_interop/logmask.py): what it masks in a message, its arguments, an
exception's text and traceback and a stack; that it reaches every handler of a process and its
uncaught exceptions; and that no process configures logging around it. The processes themselves
are checked end to end by tests/test_no_patient_data_in_logs.py."""

from __future__ import annotations

import ast
import io
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hospital_interop import logmask
from hospital_interop.logmask import MaskPersonalData, mask_text

ROOT = Path(__file__).resolve().parent.parent
ID_NO, NAME, PHONE = "110105198807153317", "欧阳明轩", "13912340731"


def write(msg: str, *args, exc_info=None, stack_info: str | None = None) -> str:
    """What a masked StreamHandler writes for one record (handed to it directly, as a logger would)."""
    stream = io.StringIO()
    handler = logmask.mask_handler(logging.StreamHandler(stream))
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.handle(logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info, sinfo=stack_info))
    return stream.getvalue()


def test_the_traceback_and_text_of_a_logged_exception_are_masked():
    try:
        raise ValueError(f"patient {{'name': '{NAME}', 'idNo': '{ID_NO}', 'phone': '{PHONE}'}} refused")
    except ValueError:
        out = write("upload of %s failed", ID_NO, exc_info=sys.exc_info())
    assert "Traceback (most recent call last)" in out and "ValueError" in out
    assert ID_NO not in out and NAME not in out and PHONE not in out
    assert out.count("110105********3317") == 2 and "'欧***'" in out and "139****0731" in out


def test_a_stack_and_arguments_of_any_type_are_masked():
    stack = f"Stack (most recent call last):\n  File 'x.py', line 1, in f\n    send(idNo='{ID_NO}')"
    out = write("args %s %r", {"idNo": ID_NO}, [PHONE], stack_info=stack)
    assert "Stack (most recent call last)" in out and ID_NO not in out and PHONE not in out
    broken = write("one %s", ID_NO, PHONE)  # more arguments than the format has places
    assert ID_NO not in broken and PHONE not in broken and "arguments" in broken


def test_database_errors_do_not_echo_the_row():
    detail = (
        'new row for relation "encounter" violates check constraint "c"\n'
        f"DETAIL:  Failing row contains (1, V1, {NAME}, 01, {ID_NO}, {PHONE}, null).\n"
        f'DETAIL:  Key (id_no)=({ID_NO}) already exists.\ninvalid input syntax for type date: "{NAME}"'
    )
    masked = mask_text(detail)
    assert NAME not in masked and ID_NO not in masked and PHONE not in masked
    assert 'violates check constraint "c"' in masked and "Key (id_no)=(…) already exists." in masked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "idNo=E12345678 idTypeCode=03",
            "idNo=E1*****78 idTypeCode=03",
        ),  # a passport: any ID type by its key
        ('{"证件号码": "H01234567"}', '{"证件号码": "H0*****67"}'),
        ('"phone": "010-88886666"', '"phone": "010*****6666"'),  # a landline by its key
        ("name=%E6%AC%A7%E9%98%B3&x=1", "name=***&x=1"),  # percent-encoded
        ('{"name": "\\u6b27\\u9633"}', '{"name": "***"}'),  # JSON escapes
        ("old id 110105880715331", "old id 110105******331"),  # the 15-digit form
        ("org 12110000400000000X licence 110110000234567", "org 12110000400000000X licence 110110000234567"),
    ],
)
def test_identities_of_every_form_are_masked_and_codes_stay_readable(text, expected):
    assert mask_text(text) == expected


def test_masking_twice_is_masking_once():
    text = f"name={NAME} idNo={ID_NO} phone {PHONE} 'patientName': 'Li Lei' {ID_NO[:-3]}88X"
    assert mask_text(mask_text(text)) == mask_text(text)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (text,), None)
    for _ in range(2):  # the same record through two handlers
        MaskPersonalData().filter(record)
    assert record.getMessage() == mask_text(text)


def test_install_masks_every_handler_of_every_logger_and_the_last_resort(monkeypatch):
    quiet = logging.getLogger("t.library")
    handler = logging.StreamHandler(io.StringIO())
    quiet.addHandler(handler)  # a handler some library added, on a logger that does not propagate
    try:
        assert handler in logmask.unmasked_handlers()
        monkeypatch.setattr(sys, "excepthook", sys.excepthook)
        monkeypatch.setattr(threading, "excepthook", threading.excepthook)
        logmask.install()
        assert logmask.unmasked_handlers() == []
        assert any(isinstance(f, MaskPersonalData) for f in logging.lastResort.filters)
    finally:
        quiet.removeHandler(handler)


def test_django_default_handlers_are_masked_after_setup():
    """Django applies its DEFAULT_LOGGING (handlers on ``django`` and ``django.server``) before the
    project's LOGGING; the project's LOGGING_CONFIG masks those too."""
    server = logging.getLogger("django.server")
    assert server.handlers and all(
        any(isinstance(f, MaskPersonalData) for f in h.filters) for h in server.handlers
    )
    assert [h for h in logmask.unmasked_handlers() if type(h).__module__ != "_pytest.logging"] == []


@pytest.mark.parametrize("where", ["main", "thread"])
def test_an_uncaught_exception_is_written_masked(where):
    body = f"raise ValueError('idNo={ID_NO} name={NAME} phone {PHONE}')"
    code = "from hospital_interop import logmask\nimport threading\nlogmask.basic_config('INFO')\n" + (
        f"def run():\n    {body}\nt = threading.Thread(target=run)\nt.start()\nt.join()\n"
        if where == "thread"
        else body
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert "uncaught exception" in out and "Traceback" in out and "ValueError" in out
    assert ID_NO not in out and NAME not in out and PHONE not in out


def test_an_http_server_logs_a_failed_request_masked_instead_of_printing_it():
    """The CA simulator's and the UKey agent's servers (socketserver would print_exc to stderr)."""
    stream = io.StringIO()
    handler = logmask.mask_handler(logging.StreamHandler(stream))
    logging.getLogger("uncaught").addHandler(handler)
    try:
        try:
            raise ValueError(f"cannot sign for idNo={ID_NO}")
        except ValueError:
            logmask.LoggedServerErrors().handle_error(None, ("127.0.0.1", 50123))
    finally:
        logging.getLogger("uncaught").removeHandler(handler)
    out = stream.getvalue()
    assert "request from 127.0.0.1 failed" in out and "ValueError" in out and ID_NO not in out


def _configures_logging(path: Path) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("basicConfig", "dictConfig", "fileConfig", "addHandler"):
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return calls


def test_no_process_configures_logging_except_through_logmask():
    """Every process of the product and the simulators sets up logging through logmask (Django's
    LOGGING_CONFIG, ``basic_config``), so no handler goes unmasked."""
    packages = (
        "hospital_interop",
        "mutual_recognition",
        "emr_sharing",
        "esign",
        "dictionaries",
        "simulators",
    )
    found = [
        call
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "hospital_interop" / "logmask.py"
        for call in _configures_logging(path)
    ]
    assert found == []
