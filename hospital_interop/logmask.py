"""No patient identity in any log line: one masking filter on every handler of every process.

What is masked (``mask_text``):

* resident ID numbers, 18 characters (``110105199001011234`` → ``110105********1234``) and the old
  15-digit form, recognised by their birth date, so organisation codes and other long numbers stay
  readable;
* mobile numbers (first three and last four digits kept);
* values logged under an identity key, whatever their form: ``idNo=E12345678`` (any ID type),
  ``"phone": "010-88886666"``, ``name=张三`` / ``"patientName": "张三"`` (first character kept), also
  percent-encoded (``name=%E5%BC%A0...``) or as JSON ``\\uXXXX`` escapes;
* the row values a database error reports (PostgreSQL's ``DETAIL: Failing row contains (...)``,
  ``Key (...)=(...)``, ``invalid input syntax ...: "..."``): an integrity error on a patient row
  would otherwise print the whole row, names and numbers included.

A name with no key beside it (``"患者 张三 ..."``) cannot be told from other Chinese text; code must
not put one into a message or an exception (``mask_name`` it first), and the log-scan test
(``tests/test_no_patient_data_in_logs.py``) looks for them across the real processes.

Why a filter on the handlers, and what it masks: the parts of a ``LogRecord`` a formatter writes
are the message (``msg % args``), the exception (``exc_info``, rendered into ``exc_text``) and
``stack_info``; the rest is the logger's name, level, time, process and thread. The filter runs
before its handler formats the record and rewrites those three parts in place: the message masked
(``args`` folded into it), the exception rendered once with the standard ``formatException`` and
masked into ``exc_text`` (``Formatter.format`` only renders ``exc_info`` when ``exc_text`` is
empty, so the traceback written is the masked one), ``stack_info`` masked. A masking ``Formatter``
would have to replace the formatters the processes bring (gunicorn's access and error formats,
Celery's task formatter); a filter is added beside them and they keep working.

Where it is installed (``install()`` puts it on every handler of every logger existing at that
moment, on ``logging.lastResort``, and routes uncaught exceptions of the process and its threads
through logging, so their tracebacks are masked too):

* Django processes — web workers, ``manage.py`` commands (``lab_transfer``, ``emr_pull`` ...), Celery
  worker and beat — through ``settings.LOGGING_CONFIG = "hospital_interop.logmask.configure"``,
  which applies ``settings.LOGGING`` and then ``install()`` (this covers the handlers Django's own
  default configuration leaves on ``django`` and ``django.server``);
* Celery keeps that configuration: ``hospital_interop/celery.py`` answers ``setup_logging``, so the
  worker neither replaces the root handlers nor adds its own;
* the gunicorn master and workers: ``gunicorn_conf.MaskedGunicornLogger``;
* the platform and CA simulators and the UKey agent: ``basic_config()``; the HTTP servers of the
  last two send a request handler's exception through logging (``LoggedServerErrors``).
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
import threading

# -------------------------------------------------------------------------------- the rules

_DATE8 = r"(?:18|19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_DATE6 = r"\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_ID18 = re.compile(rf"(?<![0-9A-Za-z])(\d{{6}}){_DATE8}(\d{{3}}[0-9Xx])(?![0-9A-Za-z])")
_ID15 = re.compile(rf"(?<![0-9A-Za-z])(\d{{6}}){_DATE6}(\d{{3}})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")

_SEP = r"""(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?"""  # name=x, name: x, "name": "x", 'name': 'x', \"name\": \"x\"
_ESCAPED = r"(?:%[0-9A-Fa-f]{2})+|(?:\\u[0-9A-Fa-f]{4})+"  # percent-encoded UTF-8, JSON \uXXXX escapes
_KEYED_ID = re.compile(
    rf"((?<![A-Za-z])(?:idNo|id_no|idNumber|id_number|idCard|id_card|身份证件号码|身份证号码?|证件号码?)"
    rf"{_SEP})([0-9A-Za-z*-]{{4,32}})",
    re.IGNORECASE,
)
_KEYED_PHONE = re.compile(
    rf"((?<![A-Za-z])(?:phone|telephone|tel|mobile|mobilePhone|contactPhone|联系电话|电话号码?|手机号?码?)"
    rf"{_SEP})(\+?[0-9*][0-9*()-]{{4,19}})",
    re.IGNORECASE,
)
_NAME = re.compile(
    rf"((?:[A-Za-z]*[Nn]ame|姓名){_SEP})"
    rf"({_ESCAPED}|[\u4e00-\u9fff·*]{{1,20}}|[A-Za-z][A-Za-z .'-]{{0,40}}[A-Za-z*])"
)
_DB_ROW = re.compile(r"(Failing row contains \().*$", re.MULTILINE)  # PostgreSQL NOT NULL / CHECK
_DB_KEY = re.compile(r"(Key \([^)]*\)=\().*?(\) (?:already exists|is not present|conflicts))")
_DB_INPUT = re.compile(r"""(invalid input (?:syntax|value) for [^:\n]*: )"[^"\n]*\"""")


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1) if name else name


def _mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    if len(value) <= keep_start + keep_end:
        return value[:1] + "*" * max(len(value) - 1, 1)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[len(value) - keep_end :]


def _mask_id_value(value: str) -> str:
    return _mask_middle(value, 6, 4) if len(value) > 10 else _mask_middle(value, 2, 2)


def _mask_name_value(value: str) -> str:
    return "***" if value[:1] in "%\\" else mask_name(value)


def mask_text(text: str) -> str:
    """``text`` with identity numbers, phone numbers and keyed names masked (idempotent)."""
    text = _DB_ROW.sub(r"\1… withheld: row values)", text)
    text = _DB_KEY.sub(r"\1…\2", text)
    text = _DB_INPUT.sub(r'\1"…"', text)
    text = _KEYED_ID.sub(lambda m: m.group(1) + _mask_id_value(m.group(2)), text)
    text = _KEYED_PHONE.sub(lambda m: m.group(1) + _mask_middle(m.group(2), 3, 4), text)
    text = _NAME.sub(lambda m: m.group(1) + _mask_name_value(m.group(2)), text)
    text = _ID18.sub(r"\1********\2", text)
    text = _ID15.sub(r"\1******\2", text)
    return _MOBILE.sub(r"\1****\2", text)


# -------------------------------------------------------------------------------- the filter

_EXCEPTION_FORMATTER = logging.Formatter()


class MaskPersonalData(logging.Filter):
    """Masks a record's message, exception text and stack in place (once); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_personal_data_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep both, masked, for the reader
            message = f"{record.msg!s} (arguments: {record.args!r})"
        masked = mask_text(message)
        if masked != message or not isinstance(record.msg, str):
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        record._personal_data_masked = True
        return True


