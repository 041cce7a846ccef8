"""Settings, read from the environment.

Development needs no environment at all (SQLite file, in-memory channel layer,
local-memory cache). Production sets DJANGO_DEBUG=0, which makes the unsafe
development defaults a start-up error instead of a silent risk.
"""

import logging
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# Pure modules (no app registry needed): settings call them to read the master keys and origins.
from buckets.core.masterkeys import master_keys_configure
from kvsite.websocket_origin import origins_parse

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


# --- Core ---------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", True)

DEVELOPMENT_SECRET_KEY = "django-insecure-kvsite-development-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "") or DEVELOPMENT_SECRET_KEY
if not DEBUG and (SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "DJANGO_DEBUG is off but DJANGO_SECRET_KEY is unset, the development key, or shorter "
        "than 32 characters. Set DJANGO_SECRET_KEY to a long random value."
    )
if DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    # A notice, not a warning with a traceback line: logged before logging is configured, it is one
    # line on stderr (logging's last-resort handler), once per process.
    logging.getLogger("kvsite.development").warning(
        "kvsite is running with the development secret key (DJANGO_DEBUG on): anyone who reads the "
        "repository can forge its sessions. Production sets DJANGO_SECRET_KEY."
    )

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]
# Pages of other origins whose browsers may open WebSockets (kvsite/websocket_origin.py): full
# origins, comma-separated ("https://app.example.com,http://localhost:3000"). The site's own
# origin (the handshake's Host, one of ALLOWED_HOSTS, with its scheme and port) needs no entry.
KV_ALLOWED_ORIGINS = origins_parse(os.environ.get("KV_ALLOWED_ORIGINS", ""))

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
    "channels",
    "kvsite",
    "buckets",
    "secrets_app",
]

MIDDLEWARE = [
    # Request ids first, so every later layer (logs, audit rows) can use request.request_id.
    "kvsite.http.middleware.RequestIdMiddleware",
    # Then the requests whose body the server-boundary guard refused (kvsite/http/bodies.py)
    # are answered, before any other layer reads a body that is not there.
    "kvsite.http.bodies.RequestBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "kvsite.http.middleware.ApiJsonErrorsMiddleware",
    "kvsite.http.metrics.RequestMetricsMiddleware",
]

ROOT_URLCONF = "kvsite.urls"
WSGI_APPLICATION = "kvsite.wsgi.application"
ASGI_APPLICATION = "kvsite.asgi.application"
APPEND_SLASH = False

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

# --- Database: DATABASE_URL, default a SQLite file next to manage.py -------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Persistent connections for WSGI workers (a new PostgreSQL backend per request
        # costs more than the request). ASGI servers use a pool instead (KV_DB_POOL below).
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that asks the socket instead of the server.
    DATABASES["default"]["ENGINE"] = "kvsite.postgresql"
    # Prepared statements: PostgreSQL plans a statement once per connection instead of
    # on every request, which on the key read/write path is most of its CPU. Set
    # DJANGO_DB_PREPARE_THRESHOLD=off behind a transaction-mode pooler (PgBouncer).
    prepare_threshold = os.environ.get("DJANGO_DB_PREPARE_THRESHOLD", "5")
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": None if prepare_threshold == "off" else int(prepare_threshold),
    }
    if env_bool("KV_DB_POOL", False):
        # ASGI servers run each request's sync code in a thread of its own and Django keeps
        # a connection per thread, so persistent connections pile up until PostgreSQL refuses
        # more ("too many clients"); a pool hands one back at the end of every request.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": int(os.environ.get("KV_DB_POOL_SIZE", "10")),
            # Waiting longer for a connection than a client waits for the answer helps nobody.
            "timeout": float(os.environ.get("KV_DB_POOL_TIMEOUT", "5")),
        }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers never both read the
    # bucket's last revision before one of them commits; WAL lets readers go on.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# Test databases are per test run, so parallel runs on one machine do not collide,
# and SQLite's is a file, so tests can start real server processes on it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_kvsite_{os.getpid()}"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Serving ---------------------------------------------------------------------
# HTTP threads per ASGI worker process when REDIS_URL is set (kvsite/asgi.py); each holds
# at most one database connection, so keep KV_DB_POOL_SIZE (10) at least this large.
KV_HTTP_THREADS = int(os.environ.get("KV_HTTP_THREADS", "4"))

