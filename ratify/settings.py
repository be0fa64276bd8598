"""Ratify's settings: one immutable value read once from ``RATIFY_*`` environment variables.

Nothing imports settings as a global: ``load_settings()`` builds the value and the app, the
worker and the CLI receive it as an argument.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from ratify.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("en", "es")

Environment = Literal["development", "production"]


def _doc(env: str, description: str) -> dict[str, str]:
    return {"env": env, "doc": description}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every field names the environment variable that sets it (see README's table)."""

    env: Environment = field(
        default="development",
        metadata=_doc("RATIFY_ENV", "`development` or `production`."),
    )
    database_url: str = field(
        default="",
        metadata=_doc(
            "RATIFY_DATABASE_URL",
            "SQLAlchemy URL. Default: SQLite at `<var dir>/ratify.db`. PostgreSQL: "
            "`postgresql+psycopg://user:password@host:5432/ratify`.",
        ),
    )
    secret_key: str = field(
        default="",
        repr=False,
        metadata=_doc(
            "RATIFY_SECRET_KEY",
            "Signs sessions and derives every other key. Required in production (at least 32 "
            "characters); in development it is generated once into `<var dir>/secret_key` "
            "(mode 0600).",
        ),
    )
    base_url: str = field(
        default="http://127.0.0.1:8000",
        metadata=_doc("RATIFY_BASE_URL", "Public address used in links sent to people."),
    )
    default_language: str = field(
        default="en",
        metadata=_doc("RATIFY_DEFAULT_LANGUAGE", "Language when nothing else chooses one."),
    )
    phone_region: str = field(
        default="US",
        metadata=_doc(
            "RATIFY_PHONE_REGION",
            "Region (ISO 3166 two-letter code) assumed for phone numbers written without a "
            "country code.",
        ),
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "RATIFY_TRUSTED_PROXIES",
            "Comma-separated addresses or networks of reverse proxies whose "
            "`X-Forwarded-For`/`X-Forwarded-Proto` are believed. Default: none.",
        ),
    )
    var_dir: Path = field(
        default=PROJECT_ROOT / "var",
        metadata=_doc("RATIFY_VAR_DIR", "Directory for the SQLite file and the dev secret key."),
    )
    log_format: Literal["json", "console"] = field(
        default="console",
        metadata=_doc(
            "RATIFY_LOG_FORMAT",
            "`json` or `console`. Default: `json` in production, `console` otherwise.",
        ),
    )
    log_level: str = field(default="INFO", metadata=_doc("RATIFY_LOG_LEVEL", "Log level."))
    session_max_age: int = field(
        default=12 * 3600,
        metadata=_doc("RATIFY_SESSION_MAX_AGE", "Seconds a staff login lasts."),
    )
    max_body_bytes: int = field(
        default=1024 * 1024,
        metadata=_doc("RATIFY_MAX_BODY_BYTES", "Largest request body for ordinary forms."),
    )
    max_upload_bytes: int = field(
        default=50 * 1024 * 1024,
        metadata=_doc("RATIFY_MAX_UPLOAD_BYTES", "Largest request body on upload routes."),
    )
    max_form_fields: int = field(
        default=200,
        metadata=_doc("RATIFY_MAX_FORM_FIELDS", "Most fields one form submission may hold."),
    )
    login_max_failures_per_account: int = field(
        default=5,
        metadata=_doc(
            "RATIFY_LOGIN_MAX_FAILURES_PER_ACCOUNT",
            "Failed logins on one account within the window before it is throttled.",
        ),
    )
    login_max_failures_per_address: int = field(
        default=20,
        metadata=_doc(
            "RATIFY_LOGIN_MAX_FAILURES_PER_ADDRESS",
            "Failed logins from one client address within the window before it is throttled.",
        ),
    )
    login_throttle_window: int = field(
        default=15 * 60,
        metadata=_doc("RATIFY_LOGIN_THROTTLE_WINDOW", "Seconds the login throttle looks back."),
    )
    password_token_max_age: int = field(
        default=72 * 3600,
        metadata=_doc(
            "RATIFY_PASSWORD_TOKEN_MAX_AGE", "Seconds a set-password or reset link stays valid."
        ),
    )
    argon2_time_cost: int = field(
        default=3, metadata=_doc("RATIFY_ARGON2_TIME_COST", "argon2id iterations.")
    )
    argon2_memory_kib: int = field(
        default=65536, metadata=_doc("RATIFY_ARGON2_MEMORY_KIB", "argon2id memory in KiB.")
    )
    argon2_parallelism: int = field(
        default=4, metadata=_doc("RATIFY_ARGON2_PARALLELISM", "argon2id lanes.")
    )
    db_pool_size: int = field(
        default=10,
        metadata=_doc(
            "RATIFY_DB_POOL_SIZE",
            "PostgreSQL connections kept per process, and how many requests it runs at once.",
        ),
    )
    import_background_rows: int = field(
        default=5000,
        metadata=_doc(
            "RATIFY_IMPORT_BACKGROUND_ROWS",
            "Roster files with more rows than this are checked and applied by `ratify worker`, "
            "with a page showing progress; smaller ones at once.",
        ),
    )
    import_check_processes: int = field(
        default=1,
        metadata=_doc(
            "RATIFY_IMPORT_CHECK_PROCESSES",
            "How many processes `ratify worker` and the CLI use to check the rows of a large "
            "roster file (20,000 rows or more). On 2 cores a second one saves little and "
            "costs its share of the roster in memory; try one per core from 4 cores up.",
        ),
    )
    freeze_in_request_members: int = field(
        default=20_000,
        metadata=_doc(
            "RATIFY_FREEZE_IN_REQUEST_MEMBERS",
            "Scheduling a vote in an organization with more members than this freezes its "
            "voter list in `ratify worker` (about 25 s for 300,000), the vote's page showing "
            "it is under way; smaller lists are frozen at once.",
        ),
    )
    smtp_host: str = field(
        default="",
        metadata=_doc(
            "RATIFY_SMTP_HOST",
            "Mail server for notices and password resets. Default: none in production "
            "(email is not sent); in development, a local catcher that `ratify serve "
            "--with-worker` starts, listed at `/dev/mail`.",
        ),
    )
    smtp_port: int = field(
        default=587,
        metadata=_doc("RATIFY_SMTP_PORT", "Mail server port (587 submission, 465 TLS)."),
    )
    smtp_security: Literal["starttls", "tls", "none"] = field(
        default="starttls",
        metadata=_doc(
            "RATIFY_SMTP_SECURITY",
            "`starttls` (default), `tls` (implicit, usually port 465) or `none` (a relay on "
            "the same host only).",
        ),
    )
    smtp_username: str = field(
        default="", metadata=_doc("RATIFY_SMTP_USERNAME", "Mail server login, if it asks.")
    )
    smtp_password: str = field(
        default="",
        repr=False,
        metadata=_doc("RATIFY_SMTP_PASSWORD", "Mail server password (never logged)."),
    )
    mail_from: str = field(
        default="Ratify <ratify@localhost>",
        metadata=_doc(
            "RATIFY_MAIL_FROM", "Sender of every email, e.g. `Local 42 Votes <votes@example.org>`."
        ),
    )
    email_per_second: float = field(
        default=50.0,
        metadata=_doc(
            "RATIFY_EMAIL_PER_SECOND",
            "Most emails one `ratify worker` process sends per second (your mail provider's "
            "limit divided by the number of workers).",
        ),
    )
    sms_base_url: str = field(
        default="",
        metadata=_doc(
            "RATIFY_SMS_BASE_URL",
            "SMS gateway with Twilio's REST API shape, e.g. `https://api.twilio.com`. "
            "Default: none (texts are not sent).",
        ),
    )
    sms_account: str = field(
        default="", metadata=_doc("RATIFY_SMS_ACCOUNT", "SMS gateway account id (Twilio SID).")
    )
    sms_token: str = field(
        default="",
        repr=False,
        metadata=_doc(
            "RATIFY_SMS_TOKEN",
            "SMS gateway auth token: signs requests to it and checks its webhook signatures.",
        ),
    )
    sms_from: str = field(
        default="", metadata=_doc("RATIFY_SMS_FROM", "Sending number (E.164) or sender id.")
    )
    sms_per_second: float = field(
        default=1.0,
        metadata=_doc(
            "RATIFY_SMS_PER_SECOND", "Most texts one `ratify worker` process sends per second."
        ),
    )
    worker_poll_seconds: float = field(
        default=1.0,
        metadata=_doc("RATIFY_WORKER_POLL_SECONDS", "How often an idle `ratify worker` looks."),
    )

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")