_FILTER = MaskPersonalData()


def mask_handler(handler: logging.Handler) -> logging.Handler:
    """Add the masking filter to ``handler`` unless it has one."""
    if not any(isinstance(f, MaskPersonalData) for f in handler.filters):
        handler.addFilter(_FILTER)
    return handler


def unmasked_handlers() -> list[logging.Handler]:
    """Handlers of this process's loggers (and the last-resort handler) without the filter."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = [h for lg in loggers for h in getattr(lg, "handlers", ())]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    return [h for h in handlers if not any(isinstance(f, MaskPersonalData) for f in h.filters)]


def install() -> None:
    """Mask every handler of every logger of this process (call after configuring logging), and
    send uncaught exceptions of the process and its threads through logging instead of straight
    to stderr, so that their tracebacks are masked as well."""
    for handler in unmasked_handlers():
        mask_handler(handler)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def configure(config: dict) -> None:
    """``settings.LOGGING_CONFIG``: ``dictConfig(settings.LOGGING)``, then ``install()``."""
    logging.config.dictConfig(config)
    install()


def basic_config(
    level: str | int = logging.INFO, fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s"
):
    """``logging.basicConfig`` for the processes without Django (simulators, UKey agent), masked."""
    logging.basicConfig(level=level.upper() if isinstance(level, str) else level, format=fmt)
    install()


_uncaught = logging.getLogger("uncaught")


class LoggedServerErrors:
    """``socketserver`` mixin: an exception escaping a request handler is logged (masked), not
    printed to stderr by ``handle_error`` (the CA simulator's and the UKey agent's HTTP servers)."""

    def handle_error(self, request, client_address) -> None:
        peer = client_address[0] if isinstance(client_address, tuple) and client_address else "?"
        _uncaught.exception("request from %s failed", peer)


def _log_uncaught(exc_type, exc, tb) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    _uncaught.critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    _uncaught.critical(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )
