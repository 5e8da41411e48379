"""DDS settings, read from the environment.

Out of the box (no environment at all) this is the *embedded default*: SQLite under
``var/``, local object storage under ``var/storage``, Celery tasks run eagerly, email
written to files under ``var/mail``. Production sets ``DEBUG=0`` and the variables
documented in README.md; a production start without a secret key, or with wildcard
hosts, is refused (see ``_production_guard``).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from cli.version import __version__ as DDS_VERSION
from jobs.schedule import SCHEDULE_TIME_ZONE, beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent

class _Env(environ.Env):
    """django-environ, with errors that name the variable.

    A value that cannot be read as its type (``DDS_KDF_MEMORY_KIB=lots``) is refused
    with the variable's name (django-environ raised a bare ``ValueError``), without
    echoing the value; a boolean that is not one of the usual words
    (``DEBUG=yes-please``) is refused instead of being read as false.
    """

    FALSE_WORDS = ("false", "off", "no", "n", "0", "")

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default,
                                     parse_default=parse_default)
        except (ValueError, TypeError):
            kind = getattr(cast, "__name__", None) or type(cast).__name__
            raise ImproperlyConfigured(
                f"{var}: its value cannot be read as {kind}; see README.md, Configuration."
            ) from None

    def bool(self, var, default=environ.Env.NOTSET):
        raw = self.ENVIRON.get(var)
        if raw is not None and raw.strip().lower() not in (*self.BOOLEAN_TRUE_STRINGS,
                                                           *self.FALSE_WORDS):
            raise ImproperlyConfigured(
                f"{var}={raw.strip()[:20]!r} is not a boolean: use 1 or 0 (true/false, "
                "yes/no, on/off).")
        return super().bool(var, default=default)


env = _Env()

VAR_DIR = Path(env.str("DDS_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
#: The embedded default (SQLite, mail files, in-process tasks) allowed with DEBUG off: a
#: single-host demo, never a deployment. Read once, here (the production guard below, and
#: demo_data, which refuses to run in a deployment).
DDS_ALLOW_EMBEDDED = env.bool("DDS_ALLOW_EMBEDDED", default=False)


def _dev_secret_key() -> str:
    """A random key kept under var/ so that a laptop run survives restarts.

    Only used with DEBUG on; production must set SECRET_KEY explicitly.
    """
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(64))
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
# Proxies (the ingress) whose X-Forwarded-For / -Proto are believed (core.client_ip).
DDS_TRUSTED_PROXIES = env.list("DDS_TRUSTED_PROXIES", default=[])
for _proxy in DDS_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"DDS_TRUSTED_PROXIES: {_proxy!r} is not an IP address or network (CIDR)."
        ) from None
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])


def _production_problems() -> list[str]:
    """What makes these settings unsafe for production (all of it, not the first)."""
    problems = []
    if not SECRET_KEY:
        problems.append(
            "SECRET_KEY is not set. With DEBUG off, set the SECRET_KEY environment variable "
            "to a long random value (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(64))').")
    elif len(SECRET_KEY) < 50:
        problems.append("SECRET_KEY is too short: use at least 50 random characters.")
    if not ALLOWED_HOSTS:
        problems.append(
            "ALLOWED_HOSTS is empty. With DEBUG off, set ALLOWED_HOSTS to the host names the "
            "service is reached at (comma-separated).")
    if any(host == "*" or host.startswith("*") for host in ALLOWED_HOSTS):
        problems.append(
            "ALLOWED_HOSTS contains a wildcard. With DEBUG off, list the exact host names.")
    # No silent fallbacks in production: SQLite in the pod, login codes written to files
    # and tasks run in the web process are the embedded default's, never a deployment's.
    if not DDS_ALLOW_EMBEDDED:
        missing = [name for name in ("DATABASE_URL", "EMAIL_URL", "CELERY_BROKER_URL",
                                     "REDIS_URL")
                   if not env.str(name, default="")]
        if missing:
            problems.append(
                f"{', '.join(missing)} not set. With DEBUG off the database, the mail server, "
                "the Celery broker and the shared cache must be configured explicitly (e.g. "
                "DATABASE_URL=postgres://…, EMAIL_URL=smtp+tls://…, "
                "CELERY_BROKER_URL=redis://…, REDIS_URL=redis://…); set "
                "DDS_ALLOW_EMBEDDED=1 to run a single-host demo on SQLite, mail files, "
                "in-process tasks and a per-process cache instead.")
    if env.bool("DDS_BEHIND_PROXY", default=True) and not DDS_TRUSTED_PROXIES:
        problems.append(
            "DDS_TRUSTED_PROXIES is empty. Behind an ingress (DDS_BEHIND_PROXY=1, the "
            "default with DEBUG off) list the ingress's addresses or networks "
            "(comma-separated CIDRs, e.g. 10.42.0.0/16), so that client addresses come "
            "from X-Forwarded-For; or set DDS_BEHIND_PROXY=0 when clients connect directly.")
    return problems


def _production_guard() -> None:
    """Refuse to start production with settings that would make it unsafe."""
    problems = _production_problems()
    if len(problems) == 1:
        raise ImproperlyConfigured(problems[0])
    if problems:
        raise ImproperlyConfigured(
            f"{len(problems)} problems with these settings (DEBUG is off):\n"
            + "\n".join(f"- {p}" for p in problems))

if DEBUG:
    SECRET_KEY = SECRET_KEY or _dev_secret_key()
else:
    _production_guard()

# Extra server secret for sealing data at rest (storage credentials, session KEKs).
# Separate from SECRET_KEY so that it can be rotated on its own; derived from SECRET_KEY
# when not given.
DDS_SEALING_KEY = env.str("DDS_SEALING_KEY", default="")

INSTALLED_APPS = [
    "ddsite.apps.DDSAdminConfig",  # django.contrib.admin with the DDS admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    # The second-factor devices are accounts' own (sealed keys, hashed codes); django-otp
    # supplies the device base, the session plumbing and the TOTP arithmetic.
    "django_otp",
    "drf_spectacular",
    # Swagger UI's and ReDoc's files, served by us (whitenoise): no CDN (/api/docs/).
    "drf_spectacular_sidecar",
    "mail",
    "audit",
    "accounts",
    "keys",
    "projects",
    "transfers",
    "reports",
    "portal",
    "ddsite.apps.DDSiteConfig",
]

MIDDLEWARE = [
    # Malformed input (control characters, out-of-range integers, deep JSON) is a 400
    # before anything else reads it (core.input_guard).
    "core.input_guard.InputGuardMiddleware",
    # Kubelet probes (Host: <pod IP>) are answered before host validation (ddsite.health).
    "ddsite.health.ProbeMiddleware",
    # Then: forwarding headers from anyone but a trusted proxy are dropped.
    "core.client_ip.TrustedProxyMiddleware",
    # Request id, log context, request metrics; /metrics on DDS_METRICS_PORT only.
    "ddsite.observability.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "ddsite.middleware.SecurityHeadersMiddleware",
    # Too-old dds clients get 426 with an upgrade message (DDS_MIN_CLIENT_VERSION).
    "ddsite.version.ClientVersionMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.KeySessionMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "ddsite.middleware.MaintenanceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A logged-in user who has not accepted the user agreement in force is sent to the
    # acceptance page first (the API refuses new tokens instead; docs/portal.md).
    "portal.middleware.AgreementMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ddsite.middleware.PortalErrorMiddleware",
]

ROOT_URLCONF = "ddsite.urls"
WSGI_APPLICATION = "ddsite.wsgi.application"
ASGI_APPLICATION = "ddsite.asgi.application"

# A facility's own versions of the public pages (and of any other template): a directory
# searched before the built-in templates (docs/portal.md, "Customising the public pages").
DDS_TEMPLATES_DIR = env.str("DDS_TEMPLATES_DIR", default="")
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [*([Path(DDS_TEMPLATES_DIR)] if DDS_TEMPLATES_DIR else []),
                 BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.motd",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'dds.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL + a busy timeout + IMMEDIATE transactions: a deferred transaction that reads and
    # then writes fails at the lock upgrade ("database is locked") without waiting for the
    # busy timeout, which concurrent uploads hit at once; IMMEDIATE takes the write lock
    # at BEGIN, so writers queue on the timeout instead.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;",
         "transaction_mode": "IMMEDIATE"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth ---------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.PasswordPolicyValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:account"

# Accounts: links in emails, invites, lockout, second factor (docs/accounts.md).
DDS_PUBLIC_URL = env.str("DDS_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
DDS_INVITE_DAYS = env.int("DDS_INVITE_DAYS", default=7)
DDS_LOCKOUT_FAILURES = env.int("DDS_LOCKOUT_FAILURES", default=5)
DDS_LOCKOUT_IP_FAILURES = env.int("DDS_LOCKOUT_IP_FAILURES", default=20)
DDS_LOCKOUT_MINUTES = env.int("DDS_LOCKOUT_MINUTES", default=15)
DDS_EMAIL_CODE_MINUTES = 15
# The user agreement's version (its text: templates/portal/public/_terms_text.html).
# Changing it asks every user to accept the new one (accounts.services.agreement).
DDS_USER_AGREEMENT_VERSION = env.str("DDS_USER_AGREEMENT_VERSION", default="1")
DDS_PORTAL_SESSION_MAX_AGE = env.int("DDS_PORTAL_SESSION_MAX_AGE", default=12 * 60 * 60)
PASSWORD_RESET_TIMEOUT = 60 * 60
# Our own per-account/per-IP lockout (not per-device delays) guards passwords and codes.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="DDS")

# Argon2id parameters of the key-encryption key (KEK) that wraps each user's private key.
# Stored per user at key creation, so raising them later only affects new wraps.
DDS_KDF_TIME_COST = env.int("DDS_KDF_TIME_COST", default=2)
DDS_KDF_MEMORY_KIB = env.int("DDS_KDF_MEMORY_KIB", default=512 * 1024)
DDS_KDF_PARALLELISM = env.int("DDS_KDF_PARALLELISM", default=8)
DDS_USER_RSA_BITS = env.int("DDS_USER_RSA_BITS", default=4096)

# --- i18n ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Stockholm")
USE_I18N = True
USE_TZ = True

# --- static ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app directories when the collected tree is not built.
WHITENOISE_AUTOREFRESH = DEBUG

# --- object storage -------------------------------------------------------------------
# "local": objects under DDS_LOCAL_STORAGE_ROOT, served by Django through signed URLs.
# "s3": any S3-compatible endpoint; each unit's StorageLocation may override the endpoint.
DDS_STORAGE_BACKEND = env.str("DDS_STORAGE_BACKEND", default="local")
if DDS_STORAGE_BACKEND not in ("local", "s3"):
    raise ImproperlyConfigured("DDS_STORAGE_BACKEND must be 'local' or 's3'.")
DDS_LOCAL_STORAGE_ROOT = Path(
    env.str("DDS_LOCAL_STORAGE_ROOT", default=str(VAR_DIR / "storage"))
)
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
# "Data stays in Sweden": a StorageLocation must name one of these regions/endpoints.
DDS_ALLOWED_STORAGE_REGIONS = env.list("DDS_ALLOWED_STORAGE_REGIONS", default=["local", "se"])
DDS_ALLOWED_STORAGE_ENDPOINTS = env.list("DDS_ALLOWED_STORAGE_ENDPOINTS", default=[])
# Uploads: parts are whole 65 564-byte Crypt4GH segments; 80 segments is the smallest
# part S3 accepts (5 MiB). Presigned URLs are short-lived; downloads at most one hour.
DDS_UPLOAD_MIN_PART_SEGMENTS = env.int("DDS_UPLOAD_MIN_PART_SEGMENTS", default=128)
DDS_UPLOAD_PART_URL_TTL = env.int("DDS_UPLOAD_PART_URL_TTL", default=15 * 60)
# Uploads whose client asks for it get per-part CRC32 checksums verified by storage
# (docs/transfers.md); off for an S3-compatible store without checksum support.
DDS_STORAGE_PART_CHECKSUMS = env.bool("DDS_STORAGE_PART_CHECKSUMS", default=False)
DDS_DOWNLOAD_URL_TTL = min(env.int("DDS_DOWNLOAD_URL_TTL", default=60 * 60), 60 * 60)
DDS_UPLOAD_STALE_HOURS = env.int("DDS_UPLOAD_STALE_HOURS", default=24)
# Folders with more files than this are removed by a Celery task, not in the request.
DDS_FOLDER_REMOVE_SYNC_LIMIT = env.int("DDS_FOLDER_REMOVE_SYNC_LIMIT", default=1000)
# Base URL of the local backend's signed object URLs; empty: the host of the API request.
DDS_LOCAL_STORAGE_URL = env.str("DDS_LOCAL_STORAGE_URL", default="")

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Without a broker, tasks run in-process: the embedded default needs no worker.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Beat reads jobs.schedule's times in the same zone as the CronJobs' timeZone.
CELERY_TIMEZONE = SCHEDULE_TIME_ZONE
# The worker logs through LOGGING too (with its redaction filter).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic jobs: Kubernetes CronJobs in the cluster; this schedule only serves
# `entrypoint.sh beat` outside Kubernetes. Both come from jobs.schedule.JOBS.
CELERY_BEAT_SCHEDULE = beat_schedule()

# --- cache ----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- email ----------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="dds@localhost")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    # The embedded default writes each email to a file so a demo user can read codes.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # A live, fully (2FA) authenticated session; pending tokens reach only /auth/2fa.
        "accounts.authentication.SessionJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
# Request rates per client address (or per user / per target where noted); 429 with
# Retry-After beyond them. Override any with DDS_THROTTLE_RATES="login=60/min,...".
DDS_THROTTLE_RATES = {
    "login": "30/min",
    "2fa": "30/min",
    "code_resend": "10/hour",
    "code_resend_user": "5/hour",  # per pending login's user
    "password_reset": "10/hour",
    "password_reset_address": "10/hour",  # per target address; over it nothing is sent
    "reset_link": "30/hour",
    "register": "10/hour",
    "invite": "100/hour",  # per inviting user
}
DDS_THROTTLE_RATES.update(env.dict("DDS_THROTTLE_RATES", default={}))
for _scope, _rate in DDS_THROTTLE_RATES.items():
    if not re.fullmatch(r"\d+/(s|sec|m|min|h|hour|d|day)", str(_rate)):
        raise ImproperlyConfigured(
            f"DDS_THROTTLE_RATES: {_scope}={_rate!r} is not a rate like 10/min or 5/hour."
        )
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("DDS_ACCESS_TOKEN_MINUTES", default=60)),
    # A login's refresh-token family lives at most this long (rotated on every use).
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("DDS_REFRESH_MAX_DAYS", default=7)),
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# The oldest dds client served; older ones get HTTP 426 with an upgrade message.
DDS_MIN_CLIENT_VERSION = env.str("DDS_MIN_CLIENT_VERSION", default="0.1.0")
SPECTACULAR_SETTINGS = {
    "TITLE": "DDS API",
    "DESCRIPTION": "Data Delivery System: encrypted delivery of research data.",
    "VERSION": DDS_VERSION,  # the package's (pyproject)
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI (/api/docs/) from drf-spectacular-sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No online validator badge: it would load an image from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60)
SESSION_SAVE_EVERY_REQUEST = True  # inactivity expiry
X_FRAME_OPTIONS = "DENY"
# No script reads the CSRF cookie (forms carry the token), so keep it from scripts too.
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env.bool("DDS_BEHIND_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One JSON object per line, every process (core.logging_json, docs/operations.md).
    "formatters": {"json": {"()": "core.logging_json.JsonFormatter"}},
    # No query string or token path reaches a log (core.log_redaction); "context" adds
    # the request/task's id, user, project and client address.
    "filters": {"redact": {"()": "core.log_redaction.RedactSecretsFilter"},
                "context": {"()": "core.logging_json.ContextFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                             "filters": ["context", "redact"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's own handlers (runserver's request lines, DEBUG's console) and Celery's would
    # bypass the filter and the format: route their loggers through ours.
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "celery": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- load and concurrency (issue 13; docs/operations-load.md, docs/audit.md) ----------
# Key of the audit chain's HMACs. Not in the database: whoever can write the database
# but lacks it cannot re-chain an edit. Derived from SECRET_KEY with HKDF when unset (set
# it on its own in production, so rotating SECRET_KEY does not re-key the audit log).
DDS_AUDIT_KEY = env.str("DDS_AUDIT_KEY", default="")
# Memory-hard hashing (Argon2id KEK derivations and password hashes) as a bounded
# resource per process: at most DDS_KDF_MEMORY_BUDGET_MIB of Argon2 memory at once; at
# most DDS_KDF_QUEUE requests waiting, each at most DDS_KDF_WAIT_SECONDS; beyond that
# the request gets 503 with Retry-After instead of the pod being OOM-killed.
DDS_KDF_MEMORY_BUDGET_MIB = env.int("DDS_KDF_MEMORY_BUDGET_MIB", default=512)
DDS_KDF_QUEUE = env.int("DDS_KDF_QUEUE", default=16)
DDS_KDF_WAIT_SECONDS = env.float("DDS_KDF_WAIT_SECONDS", default=30.0)
# Request bodies: JSON nested deeper than this is refused with 400.
DDS_JSON_MAX_DEPTH = env.int("DDS_JSON_MAX_DEPTH", default=32)
# The schema documents the one error body and the statuses every operation can give.
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "ddsite.schema_errors.document_errors",
]

# --- observability (issue 15; docs/operations.md) -----------------------------------------
# Second gunicorn listener (and the Celery worker's) serving only GET /metrics; 0 = none.
# The ingress's Service does not expose it (k8s/monitoring adds its own Service).
DDS_METRICS_PORT = env.int("DDS_METRICS_PORT", default=0)
# Who is emailed when a scheduled job fails or a unit crosses its quota warning level.
DDS_OPERATOR_EMAILS = env.list("DDS_OPERATOR_EMAILS", default=[])
# Currency of the per-unit storage price (Unit.price_per_gb_month) on usage reports.
DDS_CURRENCY = env.str("DDS_CURRENCY", default="SEK")
# storage_reconcile: an object storage holds but the catalogue does not is an orphan only
# once it is this old (uploads in progress and a version being written are younger).
DDS_RECONCILE_GRACE_HOURS = env.int("DDS_RECONCILE_GRACE_HOURS", default=24)
# Task outcomes/durations, task ids in logs, the worker's metrics port (ddsite.celery_observe).
CELERY_IMPORTS = ("ddsite.celery_observe",)