# --- Redis: channel layer and cache (unset: in-process, development only) --------
# The pub/sub layer: a change event is one PUBLISH to its bucket's group, which each
# server process receives once per bucket (buckets/core/fanout.py) and hands to its sockets.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
CSRF_FAILURE_VIEW = "kvsite.dashboard.errors.csrf_failure"

# --- I18n, static ---------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# whitenoise serves static files straight from the project's and the apps' static folders
# (Django's finders, listed once at start-up with debug off), however kvsite is served: there
# is no collectstatic step to forget, and a page never loses its scripts to a missed one.
WHITENOISE_USE_FINDERS = True
# Only where `collectstatic` copies them, for a proxy that serves /static/ itself; whitenoise
# serves those copies too when they exist (the source folders win), and needs none of them.
# Unset, there is none (collectstatic then says to set it), and whitenoise looks for none.
STATIC_ROOT = Path(os.environ["DJANGO_STATIC_ROOT"]) if os.environ.get("DJANGO_STATIC_ROOT") else None

# --- Security (production profile) ----------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)

# --- REST framework -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "kvsite.access.authentication.ApiKeyAuthentication",
        "kvsite.access.authentication.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["kvsite.access.authentication.DeclaredAccess"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["kvsite.http.jsonbody.JsonBodyParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "kvsite.http.negotiation.JsonOnlyNegotiation",
    "EXCEPTION_HANDLER": "kvsite.http.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "kvsite API",
    "DESCRIPTION": (
        "Self-hosted key-value, config and secrets service, wire-compatible with Ironflow's KV "
        "HTTP API. Bucket info counters (`values`, `bytes`) count kept entries; expired entries "
        "are invisible at once but only leave the counters when `manage.py kv_sweep` removes them."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "kvsite.schema.body_contract_responses",
    ],
}

