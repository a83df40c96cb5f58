"""Settings: every knob comes from the environment, parsed once here (every variable: docs/configuration.md).

Embedded default (no variables set): SQLite under ``var/``, in-process limits, cache and usage
flusher, the built-in ``mock`` provider. Production: ``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from gateway_site.caches import cache_settings, channel_layers
from gateway_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_secret,
    env_str,
    env_timezone,
    secrets_keys,
    tracing_enabled,
    with_password,
    with_password_file,
)
from gateway_site.observability.logconfig import logging_config
from quotas.stores.redis_target import InvalidRedisUrl, parse_redis_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("GATEWAY_DATA_DIR", str(BASE_DIR / "var")))


def _secret_key() -> str:
    configured = env_secret("SECRET_KEY", "")
    if configured:
        return configured
    # Embedded default: one random key per installation, kept beside the SQLite file so that
    # stored provider secrets stay readable across restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("GATEWAY_DEBUG", False)
ALLOWED_HOSTS = env_list("GATEWAY_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("GATEWAY_CSRF_TRUSTED_ORIGINS", [])

# HTTPS (docs/security.md). Behind a proxy that terminates TLS, the header it sets says a request
# came over HTTPS: GATEWAY_SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto (the value must be "https";
# set it only when the proxy always sets or overwrites that header).
_proxy_ssl_header = env_str("GATEWAY_SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("GATEWAY_SECURE_COOKIES", False)
SECURE_SSL_REDIRECT = env_bool("GATEWAY_SSL_REDIRECT", False)
# Probes and scrapers speak plain HTTP to the process itself: never redirected.
SECURE_REDIRECT_EXEMPT = [r"^live$", r"^ready$", r"^health", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("GATEWAY_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GATEWAY_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("GATEWAY_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "gateway_site",
    "gateway_site.console",
    "providers",
    "quotas",
    "accounting",
    "stored_responses",
]

# The admin's stack. /v1/* and the probes never pass through it (see gateway_site/asgi.py).
MIDDLEWARE = [
    # GET and HEAD read the usage tables from DATABASE_REPLICA_URL when set.
    "gateway_site.database_routing.replica_reads",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gateway_site.urls"
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
ASGI_APPLICATION = "gateway_site.asgi.application"

_database_url = with_password(env_secret("DATABASE_URL", ""), "DATABASE_PASSWORD_FILE")
if _database_url:
    try:
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "gateway.sqlite3"),
            # WAL lets the usage flusher write while request threads read.
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20},
            # Background threads (config watcher, usage writer) keep their connection instead
            # of reconnecting on every cycle.
            "CONN_MAX_AGE": 600,
        }
    }
# Behind PgBouncer in transaction mode (docs/operations.md, "PostgreSQL"): no server-side
# prepared statements (psycopg prepares a query run five times; the next transaction may run on
# another server connection, where it does not exist) and no server-side cursors.
GATEWAY_DATABASE_TRANSACTION_POOLING = env_bool("GATEWAY_DATABASE_TRANSACTION_POOLING", False)
_database_replica_url = with_password(env_secret("DATABASE_REPLICA_URL", ""), "DATABASE_PASSWORD_FILE")
if _database_replica_url:
    if not _database_url:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs DATABASE_URL (the primary)")
    try:
        DATABASES["replica"] = dj_database_url.parse(_database_replica_url, conn_max_age=60)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URL is not a valid database URL: {exc}") from None
    # Tests run against the primary's test database through this alias too.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["gateway_site.database_routing.ReplicaRouter"]
_database_password_file = env_str("DATABASE_PASSWORD_FILE", "")
for _database in DATABASES.values():
    # A database host that drops packets fails a connection in seconds, not minutes (the usage
    # writer then spools; `?connect_timeout=N` in the URL overrides).
    if _database["ENGINE"] == "django.db.backends.postgresql":
        if _database_password_file:
            # read again for each new connection (gateway_site/postgresql): rotation, no restart
            _database["ENGINE"] = "gateway_site.postgresql"
            _database["PASSWORD_FILE"] = _database_password_file  # type: ignore[typeddict-unknown-key]
        _database.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
        if GATEWAY_DATABASE_TRANSACTION_POOLING:
            _database["OPTIONS"]["prepare_threshold"] = None
            _database["DISABLE_SERVER_SIDE_CURSORS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

# Request bodies: the API enforces its own limit (413); Django must not refuse first with a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = None

# Logs (docs/operations.md, "Logs").
GATEWAY_LOG_FORMAT = env_choice("GATEWAY_LOG_FORMAT", "text", ("text", "json"))
GATEWAY_ACCESS_LOG = env_bool("GATEWAY_ACCESS_LOG", True)
GATEWAY_REDACTION_KEY = env_str("GATEWAY_REDACTION_KEY", "")
# Tracing (docs/operations.md, "Tracing"): on when an OTLP endpoint is set, unless turned off.
GATEWAY_TRACING = tracing_enabled()
LOGGING = logging_config(
    fmt=GATEWAY_LOG_FORMAT, level=env_str("GATEWAY_LOG_LEVEL", "INFO"), access_log=GATEWAY_ACCESS_LOG
)

# --- Gateway settings (docs/configuration.md) ------------------------------------------------
# One server, a Sentinel-watched primary or a Redis Cluster (quotas/stores/redis_target.py).
# REDIS_PASSWORD_FILE: the URL names the file (``password_file=``), read for each new connection.
REDIS_URL = with_password_file(env_secret("REDIS_URL", ""), "REDIS_PASSWORD_FILE")
if REDIS_URL:
    try:
        parse_redis_url(REDIS_URL)
    except InvalidRedisUrl as exc:
        raise ImproperlyConfigured(f"REDIS_URL: {exc}") from None
GATEWAY_REDIS_PREFIX = env_str("GATEWAY_REDIS_PREFIX", "gw:")
if "{" in GATEWAY_REDIS_PREFIX or "}" in GATEWAY_REDIS_PREFIX:
    # A brace would start the hash tag that keeps each tenant's keys in one cluster slot.
    raise ImproperlyConfigured(f"GATEWAY_REDIS_PREFIX must not contain braces, got {GATEWAY_REDIS_PREFIX!r}")
GATEWAY_MAX_BODY_BYTES = env_int("GATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024)
# Request bounds (docs/api.md, "Request bounds"): sizes a client controls, refused with a 400 at parse
# time. The defaults never refuse what OpenAI accepts.
GATEWAY_MAX_JSON_DEPTH = env_int("GATEWAY_MAX_JSON_DEPTH", 64, minimum=8)
if GATEWAY_MAX_JSON_DEPTH > 128:
    # orjson serializes at most 254 levels, and translation and cache keys wrap a body in more.
    raise ImproperlyConfigured(f"GATEWAY_MAX_JSON_DEPTH must be <= 128, got {GATEWAY_MAX_JSON_DEPTH}")
GATEWAY_MAX_STRING_CHARS = env_int("GATEWAY_MAX_STRING_CHARS", 10 * 1024 * 1024, minimum=1024)
GATEWAY_MAX_MESSAGES = env_int("GATEWAY_MAX_MESSAGES", 2048, minimum=1)
GATEWAY_MAX_MESSAGE_ITEMS = env_int("GATEWAY_MAX_MESSAGE_ITEMS", 2048, minimum=1)
GATEWAY_MAX_TOOLS = env_int("GATEWAY_MAX_TOOLS", 128, minimum=1)
GATEWAY_MAX_COMPLETION_TOKENS = env_int("GATEWAY_MAX_COMPLETION_TOKENS", 1024 * 1024, minimum=1)
GATEWAY_MAX_EMBEDDING_DIMENSIONS = env_int("GATEWAY_MAX_EMBEDDING_DIMENSIONS", 4096, minimum=1)
GATEWAY_MAX_EMBEDDING_INPUT_TOKENS = env_int("GATEWAY_MAX_EMBEDDING_INPUT_TOKENS", 8192, minimum=1)
# Under Daphne, a request's headers must arrive within the first deadline (from the connection's
# start, or the request's first byte on a kept-alive connection), its body within the second
# (from the end of the headers); past either, 408 and the connection closes (docs/api.md, "The HTTP edge").
# TLS terminated in Daphne (docs/security.md): ``manage.py serve --tls-cert --tls-key`` sets both.
GATEWAY_TLS_CERT_FILE = env_str("GATEWAY_TLS_CERT_FILE", "")
GATEWAY_TLS_KEY_FILE = env_str("GATEWAY_TLS_KEY_FILE", "")
if bool(GATEWAY_TLS_CERT_FILE) != bool(GATEWAY_TLS_KEY_FILE):
    raise ImproperlyConfigured("GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE go together")
GATEWAY_HEADER_TIMEOUT_SECONDS = env_float("GATEWAY_HEADER_TIMEOUT_SECONDS", 10.0, minimum=0.1)
GATEWAY_BODY_TIMEOUT_SECONDS = env_float("GATEWAY_BODY_TIMEOUT_SECONDS", 30.0, minimum=0.1)
GATEWAY_UPSTREAM_TIMEOUT_SECONDS = env_float("GATEWAY_UPSTREAM_TIMEOUT_SECONDS", 600.0, minimum=0.1)
GATEWAY_UPSTREAM_CONNECT_TIMEOUT_SECONDS = env_float(
    "GATEWAY_UPSTREAM_CONNECT_TIMEOUT_SECONDS", 5.0, minimum=0.1
)
GATEWAY_UPSTREAM_MAX_CONNECTIONS = env_int("GATEWAY_UPSTREAM_MAX_CONNECTIONS", 1000, minimum=1)
GATEWAY_CONFIG_POLL_SECONDS = env_float("GATEWAY_CONFIG_POLL_SECONDS", 0.25, minimum=0.05)
# How often the files provider secrets and certificates are read from are looked at (rotation).
GATEWAY_SECRET_FILES_CHECK_SECONDS = env_float("GATEWAY_SECRET_FILES_CHECK_SECONDS", 5.0, minimum=0.1)
GATEWAY_USAGE_FLUSH_SECONDS = env_float("GATEWAY_USAGE_FLUSH_SECONDS", 0.5, minimum=0.01)
GATEWAY_USAGE_BATCH_SIZE = env_int("GATEWAY_USAGE_BATCH_SIZE", 500, minimum=1)
GATEWAY_USAGE_SPOOL_PATH = Path(env_str("GATEWAY_USAGE_SPOOL_PATH", str(DATA_DIR / "usage-spool.jsonl")))
GATEWAY_MOCK_CHUNK_DELAY_MS = env_float("GATEWAY_MOCK_CHUNK_DELAY_MS", 20.0)
GATEWAY_SECRETS_KEYS = secrets_keys(env_secret("GATEWAY_SECRETS_KEYS", ""))
# SECRET_KEY_FILE and GATEWAY_SECRETS_KEYS_FILE are followed by running gateways (a rotated key
# is used without a restart, the previous SECRET_KEY kept here): gateway_site/runtime/settings_files.py.
SECRET_KEY_FALLBACKS: list[str] = []
# Rate limits and cost quotas (docs/limits-and-quotas.md).
GATEWAY_ON_REDIS_ERROR = env_choice("GATEWAY_ON_REDIS_ERROR", "open", ("open", "closed"))
GATEWAY_REDIS_TIMEOUT_SECONDS = env_float("GATEWAY_REDIS_TIMEOUT_SECONDS", 1.0, minimum=0.01)
# Per Redis client of a process (limits, response cache, routing sync): past it, calls wait.
GATEWAY_REDIS_MAX_CONNECTIONS = env_int("GATEWAY_REDIS_MAX_CONNECTIONS", 64, minimum=1)
# Django's cache on REDIS_URL (local memory without it, or on a cluster) and the admin's sessions
# through it, kept in the database too (gateway_site/caches.py).
CACHES = cache_settings(REDIS_URL, prefix=GATEWAY_REDIS_PREFIX, timeout=GATEWAY_REDIS_TIMEOUT_SECONDS)
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# The admin's live tail (Django Channels): channels-redis on REDIS_URL, else in memory.
CHANNEL_LAYERS = channel_layers(REDIS_URL, prefix=GATEWAY_REDIS_PREFIX)
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# Admission control (docs/operations.md, "Overload"): past this many requests in flight in one worker
# (streams until they end), or with its event loop running this late, a request is shed with
# a 503 before any work.
# A reservation is a lease: it ends by itself this long after the request's deadline, so a
# process that dies holding it blocks nothing for long (docs/limits-and-quotas.md, "Crashes").
GATEWAY_LEASE_MARGIN_SECONDS = env_float("GATEWAY_LEASE_MARGIN_SECONDS", 60.0, minimum=1)
GATEWAY_MAX_IN_FLIGHT = env_int("GATEWAY_MAX_IN_FLIGHT", 1000, minimum=1)
GATEWAY_MAX_LOOP_LAG_MS = env_float("GATEWAY_MAX_LOOP_LAG_MS", 1000.0, minimum=1)
GATEWAY_QUOTA_TIMEZONE = env_timezone("GATEWAY_QUOTA_TIMEZONE", "UTC")
GATEWAY_DEFAULT_MAX_TOKENS = env_int("GATEWAY_DEFAULT_MAX_TOKENS", 1024, minimum=1)
# Routing and resilience (docs/routing-and-cache.md).
GATEWAY_RETRIES = env_int("GATEWAY_RETRIES", 3, minimum=0)
GATEWAY_RETRY_INITIAL_SECONDS = env_float("GATEWAY_RETRY_INITIAL_SECONDS", 0.1, minimum=0.0)
GATEWAY_RETRY_MAX_SECONDS = env_float("GATEWAY_RETRY_MAX_SECONDS", 10.0, minimum=0.0)
GATEWAY_RETRY_MULTIPLIER = env_float("GATEWAY_RETRY_MULTIPLIER", 2.0, minimum=1.0)
GATEWAY_RETRY_JITTER = env_float("GATEWAY_RETRY_JITTER", 0.1, minimum=0.0)
GATEWAY_ROUTING_SYNC_SECONDS = env_float("GATEWAY_ROUTING_SYNC_SECONDS", 0.5, minimum=0.05)
GATEWAY_ROUTING_EXPLORATION = env_float("GATEWAY_ROUTING_EXPLORATION", 0.1, minimum=0.0)
# The reports API (docs/usage-and-billing.md, "Usage reports"): authentication is set per view.
REST_FRAMEWORK: dict[str, object] = {"UNAUTHENTICATED_USER": None, "DEFAULT_AUTHENTICATION_CLASSES": []}
# The console's data pages (docs/console.md): the spend dashboard's aggregates are cached this long
# (Django's cache, whatever CACHES configures); 0 computes them on every view.
GATEWAY_CONSOLE_CACHE_SECONDS = env_int("GATEWAY_CONSOLE_CACHE_SECONDS", 60, minimum=0)
# Usage ledger and Celery (docs/usage-and-billing.md, docs/operations.md).
GATEWAY_USAGE_CLAIM_IDLE_SECONDS = env_float("GATEWAY_USAGE_CLAIM_IDLE_SECONDS", 30.0, minimum=0.1)
GATEWAY_USAGE_DRAIN_SECONDS = env_float("GATEWAY_USAGE_DRAIN_SECONDS", 1.0, minimum=0.05)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
# Without a broker (embedded default) tasks run in process: ``delay()`` runs at once and the
# gateway drains the usage outbox itself (gateway_site.runtime.usage_sink).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = env_str("GATEWAY_CELERY_QUEUE", "gateway")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
GATEWAY_ROLLUP_SECONDS = env_float("GATEWAY_ROLLUP_SECONDS", 60.0, minimum=0.1)
# Raw usage records older than this are deleted (rollups are kept); at least 35 days, so the
# current month of every cost quota can still be rebuilt from them (``reconcilequotas``).
GATEWAY_USAGE_RETENTION_DAYS = env_int("GATEWAY_USAGE_RETENTION_DAYS", 90, minimum=35)
GATEWAY_USAGE_PURGE_SECONDS = env_float("GATEWAY_USAGE_PURGE_SECONDS", 3600.0, minimum=1)
GATEWAY_USAGE_PURGE_BATCH = env_int("GATEWAY_USAGE_PURGE_BATCH", 5000, minimum=1)
GATEWAY_RECONCILE_SECONDS = env_float("GATEWAY_RECONCILE_SECONDS", 300.0, minimum=1)
# PostgreSQL: usage records partitioned by month; this many months ahead are created by beat.
GATEWAY_USAGE_PARTITIONS_AHEAD = env_int("GATEWAY_USAGE_PARTITIONS_AHEAD", 3, minimum=1)
GATEWAY_USAGE_PARTITION_SECONDS = env_float("GATEWAY_USAGE_PARTITION_SECONDS", 3600.0, minimum=1)
# Outbox consumers (one per process) idle this long with nothing pending are removed.
GATEWAY_USAGE_CONSUMER_IDLE_SECONDS = env_float("GATEWAY_USAGE_CONSUMER_IDLE_SECONDS", 86400.0, minimum=60)
GATEWAY_USAGE_CONSUMER_FORGET_SECONDS = env_float("GATEWAY_USAGE_CONSUMER_FORGET_SECONDS", 3600.0, minimum=1)
# Stored responses of /v1/responses (README, "Responses API"): kept this long, then purged.
GATEWAY_RESPONSES_RETENTION_DAYS = env_int("GATEWAY_RESPONSES_RETENTION_DAYS", 30, minimum=1)
GATEWAY_RESPONSES_PURGE_SECONDS = env_float("GATEWAY_RESPONSES_PURGE_SECONDS", 3600.0, minimum=1)
GATEWAY_RESPONSES_PURGE_BATCH = env_int("GATEWAY_RESPONSES_PURGE_BATCH", 5000, minimum=1)
# Content of requests of tenants that log content (docs/console.md, "Request content"): kept
# this long, encrypted, then purged.
GATEWAY_CONTENT_RETENTION_DAYS = env_int("GATEWAY_CONTENT_RETENTION_DAYS", 30, minimum=1)
GATEWAY_CONTENT_PURGE_SECONDS = env_float("GATEWAY_CONTENT_PURGE_SECONDS", 3600.0, minimum=1)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "drain-usage-outbox": {
        "task": "accounting.tasks.drain_usage_outbox",
        "schedule": GATEWAY_USAGE_DRAIN_SECONDS,
        "options": {"expires": max(5.0, GATEWAY_USAGE_DRAIN_SECONDS * 5)},
    },
    "rollup-usage": {"task": "accounting.tasks.rollup_usage", "schedule": GATEWAY_ROLLUP_SECONDS},
    "purge-usage": {"task": "accounting.tasks.purge_usage", "schedule": GATEWAY_USAGE_PURGE_SECONDS},
    "reconcile-quotas": {"task": "accounting.tasks.reconcile_quotas", "schedule": GATEWAY_RECONCILE_SECONDS},
    "prepare-usage-partitions": {
        "task": "accounting.tasks.prepare_usage_partitions",
        "schedule": GATEWAY_USAGE_PARTITION_SECONDS,
    },
    "forget-idle-consumers": {
        "task": "accounting.tasks.forget_idle_consumers",
        "schedule": GATEWAY_USAGE_CONSUMER_FORGET_SECONDS,
    },
    "purge-responses": {
        "task": "stored_responses.tasks.purge_responses",
        "schedule": GATEWAY_RESPONSES_PURGE_SECONDS,
    },
    "purge-request-content": {
        "task": "accounting.tasks.purge_request_content",
        "schedule": GATEWAY_CONTENT_PURGE_SECONDS,
    },
}
GATEWAY_BREAKER_FAILURES = env_int("GATEWAY_BREAKER_FAILURES", 5, minimum=1)
GATEWAY_BREAKER_SUCCESSES = env_int("GATEWAY_BREAKER_SUCCESSES", 2, minimum=1)
GATEWAY_BREAKER_OPEN_SECONDS = env_float("GATEWAY_BREAKER_OPEN_SECONDS", 30.0, minimum=0.1)
# Response cache (docs/routing-and-cache.md, "Response cache"): the in-process L1's bounds, and the cap on a
# request's ``Cache-Control: max-age`` opt-in (0 disables per-request opt-in).
GATEWAY_CACHE_MAX_ENTRIES = env_int("GATEWAY_CACHE_MAX_ENTRIES", 10_000, minimum=0)

# Bearer JWTs from trusted identity providers (docs/security.md).
GATEWAY_JWT_LEEWAY_SECONDS = env_float("GATEWAY_JWT_LEEWAY_SECONDS", 30.0)
GATEWAY_JWT_CACHE_SIZE = env_int("GATEWAY_JWT_CACHE_SIZE", 10_000)
GATEWAY_JWKS_REFRESH_SECONDS = env_float("GATEWAY_JWKS_REFRESH_SECONDS", 60.0)
GATEWAY_JWKS_MAX_AGE_SECONDS = env_float("GATEWAY_JWKS_MAX_AGE_SECONDS", 3600.0)
GATEWAY_JWKS_TIMEOUT_SECONDS = env_float("GATEWAY_JWKS_TIMEOUT_SECONDS", 5.0, minimum=0.1)
GATEWAY_CACHE_MAX_BYTES = env_int("GATEWAY_CACHE_MAX_BYTES", 64 * 1024 * 1024, minimum=0)
GATEWAY_CACHE_MAX_TTL_SECONDS = env_int("GATEWAY_CACHE_MAX_TTL_SECONDS", 3600, minimum=0)
# /metrics (docs/operations.md, "Metrics"): a bearer token when set, and the client networks it is served to.
GATEWAY_METRICS_TOKEN = env_str("GATEWAY_METRICS_TOKEN", "")
GATEWAY_METRICS_ALLOWED_NETWORKS = env_networks(
    "GATEWAY_METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
)
# false: /metrics tells no tenant apart (no tenant label; models not open to every tenant hidden).
GATEWAY_METRICS_TENANT_LABELS = env_bool("GATEWAY_METRICS_TENANT_LABELS", True)
# Admin sign-in (docs/security.md, "Admin sign-in and tenant admins"): OpenID Connect for staff
# when a client id and an issuer (or the endpoints) are set; local passwords can be turned off.
GATEWAY_ADMIN_PASSWORD_LOGIN = env_bool("GATEWAY_ADMIN_PASSWORD_LOGIN", True)
GATEWAY_OIDC_ISSUER = env_str("GATEWAY_OIDC_ISSUER", "").rstrip("/")
GATEWAY_OIDC_PROVIDER_NAME = env_str("GATEWAY_OIDC_PROVIDER_NAME", "single sign-on")
GATEWAY_OIDC_USERNAME_CLAIM = env_str("GATEWAY_OIDC_USERNAME_CLAIM", "sub")
GATEWAY_OIDC_GROUPS_CLAIM = env_str("GATEWAY_OIDC_GROUPS_CLAIM", "groups")
GATEWAY_OIDC_STAFF_GROUPS = env_list("GATEWAY_OIDC_STAFF_GROUPS", [])
GATEWAY_OIDC_SUPERUSER_GROUPS = env_list("GATEWAY_OIDC_SUPERUSER_GROUPS", [])
GATEWAY_OIDC_PLATFORM_GROUPS = env_list("GATEWAY_OIDC_PLATFORM_GROUPS", [])
# "idp-group=Django group name" pairs, comma-separated.
GATEWAY_OIDC_GROUP_MAP: dict[str, str] = {}
for _pair in env_list("GATEWAY_OIDC_GROUP_MAP", []):
    _claimed, _sep, _group = (part.strip() for part in _pair.partition("="))
    if not (_claimed and _sep and _group):
        raise ImproperlyConfigured(f"GATEWAY_OIDC_GROUP_MAP: expected idp-group=Django group, got {_pair!r}")
    GATEWAY_OIDC_GROUP_MAP[_claimed] = _group
GATEWAY_OIDC_TENANTS_CLAIM = env_str("GATEWAY_OIDC_TENANTS_CLAIM", "")
GATEWAY_OIDC_TENANT_MATCH = env_choice("GATEWAY_OIDC_TENANT_MATCH", "name", ("name", "id"))
OIDC_RP_CLIENT_ID = env_str("GATEWAY_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("GATEWAY_OIDC_CLIENT_SECRET", "")
OIDC_RP_SCOPES = env_str("GATEWAY_OIDC_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = env_choice("GATEWAY_OIDC_SIGN_ALGORITHM", "rs256", ("rs256", "es256", "ps256")).upper()
# Empty: read from the issuer's discovery document on the first sign-in.
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("GATEWAY_OIDC_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env_str("GATEWAY_OIDC_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env_str("GATEWAY_OIDC_USERINFO_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env_str("GATEWAY_OIDC_JWKS_ENDPOINT", "")
OIDC_TIMEOUT = env_float("GATEWAY_OIDC_TIMEOUT_SECONDS", 10.0, minimum=0.5)
OIDC_USE_PKCE = True
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/?sso=failed"
GATEWAY_OIDC_ENABLED = bool(
    OIDC_RP_CLIENT_ID and (GATEWAY_OIDC_ISSUER or (OIDC_OP_AUTHORIZATION_ENDPOINT and OIDC_OP_TOKEN_ENDPOINT))
)
if GATEWAY_OIDC_ENABLED and not (GATEWAY_OIDC_ISSUER or OIDC_OP_JWKS_ENDPOINT):
    raise ImproperlyConfigured(
        "GATEWAY_OIDC_JWKS_ENDPOINT (or GATEWAY_OIDC_ISSUER) is needed to check id tokens"
    )
if not GATEWAY_ADMIN_PASSWORD_LOGIN and not GATEWAY_OIDC_ENABLED:
    raise ImproperlyConfigured(
        "GATEWAY_ADMIN_PASSWORD_LOGIN=false needs OIDC sign-in (GATEWAY_OIDC_CLIENT_ID)"
    )
AUTHENTICATION_BACKENDS = [
    *(["django.contrib.auth.backends.ModelBackend"] if GATEWAY_ADMIN_PASSWORD_LOGIN else []),
    *(["gateway_site.console.oidc.GatewayOIDCBackend"] if GATEWAY_OIDC_ENABLED else []),
]
