"""Emulator settings: read once from the environment, overridable by flags and at run time.

Every name is documented in the README ("The Persona emulator") and `.env.example`.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_API_KEY = "persona_sandbox_emulator_key"
# Persona's documented retry schedule after the first attempt, in seconds (FACTS.md §5).
PERSONA_RETRY_SCHEDULE_SECONDS = (3, 64, 729, 4096, 15625, 46656, 117649)
KEY_INFLECTIONS = ("kebab", "camel", "snake")


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


_DURATION = r"(\d+(?:\.\d+)?)\s*(ms|s)?"


def _seconds(number: str, unit: str | None) -> float:
    return float(number) if unit == "s" else float(number) / 1000


def parse_latency(spec: str) -> Callable[[], float]:
    """A sampler of added API latency, in seconds, from a spec (milliseconds unless `s` is given):

    ``""`` or ``0``: none; ``150ms``: fixed; ``100-300ms``: uniform between the two;
    ``lognormal:150ms:400ms``: log-normal with that median and 95th percentile (a long tail, as
    real upstreams have). Raises ValueError for anything else.
    """
    text = spec.strip().lower()
    if not text:
        return lambda: 0.0
    if match := re.fullmatch(_DURATION, text):
        fixed = _seconds(*match.groups())
        return lambda: fixed
    if match := re.fullmatch(_DURATION + r"\s*-\s*" + _DURATION, text):
        low, high = _seconds(match[1], match[2] or match[4]), _seconds(match[3], match[4])
        if low > high:
            raise ValueError("latency range must go from low to high")
        return lambda: random.uniform(low, high)  # load modelling, no secret  # nosec B311
    if match := re.fullmatch(r"lognormal:" + _DURATION + ":" + _DURATION, text):
        median, p95 = _seconds(match[1], match[2]), _seconds(match[3], match[4])
        if not 0 < median <= p95:
            raise ValueError("lognormal latency needs 0 < median <= p95")
        mu, sigma = math.log(median), math.log(p95 / median) / 1.6449
        return lambda: min(random.lognormvariate(mu, sigma), 60.0)  # load modelling, no secret  # nosec B311
    raise ValueError(f"latency {spec!r}: use 150ms, 100-300ms or lognormal:150ms:400ms")


@dataclass
class EmulatorConfig:
    api_keys: list[str] = field(default_factory=lambda: [DEFAULT_API_KEY])
    state_file: str = "instance/persona-emulator.db"
    control_enabled: bool = False
    token_secret: str = "persona-emulator-token-signing-secret-not-for-production"
    # Inquiry lifecycle
    expiry_after_create_seconds: int = 86_400
    # "From Inquiry pending" (EXP): 0 means the creation interval, as Persona's default.
    expiry_after_start_seconds: int = 0
    expiry_after_resume_seconds: int = 86_400
    # EXP: the expiry restarts when an inquiry enters pending; False keeps creation + interval.
    expiry_restarts_at_start: bool = True
    # RES: a token nobody opened dies this long after it was minted (or with the inquiry).
    unused_session_token_seconds: int = 86_400
    max_sessions_per_inquiry: int = 25
    # UNCONFIRMED in FACTS.md: older docs allow resume on `created`, the current reference does not.
    resume_allows_created: bool = True
    # Answer past the session cap (UNCONFIRMED; see docs/PERSONA-ASSUMPTIONS.md).
    session_cap_status: int = 429
    # Rate limit: requests per minute across all keys; 0 switches it off.
    rate_limit_per_minute: int = 300
    # Webhooks
    webhook_urls: list[str] = field(default_factory=list)
    webhook_secrets: list[str] = field(default_factory=list)
    webhook_backoff_scale: float = 1.0
    webhook_timeout_seconds: float = 5.0
    webhook_success_statuses: list[int] = field(default_factory=lambda: [200, 201, 202, 204])
    # KI: a webhook's bodies follow the key inflection configured on the webhook (kebab, camel or
    # snake); one setting for every URL here. Every key is inflected, at any depth (assumed).
    webhook_key_inflection: str = "kebab"
    # Widget behaviour for inquiries that can no longer be worked on (UNCONFIRMED).
    widget_final_error_code: str = "unknown"
    # What the flow reports for an inquiry id Persona does not know (UNCONFIRMED): "unknown"
    # (status 404) or "invalid_config" (status 400, the only status the SDK pairs it with).
    widget_not_found_error_code: str = "unknown"
    # Idempotency keys are pruned after this long on the emulator clock (IDEM: "24 h or more"),
    # and beyond this many the oldest go first (memory bound for long benchmarks; Persona has none).
    idempotency_ttl_seconds: int = 86_400
    idempotency_max_records: int = 100_000
    # Added to every API answer, to model Persona's latency in benchmarks (see parse_latency).
    latency: str = ""
    # The control API's request log keeps this many entries (oldest dropped first).
    request_log_size: int = 2000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> EmulatorConfig:
        env = dict(os.environ if env is None else env)
        cfg = cls()
        cfg.api_keys = _csv(env.get("PERSONA_EMULATOR_API_KEYS")) or [DEFAULT_API_KEY]
        cfg.state_file = env.get("PERSONA_EMULATOR_STATE_FILE", cfg.state_file)
        cfg.control_enabled = _bool(env.get("PERSONA_EMULATOR_CONTROL"), False)
        cfg.token_secret = env.get("PERSONA_EMULATOR_TOKEN_SECRET", cfg.token_secret)
        cfg.expiry_after_create_seconds = int(
            env.get("PERSONA_EMULATOR_EXPIRY_SECONDS", cfg.expiry_after_create_seconds)
        )
        cfg.expiry_after_start_seconds = int(env.get("PERSONA_EMULATOR_START_EXPIRY_SECONDS", 0))
        cfg.expiry_after_resume_seconds = int(
            env.get("PERSONA_EMULATOR_RESUME_EXPIRY_SECONDS", cfg.expiry_after_create_seconds)
        )
        cfg.expiry_restarts_at_start = _bool(env.get("PERSONA_EMULATOR_EXPIRY_RESTARTS_AT_START"), True)
        cfg.max_sessions_per_inquiry = int(env.get("PERSONA_EMULATOR_MAX_SESSIONS", cfg.max_sessions_per_inquiry))
        cfg.resume_allows_created = _bool(env.get("PERSONA_EMULATOR_RESUME_CREATED"), True)
        cfg.rate_limit_per_minute = int(env.get("PERSONA_EMULATOR_RATE_LIMIT_PER_MINUTE", cfg.rate_limit_per_minute))
        cfg.webhook_urls = _csv(env.get("PERSONA_EMULATOR_WEBHOOK_URLS"))
        cfg.webhook_secrets = _csv(env.get("PERSONA_EMULATOR_WEBHOOK_SECRETS"))
        cfg.webhook_backoff_scale = float(env.get("PERSONA_EMULATOR_WEBHOOK_BACKOFF_SCALE", cfg.webhook_backoff_scale))
        cfg.webhook_key_inflection = env.get("PERSONA_EMULATOR_WEBHOOK_KEY_INFLECTION", cfg.webhook_key_inflection)
        if cfg.webhook_key_inflection not in KEY_INFLECTIONS:
            raise ValueError("PERSONA_EMULATOR_WEBHOOK_KEY_INFLECTION must be kebab, camel or snake")
        cfg.latency = env.get("PERSONA_EMULATOR_LATENCY", cfg.latency)
        parse_latency(cfg.latency)
        cfg.request_log_size = int(env.get("PERSONA_EMULATOR_REQUEST_LOG_SIZE", cfg.request_log_size))
        return cfg

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Apply a partial update (from `POST /_emulator/config`); returns the refused keys
        (unknown, or a value of another type than the setting's). Nothing changes if any is."""
        refused = [key for key, value in changes.items() if not self._acceptable(key, value)]
        if not refused:
            for key, value in changes.items():
                setattr(self, key, float(value) if isinstance(getattr(self, key), float) else value)
        return refused

    def _acceptable(self, key: str, value: Any) -> bool:
        """Whether `value` may replace the setting `key` at run time."""
        if key not in self.__dataclass_fields__ or key in {"token_secret", "request_log_size"}:
            return False
        current = getattr(self, key)
        if isinstance(current, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(current, bool)
        elif isinstance(current, float):
            ok = isinstance(value, int | float)
        else:
            ok = isinstance(value, type(current))
        if isinstance(current, list) and ok:
            ok = all(isinstance(item, type(current[0]) if current else str | int) for item in value)
        if ok and key == "webhook_key_inflection":
            ok = value in KEY_INFLECTIONS
        if ok and key == "widget_not_found_error_code":
            ok = value in {"unknown", "invalid_config"}
        if ok and key == "latency":
            try:
                parse_latency(value)
            except ValueError:
                ok = False
        return ok

    def public(self) -> dict[str, Any]:
        """The settings as JSON, secrets left out."""
        data = asdict(self)
        data.pop("token_secret")
        data["api_keys"] = len(self.api_keys)
        data["webhook_secrets"] = len(self.webhook_secrets)
        return data
