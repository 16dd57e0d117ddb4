"""Switchyard settings: one module, driven by environment variables (see the README table).

Unset variables give the embedded default: SQLite in ``var/`` plus the django-q2 ORM broker,
so a laptop needs no server. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str
from config.logging import log_format, logging_config, structlog_configure
from config.tracing import tracing_configure

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SWITCHYARD_VAR_DIR", str(BASE_DIR / "var")))

DEVELOPMENT_SECRET_KEY = "django-insecure-switchyard-development-only"

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY if DEBUG else "")
if not DEBUG and (not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off "
        "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Base URL that providers use to reach this deployment; webhook receive URLs are built from it.
SWITCHYARD_PUBLIC_URL = env_str("SWITCHYARD_PUBLIC_URL", "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "customers",
    "credentials",
    "integrations",
    "webhooks",
]
# The fake provider server and the demo data (``devtools``): on wherever DEBUG is, unless turned
# off; a production-like stack that needs the fake provider (tests, benches) turns it on.
SWITCHYARD_DEV_TOOLS = env_bool("SWITCHYARD_DEV_TOOLS", DEBUG)
if SWITCHYARD_DEV_TOOLS:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    "config.request_id.RequestIdMiddleware",
    "config.middleware.TracingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.BodySizeLimitMiddleware",
    "config.middleware.NulRefusedMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
# Frame variables and POST fields marked sensitive stay hidden on the DEBUG page as well.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.AlwaysSafeExceptionReporterFilter"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is tuned for several writing processes (web, worker, dispatcher): WAL lets readers run
# beside the writer, IMMEDIATE takes the write lock at BEGIN so two writers queue on the busy
# timeout instead of failing with "database is locked" when a read lock is upgraded.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20),
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}

# PostgreSQL gets the values apart from the statement (psycopg 3's server-side binding). Django's
# default quotes every value into the SQL text in Python, which cost a webhook's INSERT of about
# twenty values more CPU than sending it (bench/ingest.py measures it).
# A statement run five times on a connection is then prepared (psycopg's threshold): the server
# parses and plans it once, not on every webhook's INSERT. Django leaves preparing off for
# connection poolers; DATABASE_PREPARED_STATEMENTS=false behind one that cannot hold them.
POSTGRESQL_OPTIONS = {
    "server_side_binding": True,
    "prepare_threshold": 5 if env_bool("DATABASE_PREPARED_STATEMENTS", True) else None,
}

DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    default_database = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    default_database = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "switchyard.db"}
if default_database["ENGINE"] == "django.db.backends.sqlite3":
    default_database["OPTIONS"] = {**SQLITE_OPTIONS, **default_database.get("OPTIONS", {})}
    # Kept open like PostgreSQL's: opening a SQLite file (and setting its pragmas) on every
    # request cost more than the request's own queries.
    default_database["CONN_MAX_AGE"] = 60
elif default_database["ENGINE"] == "django.db.backends.postgresql":
    default_database["OPTIONS"] = {**POSTGRESQL_OPTIONS, **default_database.get("OPTIONS", {})}
    # Django's backend, with a health check that skips SELECT 1 on a busy, quiet connection.
    default_database["ENGINE"] = "config.postgresql"
DATABASES = {"default": default_database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache and django-q2 -------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Retries, backoff and dead letters live in Switchyard's own tables; django-q2 only carries ids.
# So a failed task is acknowledged (no fixed-delay redelivery), and `retry` > `timeout` keeps the
# broker from presenting a task again while it still runs.
Q_CLUSTER = {
    "name": "switchyard",
    "workers": env_int("SWITCHYARD_WORKERS", 2),
    "timeout": env_int("SWITCHYARD_TASK_TIMEOUT_SECONDS", 120),
    "retry": env_int("SWITCHYARD_TASK_TIMEOUT_SECONDS", 120) + 60,
    "max_attempts": 1,
    "ack_failures": True,
    # Successful tasks are not saved: every delivery and event keeps its own record, and the
    # monitor's save reads and locks all saved successes once per task. Failures still are.
    "save_limit": -1,
    "queue_limit": 50,
    # Replacing a worker leaves its share of the queue unserved for up to a guard cycle (half a
    # second), so it happens rarely: once its memory passes the limit, or after many tasks.
    "recycle": env_int("SWITCHYARD_WORKER_RECYCLE_TASKS", 100_000),
    "max_rss": env_int("SWITCHYARD_WORKER_MAX_RSS_MB", 512) * 1024,
    # How long the ORM broker's pusher sleeps when it finds no task: the wait of a task queued
    # into an idle queue, at the cost of one indexed read per poll while idle (while tasks keep
    # coming it polls more often: config/orm_broker.py).
    "poll": float(env_str("SWITCHYARD_BROKER_POLL_SECONDS", "0.05")),
    "catch_up": False,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "config.orm_broker.BriskORM"

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Timestamps with seconds and time zone everywhere the admin shows one (config/formats/).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["customers.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["config.api.quotas.ApiQuotaThrottle"],
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.ProblemAutoSchema",
    "UNAUTHENTICATED_USER": None,
    # How many proxies in front of Switchyard append to X-Forwarded-For: throttles take the
    # client address that many hops back, never a value the client wrote itself.
    "NUM_PROXIES": env_int("SWITCHYARD_TRUSTED_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchyard API",
    "DESCRIPTION": "Reach external providers through one API: deliveries, credentials, webhooks.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Read-only fields (ids, timestamps) only in responses: a generated client does not ask
    # for them when creating.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.schema.problem_responses",
        "config.api.schema.idempotency_key_headers",
        "config.api.schema.enum_filters",
        "config.api.schema.request_bodies_required",
    ],
    # Detail routes take ids through config.api.routers' converter: 64-bit integers.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "format": "int64", "minimum": 0}},
    # Several models have a "status"; name each enum after its model in the schema.
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatusEnum": "integrations.deliveries.models.Delivery.Status",
        "InboundEventStatusEnum": "webhooks.models.InboundEvent.Status",
        "CredentialVersionStateEnum": "credentials.models.CredentialVersion.State",
    },
}

# Largest request body accepted anywhere (API and webhooks); larger gets 413.
SWITCHYARD_MAX_BODY_BYTES = env_int("SWITCHYARD_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = SWITCHYARD_MAX_BODY_BYTES

# --- Processes ------------------------------------------------------------------------------
SWITCHYARD_DISPATCH_INTERVAL_SECONDS = float(env_str("SWITCHYARD_DISPATCH_INTERVAL_SECONDS", "0.5"))
SWITCHYARD_HEARTBEAT_SECONDS = float(env_str("SWITCHYARD_HEARTBEAT_SECONDS", "10"))
# /readyz fails when no worker has answered a heartbeat probe for this long.
SWITCHYARD_WORKER_STALE_SECONDS = env_int("SWITCHYARD_WORKER_STALE_SECONDS", 60)

# --- Delivery engine ------------------------------------------------------------------------
# Total time one attempt may take (connect + send + read).
SWITCHYARD_ATTEMPT_DEADLINE_SECONDS = env_int("SWITCHYARD_ATTEMPT_DEADLINE_SECONDS", 30)
# An integration check holds a web worker while it waits: a much shorter total deadline.
SWITCHYARD_CHECK_DEADLINE_SECONDS = env_int("SWITCHYARD_CHECK_DEADLINE_SECONDS", 5)
# A worker's lease on a claimed batch runs this long past its last renewal; the worker renews it
# every third of it while the batch runs (integrations/outbox/lease.py), so a delivery
# whose worker died is sent again within this plus a dispatch interval.
SWITCHYARD_LEASE_SECONDS = float(env_str("SWITCHYARD_LEASE_SECONDS", "10"))
# A queued delivery still unclaimed after this long while the broker holds too few tasks to
# carry it (a flushed or lost message) is queued again; a copy of a message a cluster had
# already taken finds nothing to claim.
SWITCHYARD_ENQUEUE_GRACE_SECONDS = float(env_str("SWITCHYARD_ENQUEUE_GRACE_SECONDS", "5"))
# The upper bound: a queued task not picked up within this time is queued again, whatever the
# broker says.
SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS = env_int("SWITCHYARD_ENQUEUE_TIMEOUT_SECONDS", 120)
# The dispatcher tops the broker up to this many queued tasks, never more (bounded fan-out).
SWITCHYARD_RELAY_MAX_QUEUED = env_int("SWITCHYARD_RELAY_MAX_QUEUED", 1000)
SWITCHYARD_RELAY_BATCH = env_int("SWITCHYARD_RELAY_BATCH", 200)
# Idempotency-Key values are honoured for at least this long, then purged by upkeep.
SWITCHYARD_IDEMPOTENCY_KEY_TTL_HOURS = env_int("SWITCHYARD_IDEMPOTENCY_KEY_TTL_HOURS", 48)
# Failed API authentications a client address may make per minute before it gets 429s.
SWITCHYARD_AUTH_FAILURES_PER_MINUTE = env_int("SWITCHYARD_AUTH_FAILURES_PER_MINUTE", 20)
# API requests per minute an API key may make, and that may name one customer, before 429s
# (config/api/quotas.py); 0 turns a quota off.
SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_KEY = env_int(
    "SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_KEY", 6000
)
SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_CUSTOMER = env_int(
    "SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_CUSTOMER", 3000
)

# --- Limits ---------------------------------------------------------------------------------
# A rate limit of R per S seconds is enforced over S plus this margin: requests reach the
# provider a little after the limiter admits them, and not always in order.
SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS = float(env_str("SWITCHYARD_RATE_LIMIT_MARGIN_SECONDS", "0.2"))
# Work deferred for want of capacity is rescheduled at this share of the rate; the rest is
# left for fresh work, so one customer's backlog on a shared key cannot take every slot.
SWITCHYARD_RATE_LIMIT_BACKLOG_SHARE = float(env_str("SWITCHYARD_RATE_LIMIT_BACKLOG_SHARE", "0.8"))
# The breaker of a provider+region opens after this many distinct deliveries failed in a row
# (5xx, timeouts), and lets one probe through after the cool-off.
SWITCHYARD_BREAKER_FAILURES = env_int("SWITCHYARD_BREAKER_FAILURES", 5)
SWITCHYARD_BREAKER_COOL_OFF_SECONDS = float(env_str("SWITCHYARD_BREAKER_COOL_OFF_SECONDS", "30"))
# Fairness: one customer never has more than this many deliveries queued or in flight, so
# another customer's delivery waits behind at most that many.
SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT = env_int("SWITCHYARD_CUSTOMER_MAX_IN_FLIGHT", 500)
# Due deliveries travel to workers in tasks of up to this many ids; a task stops claiming after
# SWITCHYARD_SEND_BATCH_SECONDS and hands the rest back, well inside the task timeout.
SWITCHYARD_SEND_BATCH = env_int("SWITCHYARD_SEND_BATCH", 50)
SWITCHYARD_SEND_BATCH_SECONDS = float(env_str("SWITCHYARD_SEND_BATCH_SECONDS", "10"))
# Pooled HTTP sessions are rebuilt after this long, so DNS changes reach long-lived workers.
SWITCHYARD_HTTP_SESSION_MAX_AGE_SECONDS = env_int("SWITCHYARD_HTTP_SESSION_MAX_AGE_SECONDS", 300)
# Non-public destinations outbound calls may reach anyway (integrations/egress.py): entries
# `host:port`, `host` or a CIDR range, e.g. "127.0.0.1:9100,selenium-hub:4444,10.20.0.0/16".
SWITCHYARD_EGRESS_ALLOW = env_list("SWITCHYARD_EGRESS_ALLOW", [])

# --- Retention ------------------------------------------------------------------------------
# Days finished rows are kept before the dispatcher purges them in small batches (see
# customers/lifecycle); 0 keeps that kind forever. Succeeded covers cancelled deliveries too,
# dead covers dead inbound events; inbound is processed and ignored events.
SWITCHYARD_RETAIN_SUCCEEDED_DAYS = env_int("SWITCHYARD_RETAIN_SUCCEEDED_DAYS", 30)
SWITCHYARD_RETAIN_DEAD_DAYS = env_int("SWITCHYARD_RETAIN_DEAD_DAYS", 90)
SWITCHYARD_RETAIN_INBOUND_DAYS = env_int("SWITCHYARD_RETAIN_INBOUND_DAYS", 30)
SWITCHYARD_RETAIN_AUDIT_DAYS = env_int("SWITCHYARD_RETAIN_AUDIT_DAYS", 365)

# --- Security (production) ------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SWITCHYARD_BEHIND_TLS_PROXY") else None
)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Operational notifications ----------------------------------------------------------------
# Breakers opening and closing, subscriptions disabled, dead letters rising, credentials used in
# their last hours of grace, old master keys in use (integrations/ops): POSTed to this URL signed
# with Standard Webhooks (secret: `manage.py ops_webhook_secret`), and/or emailed to these.
SWITCHYARD_OPS_WEBHOOK_URL = env_str("SWITCHYARD_OPS_WEBHOOK_URL", "")
SWITCHYARD_OPS_EMAILS = env_list("SWITCHYARD_OPS_EMAILS", [])
# One notification per type and subject (a breaker, a credential version …) per window.
SWITCHYARD_OPS_NOTIFY_WINDOW_SECONDS = env_int("SWITCHYARD_OPS_NOTIFY_WINDOW_SECONDS", 900)
# Thresholds (0 turns a check off): dead letters within the window; hours before a grace period
# ends while the previous version is still used; versions under an old master key.
SWITCHYARD_OPS_DEAD_LETTERS_THRESHOLD = env_int("SWITCHYARD_OPS_DEAD_LETTERS_THRESHOLD", 10)
SWITCHYARD_OPS_DEAD_LETTERS_WINDOW_MINUTES = env_int(
    "SWITCHYARD_OPS_DEAD_LETTERS_WINDOW_MINUTES", 15
)
SWITCHYARD_OPS_GRACE_WARN_HOURS = env_int("SWITCHYARD_OPS_GRACE_WARN_HOURS", 24)
SWITCHYARD_OPS_MASTER_KEY_MIN_VERSIONS = env_int("SWITCHYARD_OPS_MASTER_KEY_MIN_VERSIONS", 1)
# How often the dispatcher checks those conditions.
SWITCHYARD_OPS_CHECK_SECONDS = env_int("SWITCHYARD_OPS_CHECK_SECONDS", 60)

# --- Metrics --------------------------------------------------------------------------------
# Workers and the dispatcher serve the metrics they record (config/metrics_recorded.py) on this
# port (0: not served); web serves /metrics. Give each process on one host a port of its own.
SWITCHYARD_METRICS_PORT = env_int("SWITCHYARD_METRICS_PORT", 0)
SWITCHYARD_METRICS_BIND = env_str("SWITCHYARD_METRICS_BIND", "127.0.0.1")
# Where a worker's task processes write their metrics (prometheus-client multiprocess mode):
# each worker in a directory of its own inside it (worker-<pid>), removed at a clean stop.
SWITCHYARD_METRICS_DIR = Path(env_str("SWITCHYARD_METRICS_DIR", str(VAR_DIR / "metrics")))

# --- Logs -----------------------------------------------------------------------------------
# One JSON object per line (json, the default with DEBUG off) or readable lines (console), from
# every process, Django's, gunicorn's and django-q2's lines included (config/logging.py).
SWITCHYARD_LOG_FORMAT = log_format()
LOGGING = logging_config(fmt=SWITCHYARD_LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))
structlog_configure()

# --- Tracing --------------------------------------------------------------------------------
# OpenTelemetry, off unless the standard OTEL_* variables turn it on (README, config/tracing.py).
tracing_configure()

# --- Credentials ----------------------------------------------------------------------------
# Master keys of the credentials vault, independent of SECRET_KEY: comma-separated url-safe
# base64 keys of 32 bytes; the first encrypts, all decrypt (rotate by prepending a new key, then
# run `manage.py credentials_reencrypt`, then drop the old one). Development without keys uses
# one generated into var/; production refuses to start without them.
from credentials.crypto import development_key  # noqa: E402

SWITCHYARD_ENCRYPTION_KEYS = env_list("SWITCHYARD_ENCRYPTION_KEYS", [])
SWITCHYARD_USES_DEVELOPMENT_KEY = not SWITCHYARD_ENCRYPTION_KEYS
if SWITCHYARD_USES_DEVELOPMENT_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SWITCHYARD_ENCRYPTION_KEYS must be set when DEBUG is off (generate a key with: "
            "python -c 'import base64, secrets; "
            "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')."
        )
    SWITCHYARD_ENCRYPTION_KEYS = [development_key(VAR_DIR)]
