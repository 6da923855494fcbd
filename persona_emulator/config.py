"""Emulator settings: read once from the environment, overridable by flags and at run time.

Every name is documented in the README ("The Persona emulator") and `.env.example`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

DEFAULT_API_KEY = "persona_sandbox_emulator_key"
# Persona's documented retry schedule after the first attempt, in seconds (FACTS.md §5).
PERSONA_RETRY_SCHEDULE_SECONDS = (3, 64, 729, 4096, 15625, 46656, 117649)


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class EmulatorConfig:
    api_keys: list[str] = field(default_factory=lambda: [DEFAULT_API_KEY])
    state_file: str = "instance/persona-emulator.json"
    control_enabled: bool = False
    token_secret: str = "persona-emulator-token-signing-secret-not-for-production"
    # Inquiry lifecycle
    expiry_after_create_seconds: int = 86_400
    expiry_after_resume_seconds: int = 86_400
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
    # Widget behaviour for inquiries that can no longer be worked on (UNCONFIRMED).
    widget_final_error_code: str = "unknown"

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
        cfg.expiry_after_resume_seconds = int(
            env.get("PERSONA_EMULATOR_RESUME_EXPIRY_SECONDS", cfg.expiry_after_create_seconds)
        )
        cfg.max_sessions_per_inquiry = int(env.get("PERSONA_EMULATOR_MAX_SESSIONS", cfg.max_sessions_per_inquiry))
        cfg.resume_allows_created = _bool(env.get("PERSONA_EMULATOR_RESUME_CREATED"), True)
        cfg.rate_limit_per_minute = int(env.get("PERSONA_EMULATOR_RATE_LIMIT_PER_MINUTE", cfg.rate_limit_per_minute))
        cfg.webhook_urls = _csv(env.get("PERSONA_EMULATOR_WEBHOOK_URLS"))
        cfg.webhook_secrets = _csv(env.get("PERSONA_EMULATOR_WEBHOOK_SECRETS"))
        cfg.webhook_backoff_scale = float(env.get("PERSONA_EMULATOR_WEBHOOK_BACKOFF_SCALE", cfg.webhook_backoff_scale))
        return cfg

    def update(self, changes: dict) -> list[str]:
        """Apply a partial update (from `POST /_emulator/config`); returns the refused keys
        (unknown, or a value of another type than the setting's). Nothing changes if any is."""
        refused = []
        for key, value in changes.items():
            if key not in self.__dataclass_fields__ or key == "token_secret":
                refused.append(key)
                continue
            current = getattr(self, key)
            if isinstance(current, bool) or isinstance(value, bool):
                ok = isinstance(value, bool) and isinstance(current, bool)
            elif isinstance(current, float):
                ok = isinstance(value, int | float)
            else:
                ok = isinstance(value, type(current))
            if isinstance(current, list) and ok:
                ok = all(isinstance(item, type(current[0]) if current else str | int) for item in value)
            if not ok:
                refused.append(key)
        if not refused:
            for key, value in changes.items():
                setattr(self, key, float(value) if isinstance(getattr(self, key), float) else value)
        return refused

    def public(self) -> dict:
        """The settings as JSON, secrets left out."""
        data = asdict(self)
        data.pop("token_secret")
        data["api_keys"] = len(self.api_keys)
        data["webhook_secrets"] = len(self.webhook_secrets)
        return data
