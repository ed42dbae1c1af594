"""Settings, read from the environment.

Embedded default (the demo): SQLite in ``var/``, a file-system Celery broker and a file cache,
so nothing but Python is needed. Production and CI: set ``DATABASE_URL`` (PostgreSQL) and
``REDIS_URL`` (broker and cache). Every key and secret comes from the environment or from a
file the environment names; ``make demo`` / ``make test`` generate demo keys under ``var/``.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF

from hospital_interop.filemodes import private_database_file, write_private

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HOSPITAL_INTEROP_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, the file DJANGO_SECRET_KEY_FILE names, or a random key generated once per installation under var/."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    if key_file := os.environ.get("DJANGO_SECRET_KEY_FILE"):
        return Path(key_file).read_text().strip()
    path = VAR_DIR / "secret_key"
    if not path.exists():
        write_private(VAR_DIR, path.name, secrets.token_urlsafe(50).encode())
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
# One switch for a production deployment behind the TLS proxy (docker-compose.yml sets it): Secure
# cookies, HSTS, the HTTPS redirect, the proxy's X-Forwarded-Proto trusted; DEBUG refused. See the
# "Production" block below and docs/security.md.
PRODUCTION = env_bool("HOSPITAL_INTEROP_PRODUCTION", False)
if PRODUCTION and DEBUG:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("HOSPITAL_INTEROP_PRODUCTION=1 refuses DJANGO_DEBUG: unset DJANGO_DEBUG.")
ALLOWED_HOSTS = [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (hospital intranets have no CDN)
    "django_celery_beat",
    "simple_history",  # dictionaries: change history (who, when, before, after)
    "import_export",  # dictionaries: Excel/CSV import and export in the admin
    "hospital_interop",
    "hospital_interop.uploads",
    "hospital_interop.integrations",
    "hospital_interop.patients",
    "hospital_interop.audit",
    "hospital_interop.quality",
    "dictionaries",
    "mutual_recognition",
    "mutual_recognition.exam",
    "mutual_recognition.lab",
    "emr_sharing",
    "esign",
    "axes",  # login lockout (hospital_interop/security/lockout.py)
    "csp",  # {% csp_nonce %}-free: templates write nonce="{{ request.csp_nonce }}"
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hospital_interop.audit.context.AuditContextMiddleware",  # who and from where, for the audit trail
    "django.contrib.messages.middleware.MessageMiddleware",
    "hospital_interop.security.idle.IdleTimeoutMiddleware",  # 30 min without a request: logged out
    "hospital_interop.access.AccessMiddleware",  # the role x URL matrix (hospital_interop/access.py)
    "hospital_interop.params.ParameterGuardMiddleware",  # a NUL in a parameter: a 400 naming it
    "esign.admin_gate.AdminCALoginMiddleware",  # ADMIN_REQUIRE_CA_LOGIN
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",  # records who changed a dictionary row
    "axes.middleware.AxesMiddleware",  # a locked-out login answers the lockout page
]

ROOT_URLCONF = "hospital_interop.urls"
WSGI_APPLICATION = "hospital_interop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hospital_interop.context_processors.site",
            ],
            "builtins": ["hospital_interop.templatetags.access_tags"],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'demo.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The demo runs web, worker and beat against one file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    # it holds patient data: 0600 before SQLite's first connection would create it with the umask's mode
    private_database_file(DATABASES["default"]["NAME"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache and broker ----------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Short socket timeouts: with Redis unreachable the prompt API degrades at once (cachesafe.py)
    CACHES = {
        "default": {
            "BACKEND": "hospital_interop.cachesafe.RedisCache",  # Django's, its client reused
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 2.0},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery ---------------------------------------------------------------------------------
# Embedded default: kombu's file-system transport, a folder shared by web and worker.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),  # kombu's default is ./control in the checkout
        "store_processed": False,
    }
else:
    # a dead broker must not hold a web request: connect fast, fail fast (the sweep delivers later)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
DELIVERY_SWEEP_SECONDS = int(os.environ.get("DELIVERY_SWEEP_SECONDS", "5"))
DELIVERY = {
    # exponential backoff with jitter: base * 2^(attempt-1), capped
    "BACKOFF_BASE_SECONDS": float(os.environ.get("DELIVERY_BACKOFF_BASE_SECONDS", "5")),
    "BACKOFF_CAP_SECONDS": float(os.environ.get("DELIVERY_BACKOFF_CAP_SECONDS", "3600")),
    # a claimed row whose worker died is reclaimed after the lease
    "LEASE_SECONDS": float(os.environ.get("DELIVERY_LEASE_SECONDS", "120")),
    # rows per claim: a worker's pipeline runs dry at each batch's end before it claims again, so
    # fewer, larger claims keep it full (docs/delivery.md, Throughput)
    "CLAIM_BATCH": int(os.environ.get("DELIVERY_CLAIM_BATCH", "40")),
    # sends in flight per worker process (docs/delivery.md, Throughput): a worker records the
    # answers that came while it sends the next rows, in groups of half this many (one
    # transaction each); 1 sends and records strictly one by one
    "PIPELINE": int(os.environ.get("DELIVERY_PIPELINE", "8")),
    # a worker that lost the database (restart, failover) reconnects and goes on for this long
    # before giving up: an answer the platform gave is recorded, not thrown away
    # a row whose payload is larger is claimed alone (it does not hold small ones up), and its
    # lease and send time grow by its transfer at the rate below (a conservative estimate)
    "LARGE_PAYLOAD_BYTES": int(os.environ.get("DELIVERY_LARGE_PAYLOAD_BYTES", str(1_000_000))),
    # large rows sent at once, over all workers (the other worker processes keep small rows moving)
    "LARGE_IN_FLIGHT": int(os.environ.get("DELIVERY_LARGE_IN_FLIGHT", "1")),
    "SEND_BYTES_PER_SECOND": float(os.environ.get("DELIVERY_SEND_BYTES_PER_SECOND", str(1_000_000))),
    # a large row is sent by a thread at this CPU niceness (0-19; 0: as the worker), so its
    # unsealing, compression and encryption take CPU the small rows beside it do not need
    "LARGE_NICE": int(os.environ.get("DELIVERY_LARGE_NICE", "10")),
    # while an interface's platform is away, the sweep lets one waiting row try it this often
    "PROBE_SECONDS": float(os.environ.get("DELIVERY_PROBE_SECONDS", "4")),
    "DB_RETRY_SECONDS": float(os.environ.get("DELIVERY_DB_RETRY_SECONDS", "90")),
}
# Retention of the outbox (docs/retention.md): accepted rows older than ARCHIVE_AFTER_DAYS (an
# interface's policy may say otherwise, never under FLOOR_DAYS) move to the archive table in
# batches; archived rows older than LEGAL_RETENTION_DAYS are deleted. 30 years: the longest period
# of the 医疗机构病历管理规定 (inpatient records), which the outbox, a copy of what was sent, keeps too.
RETENTION = {
    "ARCHIVE_AFTER_DAYS": int(os.environ.get("RETENTION_ARCHIVE_AFTER_DAYS", "90")),
    "FLOOR_DAYS": float(os.environ.get("RETENTION_FLOOR_DAYS", "7")),
    "LEGAL_RETENTION_DAYS": int(os.environ.get("RETENTION_LEGAL_DAYS", str(30 * 366))),
    "BATCH": int(os.environ.get("RETENTION_BATCH", "2000")),
    # the beat schedule: the job runs this often, for at most MAX_SECONDS each time
    "EVERY_SECONDS": int(os.environ.get("RETENTION_EVERY_SECONDS", "3600")),
    "MAX_SECONDS": float(os.environ.get("RETENTION_MAX_SECONDS", "600")),
}

# --- Municipal platform ---------------------------------------------------------------------
KEY_DIR = Path(os.environ.get("HOSPITAL_INTEROP_KEY_DIR", VAR_DIR / "keys"))
PLATFORM = {
    "BASE_URL": os.environ.get("PLATFORM_BASE_URL", "http://127.0.0.1:8701"),
    "APP_ID": os.environ.get("PLATFORM_APP_ID", "BJ-HOSP-0001"),
    "ORG_CODE": os.environ.get("PLATFORM_ORG_CODE", "12110000400000000X"),
    # Files, never values in the repo: SM2 private key (PEM), platform public key (PEM),
    # SM4 key (32 hex chars) and HMAC app secret.
    "PRIVATE_KEY_FILE": os.environ.get("PLATFORM_PRIVATE_KEY_FILE", str(KEY_DIR / "hospital_sm2.pem")),
    "PLATFORM_PUBLIC_KEY_FILE": os.environ.get(
        "PLATFORM_PUBLIC_KEY_FILE", str(KEY_DIR / "platform_sm2_pub.pem")
    ),
    "SM4_KEY_FILE": os.environ.get("PLATFORM_SM4_KEY_FILE", str(KEY_DIR / "sm4.key")),
    "APP_SECRET_FILE": os.environ.get("PLATFORM_APP_SECRET_FILE", str(KEY_DIR / "app_secret")),
    "TIMEOUT_SECONDS": float(os.environ.get("PLATFORM_TIMEOUT_SECONDS", "10")),
    "VIEWER_URL": os.environ.get("PLATFORM_VIEWER_URL", "http://127.0.0.1:8701/viewer/report"),
}
# --- Lab report drop folder (1.2.1): archive writes PDF + index, `manage.py lab_transfer` uploads ---
LAB_TRANSFER = {
    "DROP_DIR": os.environ.get("LAB_DROP_DIR", str(VAR_DIR / "lab" / "drop")),
    # after the platform accepted both uploads: "archive" (move to ARCHIVE_DIR/<date>/) or "delete"
    "AFTER_ACCEPT": os.environ.get("LAB_AFTER_ACCEPT", "archive"),
    "ARCHIVE_DIR": os.environ.get("LAB_ARCHIVE_DIR", str(VAR_DIR / "lab" / "archive")),
    "QUARANTINE_DIR": os.environ.get("LAB_QUARANTINE_DIR", str(VAR_DIR / "lab" / "quarantine")),
    "UNPAIRED_TIMEOUT_SECONDS": float(os.environ.get("LAB_UNPAIRED_TIMEOUT_SECONDS", "600")),
    "RESCAN_SECONDS": float(os.environ.get("LAB_RESCAN_SECONDS", "30")),
    "ACCEPT_POLL_SECONDS": float(os.environ.get("LAB_ACCEPT_POLL_SECONDS", "1")),
    # HMAC-SM3 key of the index files (hex); `manage.py setup_keys` generates it, a LIS that writes
    # pairs itself gets a copy (docs/lab-transfer.md)
    "INDEX_KEY_FILE": os.environ.get("LAB_INDEX_KEY_FILE", str(KEY_DIR / "lab_index.key")),
}
# --- Security audit trail (hospital_interop/audit): who read or changed which patient's data ---
AUDIT = {
    # HMAC-SM3 key of the entry chain (hex); `manage.py setup_keys` generates it, never in the repo
    "KEY_FILE": os.environ.get("AUDIT_KEY_FILE", str(KEY_DIR / "audit.key")),
    # entries are kept at least this many months (never fewer than 6); `manage.py audit_purge`
    "RETENTION_MONTHS": int(os.environ.get("AUDIT_RETENTION_MONTHS", "6")),
    # behind the TLS proxy: the request header holding the client's address (e.g. HTTP_X_REAL_IP);
    # "" = REMOTE_ADDR. Set it only when the proxy overwrites the header, or clients could forge it
    "CLIENT_IP_HEADER": os.environ.get("AUDIT_CLIENT_IP_HEADER", ""),
}

# --- Patient data at rest (密评; hospital_interop/atrest.py): SM4-GCM data keys (<id>.key + current,
# rotated with `manage.py rotate_data_key`) and the HMAC-SM3 key of the patient digest; files, 0600
DATA_KEY_DIR = os.environ.get("DATA_KEY_DIR", str(KEY_DIR / "data"))
PATIENT_DIGEST_KEY_FILE = os.environ.get("PATIENT_DIGEST_KEY_FILE", str(KEY_DIR / "patient_digest.key"))
CA_SERVER = {
    "BASE_URL": os.environ.get("CA_BASE_URL", "http://127.0.0.1:8702"),
}

# --- Exams: DICOM image sync to the front-end processor, daily summary (docs/exam-intake.md) --
DICOM = {
    "FEP_AE_TITLE": os.environ.get("DICOM_FEP_AE_TITLE", ""),  # 前置机 (front-end processor)
    "FEP_HOST": os.environ.get("DICOM_FEP_HOST", ""),
    "FEP_PORT": int(os.environ.get("DICOM_FEP_PORT", "104")),
    "CALLING_AE_TITLE": os.environ.get("DICOM_CALLING_AE_TITLE", "HOSP_INTEROP"),
    "RETRIEVE_MODE": os.environ.get("DICOM_RETRIEVE_MODE", "c-get"),  # c-get | c-move
    "PACS_AE_TITLE": os.environ.get("DICOM_PACS_AE_TITLE", ""),
    "PACS_HOST": os.environ.get("DICOM_PACS_HOST", ""),
    "PACS_PORT": int(os.environ.get("DICOM_PACS_PORT", "104")),
    "MOVE_DESTINATION_AE_TITLE": os.environ.get("DICOM_MOVE_DESTINATION_AE_TITLE", ""),  # our SCP for C-MOVE
    "MOVE_DESTINATION_HOST": os.environ.get("DICOM_MOVE_DESTINATION_HOST", "0.0.0.0"),
    "MOVE_DESTINATION_PORT": int(os.environ.get("DICOM_MOVE_DESTINATION_PORT", "11113")),
    "BATCH_SIZE": int(os.environ.get("DICOM_BATCH_SIZE", "500")),  # instances per association
    "MAX_PDU": int(os.environ.get("DICOM_MAX_PDU", "0")),  # our max receive PDU, 0 = unlimited
    "DIMSE_TIMEOUT": float(os.environ.get("DICOM_DIMSE_TIMEOUT", "60")),
    "NETWORK_TIMEOUT": float(os.environ.get("DICOM_NETWORK_TIMEOUT", "60")),
    "CONNECT_TIMEOUT": float(os.environ.get("DICOM_CONNECT_TIMEOUT", "10")),
    "RETRIEVE_DIR": os.environ.get("DICOM_RETRIEVE_DIR", str(VAR_DIR / "dicom" / "retrieved")),
    # study folders named by RIS/PACS events must lie below one of these (os.pathsep-separated)
    "FOLDER_ROOTS": [
        p
        for p in os.environ.get("DICOM_FOLDER_ROOTS", str(VAR_DIR / "dicom" / "incoming")).split(os.pathsep)
        if p
    ],
    "SWEEP_SECONDS": int(os.environ.get("DICOM_SWEEP_SECONDS", "15")),
    "LEASE_SECONDS": int(os.environ.get("DICOM_LEASE_SECONDS", "900")),
    "MAX_AGE_HOURS": int(os.environ.get("DICOM_MAX_AGE_HOURS", "72")),  # then the job needs attention
    # an instance lost or refused for lack of resources this many times needs attention (the rest go on)
    "INSTANCE_MAX_FAILURES": int(os.environ.get("DICOM_INSTANCE_MAX_FAILURES", "5")),
    # data set tags the front-end processor files an instance under: a file without them is not sent
    "REQUIRED_TAGS": [
        t.strip()
        for t in os.environ.get("DICOM_REQUIRED_TAGS", "StudyInstanceUID,SeriesInstanceUID").split(",")
        if t.strip()
    ],
}
EXAM_DAILY_SUMMARY_TIME = os.environ.get(
    "EXAM_DAILY_SUMMARY_TIME", "00:30"
)  # local time; reports the previous day
# Data-quality feedback (interfaces.md §G): the first interval of the periodic pull of
# QC_FEEDBACK_QUERY; afterwards ops change it in the admin (periodic task "数据质量反馈拉取").
QC_FEEDBACK_PULL_SECONDS = int(os.environ.get("QC_FEEDBACK_PULL_SECONDS", "600"))
EXAM_DAILY_CATCH_UP_DAYS = int(os.environ.get("EXAM_DAILY_CATCH_UP_DAYS", "31"))  # days a late tick reports

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "hospital_interop.security.passwords.MinimumLengthValidator",
        "OPTIONS": {"min_length": int(os.environ.get("PASSWORD_MIN_LENGTH", "10"))},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "hospital_interop.security.passwords.LettersAndDigitsValidator"},
]
# Login lockout (django-axes, hospital_interop/security/lockout.py): 5 failed passwords for one
# username lock it for 15 minutes, from whatever workstation (by username only: clinicians share
# workstations and NAT addresses, and an attacker changing address must not get new tries).
AUTHENTICATION_BACKENDS = [
    "hospital_interop.security.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 asks for "ip_address" in the lockout parameters, against attackers who rotate their
# User-Agent or cookies: a username lock counts neither. An address lock at 5 would lock every user of
# a shared ward workstation (or of the proxy's address) after any 5 typos; the account is what is guarded.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True  # a successful login clears the count
AXES_LOCKOUT_CALLABLE = "hospital_interop.security.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "hospital_interop.audit.context.client_ip"  # the proxy's client header, as audit
AXES_SENSITIVE_PARAMETERS = ["password"]
# Sessions: logged out after SESSION_IDLE_TIMEOUT_MINUTES without a request (security/idle.py), at
# the latest after a working day, and when the browser closes.
SESSION_IDLE_TIMEOUT_MINUTES = int(os.environ.get("SESSION_IDLE_TIMEOUT_MINUTES", "30"))
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_MAX_HOURS", "12")) * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Administrators' second factor: with ADMIN_REQUIRE_CA_LOGIN the admin site serves a superuser only
# after a CA login (UKey or QR, esign) in the same session (esign/admin_gate.py).
# Off in the demo (no CA there); recommended on in production (docs/security.md).
ADMIN_REQUIRE_CA_LOGIN = env_bool("ADMIN_REQUIRE_CA_LOGIN", False)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Production: HTTPS only (the TLS proxy, deploy/nginx/interop.conf) ---------------------------
if PRODUCTION:
    # nginx terminates TLS and always overwrites X-Forwarded-Proto with "https"; gunicorn is only
    # reachable on the compose network, so the header cannot come from a client.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # plain HTTP inside the compose network: the healthcheck, and Prometheus scraping web:8000/metrics
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 86400)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文")]
# Project translations first: they replace the admin libraries' missing or garbled Chinese strings
# (locale/zh_Hans/LC_MESSAGES/django.po, compiled .mo committed beside it).
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(
    os.environ.get("STATIC_ROOT") or VAR_DIR / "staticfiles"
)  # the image collects into /app/staticfiles
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

SITE_NAME = "检查检验互认与电子病历共享平台"
HOSPITAL_NAME = os.environ.get("HOSPITAL_NAME", "中国医学科学院肿瘤医院")


def _env_or_file(name: str, default: str = "") -> str:
    """A setting from ``NAME``, or from the file ``NAME_FILE`` names (secrets), else the default."""
    if name in os.environ:
        return os.environ[name]
    file = os.environ.get(name + "_FILE")
    return Path(file).read_text().strip() if file else default


# Uploads. Per form with a file field (hospital_interop/security/uploads.py), bytes:
UPLOAD_LIMITS = {
    "dictionary_import": int(float(os.environ.get("DICTIONARY_IMPORT_MAX_MB", "5")) * 1024 * 1024),
}
# Form posts without files (Django's request.POST): 2.5 MB and 1000 fields, Django's defaults made
# explicit. The machine APIs read their JSON bodies from the stream within INTEGRATION_BODY_LIMITS
# (30 MB for a report with its PDF), not through these. Uploaded files above 2.5 MB spool to /tmp.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# /metrics (hospital_interop/security/metrics_access.py): with a token, only "Authorization: Bearer
# <token>"; without one, only direct requests from loopback or private addresses (the compose network)
METRICS_TOKEN = _env_or_file("METRICS_TOKEN")

# --- Content-Security-Policy on every response (django-csp) --------------------------------------
# Scripts only from this site or inline with the response's nonce (nonce="{{ request.csp_nonce }}"),
# no inline event handlers (static/js/app.js binds data-confirm etc.). Styles allow inline: templates
# and the admin use style= attributes, and a style cannot run code. Pages may not be framed
# ('none', as X-Frame-Options DENY), except the recognition prompt pages, whose frame-ancestors are
# 'self' plus RECOGNITION_FRAME_ANCESTORS (the HIS origins; mutual_recognition/views.py). The
# e-signature pages add the UKey agent's origin to connect-src (esign/views.py, parameter UKEY_AGENT_URL).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Mutual recognition (docs/recognition.md; read through mutual_recognition/conf.py) --------
RECOGNITION_LINK_SECRET = _env_or_file("RECOGNITION_LINK_SECRET")  # "": derived from SECRET_KEY
RECOGNITION_LINK_LIFETIME_SECONDS = int(os.environ.get("RECOGNITION_LINK_LIFETIME_SECONDS", "600"))
RECOGNITION_LINK_MAX_LIFETIME_SECONDS = int(os.environ.get("RECOGNITION_LINK_MAX_LIFETIME_SECONDS", "86400"))
RECOGNITION_PAGE_LIFETIME_SECONDS = int(os.environ.get("RECOGNITION_PAGE_LIFETIME_SECONDS", "7200"))
RECOGNITION_FRAME_ANCESTORS = os.environ.get("RECOGNITION_FRAME_ANCESTORS", "")
RECOGNITION_CACHE_MAX_SECONDS = int(os.environ.get("RECOGNITION_CACHE_MAX_SECONDS", "86400"))
# a clinician's lookup of a patient needs a stated reason unless the patient has a visit with them
# within this many hours (the 当前就诊); a stated reason holds for the session this many minutes
RECOGNITION_CURRENT_VISIT_HOURS = int(os.environ.get("RECOGNITION_CURRENT_VISIT_HOURS", "24"))
LOOKUP_REASON_MINUTES = int(os.environ.get("LOOKUP_REASON_MINUTES", "30"))

# --- EMR: the HIS view puller (docs/emr-intake.md §7) ---------------------------------------
EMR_PULL = {
    "DATABASE_URL": os.environ.get("HIS_DATABASE_URL", ""),
    "INTERVAL_SECONDS": int(os.environ.get("EMR_PULL_INTERVAL_SECONDS", "300")),
    "SOURCES_FILE": os.environ.get("EMR_PULL_SOURCES_FILE", ""),
    "BATCH_SIZE": int(os.environ.get("EMR_PULL_BATCH_SIZE", "500")),
}

# --- Lab report PDF: a CJK TrueType/OpenType font file, if not one of the usual system paths ---
LAB_PDF_FONT = os.environ.get("LAB_PDF_FONT", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "检查检验互认与电子病历共享 API",
    "VERSION": "1.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SERVE_AUTHENTICATION": [
        "rest_framework.authentication.SessionAuthentication",
        "hospital_interop.integrations.authentication.IntegrationTokenAuthentication",
    ],
    # The deploy check would build one schema of every URL of ROOT_URLCONF, a document no view serves:
    # each machine API serves its own (its urlconf, SCHEMA_PATH_PREFIX), and the cross-API name
    # collisions it reports (the EMR code sets, the demo HIS posting the recognition API) exist only
    # there. `check --deploy` under HOSPITAL_INTEROP_PRODUCTION stays free of warnings (tests/security).
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {
        "deepLinking": True,
        "persistAuthorization": True,
        "filter": True,
        "defaultModelExpandDepth": 2,
        "defaultModelsExpandDepth": -1,
    },
}

# --- Logging: personal data is masked by a filter on every handler -------------------------
# LOGGING_CONFIG applies LOGGING, then puts the filter (hospital_interop/logmask.py: messages,
# arguments and tracebacks) on every handler of the process, Django's own default ones included.
LOGGING_CONFIG = "hospital_interop.logmask.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_pii": {"()": "hospital_interop.logmask.MaskPersonalData"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask_pii"], "formatter": "plain"}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