def _parse(name: str, raw: str, current: Any) -> Any:
    if isinstance(current, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a whole number, not {raw!r}.") from None
    if isinstance(current, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, not {raw!r}.") from None
    if isinstance(current, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(current, Path):
        return Path(raw)
    return raw.strip()


def _dev_secret_key(var_dir: Path) -> str:
    """Generate the development secret once, readable only by its owner."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read ``RATIFY_*`` variables (``os.environ`` by default) into a checked ``Settings``."""
    environ = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = f.metadata["env"]
        if name in environ and environ[name] != "":
            values[f.name] = _parse(name, environ[name], getattr(defaults, f.name))
    if "RATIFY_LOG_FORMAT" not in environ and values.get("env") == "production":
        values["log_format"] = "json"
    values.update(overrides)
    return validate(Settings(**values))


def validate(settings: Settings) -> Settings:
    """Refuse unusable settings with a message that says what to do."""
    if settings.env not in ("development", "production"):
        raise ConfigurationError(
            f"RATIFY_ENV must be 'development' or 'production', not {settings.env!r}."
        )
    if settings.log_format not in ("json", "console"):
        raise ConfigurationError("RATIFY_LOG_FORMAT must be 'json' or 'console'.")
    if settings.smtp_security not in ("starttls", "tls", "none"):
        raise ConfigurationError("RATIFY_SMTP_SECURITY must be 'starttls', 'tls' or 'none'.")
    if settings.email_per_second <= 0 or settings.sms_per_second <= 0:
        raise ConfigurationError(
            "RATIFY_EMAIL_PER_SECOND and RATIFY_SMS_PER_SECOND must be more than 0."
        )
    if settings.import_check_processes < 1:
        raise ConfigurationError("RATIFY_IMPORT_CHECK_PROCESSES must be 1 or more.")
    if settings.freeze_in_request_members < 0:
        raise ConfigurationError("RATIFY_FREEZE_IN_REQUEST_MEMBERS must be 0 or more.")
    if settings.default_language not in LANGUAGES:
        raise ConfigurationError(
            f"RATIFY_DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}, "
            f"not {settings.default_language!r}."
        )
    import phonenumbers

    if settings.phone_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigurationError(
            f"RATIFY_PHONE_REGION must be a two-letter region code such as US, not "
            f"{settings.phone_region!r}."
        )
    proxies = []
    for proxy in settings.trusted_proxies:
        try:
            network = ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"RATIFY_TRUSTED_PROXIES holds {proxy!r}, which is not an IP address or network."
            ) from None
        # Normalized ("10.0.0.1/8" -> "10.0.0.0/8"): uvicorn ignores what it cannot parse.
        proxies.append(str(network.network_address) if network.num_addresses == 1 else str(network))
    if not settings.base_url.startswith(("http://", "https://")):
        raise ConfigurationError("RATIFY_BASE_URL must start with http:// or https://.")
    secret = settings.secret_key
    if not secret:
        if settings.production:
            raise ConfigurationError(
                "RATIFY_SECRET_KEY is not set. In production Ratify will not start without it: "
                "it signs every session and derives every voting credential. Generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` and keep it safe."
            )
        secret = _dev_secret_key(settings.var_dir)
    if len(secret) < 32:
        raise ConfigurationError("RATIFY_SECRET_KEY must be at least 32 characters long.")
    url = settings.database_url or f"sqlite:///{settings.var_dir / 'ratify.db'}"
    return replace(
        settings,
        secret_key=secret,
        database_url=url,
        trusted_proxies=tuple(proxies),
        phone_region=settings.phone_region.upper(),
    )


def documented_settings() -> list[tuple[str, str]]:
    """(environment variable, description) for every setting, in declaration order."""
    return [(f.metadata["env"], f.metadata["doc"]) for f in fields(Settings)]