# --- KV limits --------------------------------------------------------------------
KV_DEFAULT_MAX_VALUE_SIZE = 1024 * 1024
# The largest max_value_size a bucket may ask for; request bodies are capped to match.
KV_VALUE_SIZE_CEILING = int(os.environ.get("KV_VALUE_SIZE_CEILING", str(8 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = KV_VALUE_SIZE_CEILING + 64 * 1024
# /metrics without authentication (only behind a private network).
KV_METRICS_PUBLIC = env_bool("KV_METRICS_PUBLIC", False)
# Kept revisions per config document.
KV_CONFIG_HISTORY = int(os.environ.get("KV_CONFIG_HISTORY", "20"))
# How long a verified API key stays in the per-process cache (revocation delay).
KV_API_KEY_CACHE_SECONDS = float(os.environ.get("KV_API_KEY_CACHE_SECONDS", "5"))

# --- Logging ------------------------------------------------------------------------
# One line per record on stderr: JSON in the production profile (or KV_LOG_FORMAT=json),
# readable text in development (KV_LOG_FORMAT=text forces it). Every record carries the
# request id and passes the redaction filter (no bearer token, API key or secret value).
# kvsite.access writes one line per request at INFO: DJANGO_LOG_LEVEL=WARNING turns it off.
KV_LOG_FORMAT = os.environ.get("KV_LOG_FORMAT", "") or ("text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "kvsite.http.request_log.RedactingFilter"}},
    "formatters": {
        "json": {"()": "kvsite.http.request_log.JsonFormatter"},
        "text": {"()": "kvsite.http.request_log.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if KV_LOG_FORMAT == "json" else "text",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers on these (debug console, mail_admins, runserver) would write
        # records before the redaction filter sees them: everything goes through "console".
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # 4xx answers are the access line's business; django.request only adds its 5xx tracebacks.
        "django.request": {"level": "ERROR"},
    },
}

# --- Secrets ---
# Master keys sealing secret values: KV_MASTER_KEYS="id:base64(32 bytes),..."; the
# first seals, all open (rotation: prepend the new key, run rotate_master_key, drop
# the old one). Unset under DJANGO_DEBUG, a development key is generated into
# KV_MASTER_KEY_FILE, outside the repository; unset with debug off, start-up fails.
KV_MASTER_KEY_FILE = Path(
    os.environ.get("KV_MASTER_KEY_FILE", "") or Path.home() / ".config" / "kvsite" / "master.key"
).expanduser()
KV_MASTER_KEYS = master_keys_configure(
    raw=os.environ.get("KV_MASTER_KEYS", ""), debug=DEBUG, key_file=KV_MASTER_KEY_FILE, base_dir=BASE_DIR
)

# --- Watch ---
# Live watch over WebSocket (buckets/watch/). Idle connections get a {"type": "ping"}
# every HEARTBEAT seconds and are closed (4408) when nothing comes back within
# HEARTBEAT_TIMEOUT; each connection buffers at most QUEUE_SIZE events before it is
# closed (4008) instead of growing; a revision gap is waited for GAP seconds before
# it is filled from the database.
KV_WATCH_HEARTBEAT_SECONDS = float(os.environ.get("KV_WATCH_HEARTBEAT_SECONDS", "30"))
KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS = float(os.environ.get("KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS", "30"))
KV_WATCH_QUEUE_SIZE = int(os.environ.get("KV_WATCH_QUEUE_SIZE", "1000"))
KV_WATCH_GAP_SECONDS = float(os.environ.get("KV_WATCH_GAP_SECONDS", "0.15"))
KV_WATCH_REPLAY_BATCH = int(os.environ.get("KV_WATCH_REPLAY_BATCH", "500"))
KV_WATCH_CLOSE_TIMEOUT_SECONDS = float(os.environ.get("KV_WATCH_CLOSE_TIMEOUT_SECONDS", "5"))
KV_WATCH_TICKET_SECONDS = int(os.environ.get("KV_WATCH_TICKET_SECONDS", "30"))
if REDIS_URL:
    # A prefix per deployment (or test run) keeps two of them on one Redis apart.
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = os.environ.get("KV_CHANNEL_LAYER_PREFIX", "asgi")
else:
    # The in-memory layer drops a group message when a channel holds `capacity`
    # unread ones; each bucket's feed drains its channel at once, this is headroom.
    CHANNEL_LAYERS["default"]["CONFIG"] = {"capacity": 1000}

# --- Dashboard ---
# The staff dashboard (kvsite/dashboard/) signs in with Django auth at /login.
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:buckets"
LOGOUT_REDIRECT_URL = "dashboard:login"
# Sign-in throttling (kvsite/access/logins.py): failed password sign-ins are counted in the
# cache per username and per client address (the socket peer, as in the audit log), over a
# window that opens at the first failure. At a limit, sign-in is refused with a 429, the right
# password included, until the window closes; 0 turns that limit off.
KV_LOGIN_FAILURES_PER_USERNAME = int(os.environ.get("KV_LOGIN_FAILURES_PER_USERNAME", "5"))
KV_LOGIN_FAILURES_PER_IP = int(os.environ.get("KV_LOGIN_FAILURES_PER_IP", "20"))
KV_LOGIN_WINDOW_SECONDS = int(os.environ.get("KV_LOGIN_WINDOW_SECONDS", "60"))

# --- Items API ---
# The simple items API (/kv/items, buckets/items/services.py): each account's JSON values in
# its own bucket items-<account>. A value's size is its stored compact UTF-8 JSON,
# in decimal units: "1 MB" is 1_000_000 bytes. MAX_KEYS is fixed into an account's
# bucket when its first item creates it. Reads and writes are token buckets per
# account (RATE tokens a second, up to BURST), shared by every process through
# Redis when REDIS_URL is set, per process otherwise; a RATE of 0 turns one off.
KV_ITEMS_MAX_VALUE_BYTES = int(os.environ.get("KV_ITEMS_MAX_VALUE_BYTES", "1000000"))
KV_ITEMS_MAX_KEYS = int(os.environ.get("KV_ITEMS_MAX_KEYS", "1000000"))
KV_ITEMS_READ_RATE = float(os.environ.get("KV_ITEMS_READ_RATE", "1000"))
KV_ITEMS_READ_BURST = float(os.environ.get("KV_ITEMS_READ_BURST", "2000"))
KV_ITEMS_WRITE_RATE = float(os.environ.get("KV_ITEMS_WRITE_RATE", "500"))
KV_ITEMS_WRITE_BURST = float(os.environ.get("KV_ITEMS_WRITE_BURST", "1000"))
# A deleted item leaves a marker (for watchers); kv_sweep drops markers older than this.
KV_ITEMS_MARKER_RETENTION_SECONDS = int(os.environ.get("KV_ITEMS_MARKER_RETENTION_SECONDS", "1800"))
# Prefix of the limiter's Redis keys: one per deployment (or test run) sharing a Redis.
KV_ITEMS_RATELIMIT_PREFIX = os.environ.get("KV_ITEMS_RATELIMIT_PREFIX", "kvsite")
