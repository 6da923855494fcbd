"""Configuration: the one place that reads the environment. Units are in the names."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_API_KEY = "persona_sandbox_emulator_key"  # what the emulator accepts: used when no key is set
# Development only: production refuses it.
DEVELOPMENT_SECRET_KEY = "dev-only-secret-key-change-me"  # nosec B105
MIN_SECRET_KEY_LENGTH = 32


# Values the SDK refuses in `customHost` (it throws: "must be either a valid host or development").
SDK_RESERVED_HOSTS = frozenset({"production", "staging", "canary"})
TEMPLATE_DRIFT_POLICIES = ("resume", "offer_new_start")


class ConfigError(SystemExit):
    """The configuration cannot run: exits with one line that names the variable to set."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _csv(name: str, default: str = "") -> list[str]:
    return [p.strip() for p in _env(name, default).split(",") if p.strip()]


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Settings for development (`make run`). Every name is listed in `.env.example`."""

    SECRET_KEY = _env("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'app.db'}")
    # No pool_pre_ping (a round trip on every request): connections are retired after
    # DATABASE_POOL_RECYCLE_SECONDS, below servers' idle timeouts, and a statement that finds
    # its connection dropped is retried once on a fresh one (extensions.RetryingSession).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_recycle": int(_env("DATABASE_POOL_RECYCLE_SECONDS", "1800"))}
    PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "http://localhost:5000").rstrip("/")

    # Persona. No key configured: the local emulator (python -m persona_emulator).
    PERSONA_API_KEY = _env("PERSONA_API_KEY")
    PERSONA_USES_EMULATOR = not PERSONA_API_KEY
    PERSONA_API_BASE_URL = _env(
        "PERSONA_API_BASE_URL",
        "http://localhost:5001/api/v1" if PERSONA_USES_EMULATOR else "https://api.withpersona.com/api/v1",
    ).rstrip("/")
    # The SDK's `customHost` option (empty: Persona's production flow) and the origin of the flow
    # iframe it loads (SDK.md). `production`, `staging` and `canary` make the SDK throw.
    PERSONA_FLOW_HOST = _env("PERSONA_FLOW_HOST", "localhost:5001" if PERSONA_USES_EMULATOR else "")
    PERSONA_FLOW_ORIGIN = _env(
        "PERSONA_FLOW_ORIGIN",
        "http://localhost:5001" if PERSONA_USES_EMULATOR else "https://inquiry.withpersona.com",
    )
    PERSONA_TEMPLATE_ID = _env("PERSONA_TEMPLATE_ID", "itmpl_emulator_demo")
    # The SDK's `environmentId` (env_…), passed to the flow when set (FACTS §3).
    PERSONA_ENVIRONMENT_ID = _env("PERSONA_ENVIRONMENT_ID")
    # The template's field that takes the account's email, prefilled on create ('' = none).
    PERSONA_EMAIL_FIELD = _env("PERSONA_EMAIL_FIELD", "email-address")
    # Create with `meta.auto-create-inquiry-session`: the answer carries the first session token.
    PERSONA_CREATE_WITH_SESSION = _bool("PERSONA_CREATE_WITH_SESSION", True)
    # The `next-step-name` values of PERSONA_TEMPLATE_ID's published version, in order (each
    # template defines its own). Empty: the page says nothing about steps. The emulator's are
    # the demo default.
    # Before resuming, when the template has a newer published version than the inquiry's (RES):
    # `resume` (resume anyway, no extra call) or `offer_new_start` (one more read before each
    # resume; the person is offered a new start with an explanation).
    VERIFY_ON_TEMPLATE_DRIFT = _env("VERIFY_ON_TEMPLATE_DRIFT", "resume")
    PERSONA_TEMPLATE_STEPS = _csv(
        "PERSONA_TEMPLATE_STEPS", "select_id_type,document_front,selfie" if PERSONA_USES_EMULATOR else ""
    )
    PERSONA_VERSION = _env("PERSONA_VERSION", "2025-10-27")
    PERSONA_CONNECT_TIMEOUT_SECONDS = float(_env("PERSONA_CONNECT_TIMEOUT_SECONDS", "2"))
    PERSONA_READ_TIMEOUT_SECONDS = float(_env("PERSONA_READ_TIMEOUT_SECONDS", "5"))
    PERSONA_MAX_RETRIES = int(_env("PERSONA_MAX_RETRIES", "1"))
    PERSONA_RETRY_AFTER_CAP_SECONDS = float(_env("PERSONA_RETRY_AFTER_CAP_SECONDS", "1"))
    PERSONA_UNAVAILABLE_RETRY_AFTER_SECONDS = int(_env("PERSONA_UNAVAILABLE_RETRY_AFTER_SECONDS", "30"))
    PERSONA_BREAKER_FAILURES = int(_env("PERSONA_BREAKER_FAILURES", "5"))  # failed calls in a row
    PERSONA_BREAKER_COOLDOWN_SECONDS = float(_env("PERSONA_BREAKER_COOLDOWN_SECONDS", "30"))
    # The shared budget every Persona call spends (budget.py), below Persona's 300 a minute.
    PERSONA_BUDGET_CALLS = int(_env("PERSONA_BUDGET_CALLS", "270"))
    PERSONA_BUDGET_WINDOW_SECONDS = int(_env("PERSONA_BUDGET_WINDOW_SECONDS", "60"))
    PERSONA_BUDGET_BACKGROUND_SHARE = float(_env("PERSONA_BUDGET_BACKGROUND_SHARE", "0.5"))
    PERSONA_CALLS_PER_PERSON = int(_env("PERSONA_CALLS_PER_PERSON", "10"))  # per budget window
    PERSONA_PAGE_DEADLINE_SECONDS = float(_env("PERSONA_PAGE_DEADLINE_SECONDS", "6"))
    PERSONA_COALESCE_SECONDS = float(_env("PERSONA_COALESCE_SECONDS", "3"))
    # The SDK: self-hosted from npm (default) or Persona's CDN with an SRI hash.
    PERSONA_SDK_PATH = _env("PERSONA_SDK_PATH", str(ROOT / "node_modules/persona/dist/persona.js"))
    PERSONA_SDK_VERSION = "5.9.0"
    PERSONA_SDK_SHA384 = _env("PERSONA_SDK_SHA384", "JrEJpXyEEbcj6P33Cx89BDBYqufbfCxYIcN74C53YNVRmoKX51y+ue3/quODNpa9")
    PERSONA_SDK_CDN_URL = _env("PERSONA_SDK_CDN_URL")
    PERSONA_SDK_CDN_INTEGRITY = _env("PERSONA_SDK_CDN_INTEGRITY")

    # The continue page
    TOKEN_ENCRYPTION_KEY = _env("TOKEN_ENCRYPTION_KEY")  # Fernet key; derived from SECRET_KEY if unset
    VERIFY_LOAD_TIMEOUT_SECONDS = int(_env("VERIFY_LOAD_TIMEOUT_SECONDS", "20"))
    # While the flow is open the page script says "still here" this often, so time spent inside
    # Persona's frame counts as activity (keep it well under RECOVERY_SESSION_IDLE_SECONDS).
    VERIFY_KEEP_ALIVE_SECONDS = int(_env("VERIFY_KEEP_ALIVE_SECONDS", "240"))
    # With the flow closed, the page warns this long before an idle sign-in ends (WCAG 2.2.1).
    SIGN_OUT_WARNING_SECONDS = int(_env("SIGN_OUT_WARNING_SECONDS", "120"))
    VERIFY_RESTART_STATUSES = set(_csv("VERIFY_RESTART_STATUSES", "failed,missing"))
    VERIFY_TOKEN_REFRESH_LIMIT = _env("VERIFY_TOKEN_REFRESH_LIMIT", "10 per hour")
    VERIFY_COMPLETE_LIMIT = _env("VERIFY_COMPLETE_LIMIT", "10 per minute")  # per person
    VERIFY_RESTART_LIMIT = _env("VERIFY_RESTART_LIMIT", "10 per hour")  # per person
    PERSONA_SESSIONS_PER_INQUIRY = int(_env("PERSONA_SESSIONS_PER_INQUIRY", "25"))  # Persona's cap
    PRODUCT_URL = _env("PRODUCT_URL", "/")
    PRODUCT_NAME = _env("PRODUCT_NAME", "Acme")
    SUPPORT_EMAIL = _env("SUPPORT_EMAIL", "support@example.com")

    # Languages (webapp/i18n.py): the menu's order; English is the fallback.
    LANGUAGES = ["en", "es", "fr", "de", "pt_BR", "ar"]
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "webapp" / "translations")

    # Accounts and sessions
    LOGIN_SESSION_IDLE_SECONDS = int(_env("LOGIN_SESSION_IDLE_SECONDS", str(2 * 3600)))
    LOGIN_SESSION_ABSOLUTE_SECONDS = int(_env("LOGIN_SESSION_ABSOLUTE_SECONDS", str(12 * 3600)))
    LOGIN_RATE_LIMIT = _env("LOGIN_RATE_LIMIT", "10 per minute;50 per hour")  # per client
    # Refused sign-ins per account, from anywhere: past it, that account waits (a window, not a
    # lock: the owner is never shut out for longer, and "Forgot password" always works).
    LOGIN_ACCOUNT_FAILURE_LIMIT = _env("LOGIN_ACCOUNT_FAILURE_LIMIT", "10 per 15 minutes")
    SESSION_COOKIE_NAME = _env("SESSION_COOKIE_NAME", "session")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    PREFERRED_URL_SCHEME = "http"

    # Recovery links and email
    RECOVERY_LINK_TTL_SECONDS = int(_env("RECOVERY_LINK_TTL_SECONDS", str(72 * 3600)))
    RECOVERY_SESSION_IDLE_SECONDS = int(_env("RECOVERY_SESSION_IDLE_SECONDS", "900"))
    RECOVERY_SESSION_ABSOLUTE_SECONDS = int(_env("RECOVERY_SESSION_ABSOLUTE_SECONDS", "3600"))
    RECOVERY_SEND_LIMIT_PER_CLIENT = _env("RECOVERY_SEND_LIMIT_PER_CLIENT", "20 per hour")
    # Every email we send on someone's behalf, per mailbox (name+tag@x counts as name@x).
    MAIL_PER_ADDRESS_PER_HOUR = int(_env("MAIL_PER_ADDRESS_PER_HOUR", "3"))
    CONFIRM_EMAIL_LINK_TTL_SECONDS = int(_env("CONFIRM_EMAIL_LINK_TTL_SECONDS", str(48 * 3600)))
    PASSWORD_RESET_LINK_TTL_SECONDS = int(_env("PASSWORD_RESET_LINK_TTL_SECONDS", str(30 * 60)))
    UNSUBSCRIBE_TOKEN_TTL_SECONDS = int(_env("UNSUBSCRIBE_TOKEN_TTL_SECONDS", str(90 * 24 * 3600)))
    # `.test` addresses (demo users, tests); never in production.
    EMAIL_ALLOW_TEST_DOMAINS = _bool("EMAIL_ALLOW_TEST_DOMAINS", True)
    # "Copy link" in an app's built-in browser: pasted into the phone's own browser minutes later.
    OPEN_IN_BROWSER_LINK_TTL_SECONDS = int(_env("OPEN_IN_BROWSER_LINK_TTL_SECONDS", str(15 * 60)))
    OPEN_IN_BROWSER_LINK_LIMIT = _env("OPEN_IN_BROWSER_LINK_LIMIT", "10 per hour")  # per user
    # "Continue on your phone" (webapp/handoff.py): the QR code's link, a new one every
    # HANDOFF_ROTATE_SECONDS while the panel is open; an older one dies HANDOFF_GRACE_SECONDS later.
    HANDOFF_LINK_TTL_SECONDS = int(_env("HANDOFF_LINK_TTL_SECONDS", str(10 * 60)))
    HANDOFF_ROTATE_SECONDS = int(_env("HANDOFF_ROTATE_SECONDS", "30"))
    HANDOFF_GRACE_SECONDS = int(_env("HANDOFF_GRACE_SECONDS", "90"))
    HANDOFF_LINK_LIMIT = _env("HANDOFF_LINK_LIMIT", "10 per minute")  # per user (2 a minute when rotating)
    HANDOFF_STATUS_LIMIT = _env("HANDOFF_STATUS_LIMIT", "90 per minute")  # per user (the desktop's polling)
    RECOVERY_LINK_ATTEMPT_LIMIT = _env("RECOVERY_LINK_ATTEMPT_LIMIT", "30 per minute")  # per client
    REMINDER_MAX_PER_INQUIRY = int(_env("REMINDER_MAX_PER_INQUIRY", "2"))
    REMINDER_BEFORE_EXPIRY_SECONDS = int(_env("REMINDER_BEFORE_EXPIRY_SECONDS", str(6 * 3600)))
    REMINDER_IDLE_SECONDS = int(_env("REMINDER_IDLE_SECONDS", str(2 * 3600)))
    # Pacing (recovery.reminders_per_hour): reminded people's clicks use at most this share of
    # Persona's budget, counting this many calls a click; a run waits for the pace this long.
    REMINDER_BUDGET_SHARE = float(_env("REMINDER_BUDGET_SHARE", "0.25"))
    REMINDER_CALLS_PER_CLICK = int(_env("REMINDER_CALLS_PER_CLICK", "3"))
    REMINDER_RUN_SECONDS = float(_env("REMINDER_RUN_SECONDS", "240"))
    MAIL_FROM = _env("MAIL_FROM", "Acme verification <no-reply@example.com>")
    MAIL_SMTP_HOST = _env("MAIL_SMTP_HOST")  # empty: write .eml files to MAIL_OUTBOX_DIR
    MAIL_SMTP_PORT = int(_env("MAIL_SMTP_PORT", "587"))
    MAIL_SMTP_USERNAME = _env("MAIL_SMTP_USERNAME")
    MAIL_SMTP_PASSWORD = _env("MAIL_SMTP_PASSWORD")
    MAIL_SMTP_STARTTLS = _bool("MAIL_SMTP_STARTTLS", True)
    MAIL_SMTP_TIMEOUT_SECONDS = float(_env("MAIL_SMTP_TIMEOUT_SECONDS", "10"))
    MAIL_OUTBOX_DIR = _env("MAIL_OUTBOX_DIR", str(ROOT / "instance" / "outbox"))

    # Webhooks
    PERSONA_WEBHOOK_SECRETS = _csv("PERSONA_WEBHOOK_SECRETS", "wbhsec_dev_emulator_secret")
    PERSONA_WEBHOOK_TOLERANCE_SECONDS = int(_env("PERSONA_WEBHOOK_TOLERANCE_SECONDS", "300"))
    PERSONA_WEBHOOK_MAX_BYTES = int(_env("PERSONA_WEBHOOK_MAX_BYTES", str(256 * 1024)))
    WEBHOOK_EVENT_RETENTION_DAYS = int(_env("WEBHOOK_EVENT_RETENTION_DAYS", "30"))
    WEBHOOK_FUTURE_SKEW_SECONDS = int(_env("WEBHOOK_FUTURE_SKEW_SECONDS", "3600"))

    # One Redis serves rate limits, the task broker and the Persona budget, unless the first two
    # are named apart. Empty: no Redis (development): limits in memory, tasks run in-process.
    REDIS_URL = _env("REDIS_URL")
    # Rate limits (Flask-Limiter): memory:// in one process, redis:// when several share them.
    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI") or REDIS_URL or "memory://"
    # While that Redis is away (a restart), limits count in each process rather than fail requests.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True

    # Background work (Celery). No broker: tasks run in the process that asks for them.
    CELERY_BROKER_URL = _env("CELERY_BROKER_URL") or REDIS_URL
    # A task a dead worker held goes back to the queue after this (the outbox sweep is sooner).
    CELERY_VISIBILITY_TIMEOUT_SECONDS = int(_env("CELERY_VISIBILITY_TIMEOUT_SECONDS", "3600"))
    OUTBOX_SWEEP_SECONDS = float(_env("OUTBOX_SWEEP_SECONDS", "60"))  # beat runs the sweep this often
    # An email queued or sending this long past its time is handed to the workers again.
    # Keep it above SMTP_ROUND_TRIPS x MAIL_SMTP_TIMEOUT_SECONDS (production checks): a slow
    # send is not an abandoned one.
    OUTBOX_STALE_SECONDS = float(_env("OUTBOX_STALE_SECONDS", "180"))
    OUTBOX_MAX_ATTEMPTS = int(_env("OUTBOX_MAX_ATTEMPTS", "10"))
    OUTBOX_RETRY_BASE_SECONDS = float(_env("OUTBOX_RETRY_BASE_SECONDS", "10"))
    OUTBOX_RETRY_CAP_SECONDS = float(_env("OUTBOX_RETRY_CAP_SECONDS", "600"))  # below the visibility timeout
    REMINDERS_EVERY_SECONDS = float(_env("REMINDERS_EVERY_SECONDS", "3600"))
    SYNC_EVERY_SECONDS = float(_env("SYNC_EVERY_SECONDS", str(24 * 3600)))
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)

    # Observability: /metrics needs this bearer token (empty: direct loopback connections only).
    METRICS_TOKEN = _env("METRICS_TOKEN")
    LOG_FORMAT = _env("LOG_FORMAT", "text")  # text | json (production's default)

    # Proxies in front of the app (X-Forwarded-* hops to trust; 0 trusts none).
    TRUSTED_PROXY_HOPS = int(_env("TRUSTED_PROXY_HOPS", "0"))
    HSTS_ENABLED = False
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    MAX_CONTENT_LENGTH = 1024 * 1024

    @classmethod
    def check(cls) -> None:
        """Raise ConfigError when this configuration cannot run (development runs on defaults)."""


# An SMTP send waits for at most this many answers, each up to MAIL_SMTP_TIMEOUT_SECONDS:
# connect, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA, the message.
SMTP_ROUND_TRIPS = 9


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-session"
    PREFERRED_URL_SCHEME = "https"
    HSTS_ENABLED = True
    PERSONA_WEBHOOK_SECRETS = _csv("PERSONA_WEBHOOK_SECRETS")  # no default secret in production
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL")  # no default database in production
    # A pooled connection for each gunicorn thread: with fewer, every busy moment opens and closes
    # connections beyond the pool (its overflow), a new PostgreSQL backend each (PERFORMANCE.md).
    SQLALCHEMY_ENGINE_OPTIONS = {
        **Config.SQLALCHEMY_ENGINE_OPTIONS,
        "pool_size": int(_env("DATABASE_POOL_SIZE", _env("GUNICORN_THREADS", "8"))),
    }
    LOG_FORMAT = _env("LOG_FORMAT", "json")
    # Only our own host name, loopback (probes on the machine itself) and any other the load
    # balancer's checks use: other Host headers get a 400, so no redirect (Werkzeug's own
    # included) echoes one.
    TRUSTED_HOSTS = [
        urlsplit(Config.PUBLIC_BASE_URL).hostname or "localhost",
        "localhost",
        "127.0.0.1",
        *_csv("TRUSTED_HOSTS_EXTRA"),
    ]
    EMAIL_ALLOW_TEST_DOMAINS = _bool("EMAIL_ALLOW_TEST_DOMAINS", False)  # make cluster's demo users set it

    @classmethod
    def check(cls) -> None:
        """Refuse to start production with a setting that cannot be right.

        Raises ConfigError (a SystemExit) whose one line names the variable to set."""
        problem = cls.problem()
        if problem:
            raise ConfigError(f"Refusing to start in production: {problem}")
        if not cls.TRUSTED_PROXY_HOPS:
            logging.getLogger("webapp.config").warning(
                "TRUSTED_PROXY_HOPS is 0: every client looks like the proxy's address to the rate limits; "
                "set it to the number of proxies in front of the app"
            )

    @classmethod
    def problem(cls) -> str | None:
        """What is wrong with this production configuration, naming the variable; None if nothing."""
        key = cls.SECRET_KEY
        if not key or key == DEVELOPMENT_SECRET_KEY:
            return f"set SECRET_KEY to at least {MIN_SECRET_KEY_LENGTH} random characters"
        if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 10:
            return f"SECRET_KEY is weak: use at least {MIN_SECRET_KEY_LENGTH} random characters"
        if not cls.PERSONA_WEBHOOK_SECRETS:
            return "set PERSONA_WEBHOOK_SECRETS (the secret of the webhook you created in Persona)"
        if not cls.SQLALCHEMY_DATABASE_URI:
            return "set DATABASE_URL (postgresql+psycopg://...)"
        if not cls.REDIS_URL and (cls.RATELIMIT_STORAGE_URI.startswith("memory") or not cls.CELERY_BROKER_URL):
            return "set REDIS_URL (rate limits and background tasks are shared through Redis)"
        if cls.VERIFY_ON_TEMPLATE_DRIFT not in TEMPLATE_DRIFT_POLICIES:
            return "VERIFY_ON_TEMPLATE_DRIFT must be resume or offer_new_start"
        if cls.PERSONA_FLOW_HOST in SDK_RESERVED_HOSTS:
            # SDK 5.9.0 throws for these in `customHost`: the page could never open the flow.
            return "PERSONA_FLOW_HOST names no host: leave it empty for Persona's own flow, or give a host name"
        if cls.RATELIMIT_STORAGE_URI.startswith("memory"):
            # Each worker would count on its own: limits multiplied, the sign-in back-off bypassed.
            return "RATELIMIT_STORAGE_URI is memory://: leave it empty (REDIS_URL is used) or name a shared store"
        slowest_send = SMTP_ROUND_TRIPS * cls.MAIL_SMTP_TIMEOUT_SECONDS
        if cls.OUTBOX_STALE_SECONDS < slowest_send:
            # A worker still sending would have its email taken over by the sweep: sent twice.
            return (
                f"OUTBOX_STALE_SECONDS ({cls.OUTBOX_STALE_SECONDS:g}) is under {SMTP_ROUND_TRIPS} x "
                f"MAIL_SMTP_TIMEOUT_SECONDS ({slowest_send:g}): a slow send would be taken for an abandoned one"
            )
        return None


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key-for-the-test-suite-only"  # nosec B105
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    REDIS_URL = ""
    RATELIMIT_STORAGE_URI = "memory://"
    CELERY_BROKER_URL = ""  # tasks run eagerly unless a test gives a broker
    PERSONA_CONNECT_TIMEOUT_SECONDS = 1.0
    PERSONA_READ_TIMEOUT_SECONDS = 2.0
    PERSONA_RETRY_AFTER_CAP_SECONDS = 0.2
    # Two reads in a row in a test mean two reads; the coalescing tests turn it on.
    PERSONA_COALESCE_SECONDS = 0.0
    PERSONA_WEBHOOK_SECRETS = ["wbhsec_test_secret"]


CONFIGS = {"development": Config, "production": ProductionConfig, "testing": TestConfig}
