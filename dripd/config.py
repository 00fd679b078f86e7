"""TOML -> typed, validated settings. Every error names the key path and the rule.

Transport and detector plugins own their own per-mailbox tables (``[mailboxes.maildir]``,
``[mailboxes.smtp]``, ...): they hand the core a pydantic model for each table name, so an
unknown table is an error like any unknown key.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Collection, Literal, Mapping

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from dripd.api.limits import ApiLimits
from dripd.cluster.settings import ClusterConfig
from dripd.doctor.config import DoctorConfig
from dripd.store.postgres.settings import StoreConfig
from dripd.webhooks.settings import WebhookConfig, unique_names

EX_CONFIG = 78  # sysexits.h: configuration error


def _as_path(value: object) -> object:
    # Strict mode wants a Path instance, but TOML only has strings: a string becomes a Path
    # here, anything else (``state_dir = 5``) is refused with a readable rule.
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError("must be a path (a non-empty string)")
    return Path(value)


ConfigPath = Annotated[Path, BeforeValidator(_as_path)]
"""A path key: a TOML string, never a number or a boolean coerced to one."""

# Strict: `hourly_cap = "10"` or `= true` is refused, not coerced (a bool would become 1).
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Strict(BaseModel):
    model_config = STRICT


class DaemonConfig(_Strict):
    """The daemon process: where its state lives, the control socket, logging, retries, shutdown."""

    state_dir: ConfigPath = Field(default=Path("var"), description="Directory of the SQLite database (`dripd.sqlite3`).",
                                  json_schema_extra={"rule": "a writable directory, or one that can be created"})
    socket: ConfigPath = Field(
        default=Path("var/dripd.sock"),
        description="Control socket (mode 0660): dripctl and `curl --unix-socket` talk to it. "
                    "Under systemd socket activation the passed socket is used instead.",
        json_schema_extra={"rule": "its directory must exist (it is not created), unless it is `state_dir`"},
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level written to stderr (journald priorities under systemd).")
    # The scheduler keeps in memory only work due within this many seconds.
    horizon_seconds: float = Field(
        default=3600.0, gt=0, description="The scheduler keeps in memory only work due within this many seconds.")
    # At most this many due enrollments per mailbox are held in memory at once.
    queue_limit: int = Field(
        default=5000, gt=0, description="At most this many due enrollments per mailbox are held in memory at once.")
    retry_max_attempts: int = Field(
        default=6, gt=0, description="Transient failures (4xx replies, network errors) are retried this often...")
    retry_base_seconds: float = Field(
        default=60.0, gt=0, description="...with exponential backoff from this base, plus jitter...")
    retry_max_age_hours: float = Field(
        default=48.0, gt=0, description="...and for at most this long; then the send counts as a soft bounce.")
    resend_uncertain: bool = Field(
        default=False,
        description="After a crash, resend messages that may have gone out but cannot be looked up "
                    "(otherwise they are reported as uncertain, never resent).",
    )
    shutdown_grace_seconds: float = Field(
        default=25.0, gt=0, description="On SIGTERM, in-flight sends get this long to finish.")

    @property
    def database(self) -> Path:
        return self.state_dir / "dripd.sqlite3"


def _zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone name such as 'Europe/Berlin'") from None
    return value


class MailboxConfig(BaseModel):
    """One sending mailbox (repeat the table for more). Its caps hold across every sequence that uses it.

    Nested tables named after a plugin (`[mailboxes.maildir]`, `[mailboxes.smtp]`, `[mailboxes.imap]`)
    configure that plugin for this mailbox; any other nested table is an error. The table named by
    `transport` may be left out only when that plugin's keys all have defaults.
    """

    # Extra tables are plugin sections, checked against the plugins' own models afterwards.
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$",
                    description="Unique name of the mailbox; referred to as `mailboxId` in the API and sequence files.")
    address: str = Field(description="The From address.",
                         json_schema_extra={"rule": "a valid email address (stored normalized)"})
    name: str = Field(default="", description="The From display name.")
    dkim_selector: str | None = Field(default=None, description="DKIM selector `dripctl doctor` checks; common ones when unset.")
    domain: str | None = Field(  # Message-ID domain; defaults to the address's domain
        default=None, description="Domain of generated Message-IDs; defaults to the address's domain.")
    timezone: str = Field(default="UTC", description="The daily cap's day starts at local midnight in this zone.",
                          json_schema_extra={"rule": "an IANA time zone name such as `Europe/Berlin`"})
    daily_cap: int = Field(default=50, gt=0, description="Sends per mailbox-local calendar day (after warm-up).")
    hourly_cap: int = Field(default=10, gt=0, description="Hard limit: at most this many sends in any rolling 60 minutes.")
    daily_new_cap: int | None = Field(
        default=None, gt=0, description="First emails to new contacts per mailbox-local day; follow-ups keep "
                                        "flowing under `daily_cap` (left out: only `daily_cap` limits them).")
    holidays: list[str] = Field(
        default=[], description="Holiday calendars (`US`, `DE-BY`: the `holidays` package) on which this mailbox sends "
                                "nothing, in every sequence; judged on the local date of each sequence's window.",
        json_schema_extra={"rule": "a country code or country-subdivision the `holidays` package knows"})
    blackout_dates: list[dt.date] = Field(
        default=[], description="Single days (TOML dates) on which this mailbox sends nothing, in every sequence.")
    burst: int = Field(default=1, gt=0,
                       description="Token bucket capacity: 1 spaces sends evenly (every 6 minutes at 10 an hour).")
    jitter_seconds: float = Field(default=0.0, ge=0, description="Random extra spacing between sends, 0..N seconds.")
    warmup: list[tuple[int, int]] = Field(
        default=[],
        description="Warm-up ramp: `[days since warmup_start, daily cap]` stages, e.g. `[[7, 10], [14, 25]]` is "
                    "10 a day in week 1, 25 a day in week 2, then `daily_cap`.",
        json_schema_extra={"rule": "stage days positive and strictly increasing; stage caps positive"},
    )
    warmup_start: dt.date | None = Field(
        default=None, description="First day of the warm-up (a TOML date); leave it out for no warm-up.")
    transport: str = Field(default="maildir", description="The transport plugin that delivers this mailbox's mail.",
                           json_schema_extra={"rule": "a registered transport (`maildir`, `smtp`, or a plugin's)"})
    concurrency: int | None = Field(  # None: follow the transport (dripd.parallelism)
        default=None, gt=0,
        description="Sends in flight at once for this mailbox; by default as many as its transport carries "
                    "(SMTP: `connections`; others: 1). A value above or below the connections is warned about. "
                    "Unless it is below `connections`, the SMTP transport is handed sixteen sends per connection: they "
                    "wait on its thread, and a connection that frees starts the next at once (still `connections` "
                    "conversations at a time).")
    bounce_pause_threshold: float = Field(
        default=0.02, gt=0, le=1,
        description="Pause the mailbox when its hard bounces over the trailing `bounce_window_days` reach "
                    "this share of its sends (counted once it has sent `bounce_min_sends` in the window).")
    bounce_window_days: float = Field(default=28.0, gt=0,
                                      description="The trailing window of the mailbox's bounce guard, in days.")
    bounce_min_sends: int = Field(default=20, gt=0,
                                  description="The mailbox's bounce guard waits for this many sends in its window.")
    bounce_resume_grace_days: float = Field(
        default=7.0, ge=0, description="After an operator resumes the mailbox, the bounce guard does not pause it "
                                       "again for this many days.")

    _check_zone = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: list[str]) -> list[str]:
        from dripd.calendars import check_calendars
        from dripd.errors import ValidationError

        try:
            return list(check_calendars(value))
        except ValidationError as exc:
            raise ValueError(f"{exc.details['field']}: {exc.details['rule']}") from None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        from dripd.model import normalize_email

        try:
            return normalize_email(value)
        except Exception:
            raise ValueError("must be a valid email address") from None

    @field_validator("warmup", mode="before")
    @classmethod
    def _stages_as_pairs(cls, value: object) -> object:
        # TOML arrays arrive as lists; strict mode takes only real tuples, so each stage becomes
        # one (its items stay strictly checked).
        if isinstance(value, list):
            return [tuple(stage) if isinstance(stage, list) else stage for stage in value]
        return value

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        days = [d for d, _ in value]
        if any(d <= 0 for d in days) or days != sorted(set(days)):
            raise ValueError("stage days must be positive and strictly increasing")
        if any(cap <= 0 for _, cap in value):
            raise ValueError("stage caps must be positive integers")
        return value

    @property
    def message_id_domain(self) -> str:
        return self.domain or self.address.rsplit("@", 1)[1]

    def plugin_section(self, name: str) -> Mapping[str, Any] | None:
        extra = self.model_extra or {}
        return extra.get(name)


class ApiConfig(_Strict):
    """The control API. The Unix socket (`daemon.socket`) is always on; a TCP listener is optional.

    A TCP listener needs `tokens` or `token_files`: Bearer auth is mandatory on TCP.
    """

    listen: str | None = Field(  # "host:port" for the TCP listener; the Unix socket is always on
        default=None, description="`host:port` of the TCP listener, e.g. `127.0.0.1:8025`; off when unset.",
        json_schema_extra={"rule": "needs `tokens` or `token_files`"})
    tokens: list[str] = Field(  # "sha256:<hex>" digests of accepted Bearer tokens
        default=[], description="Digests of accepted Bearer tokens (`printf %s TOKEN | sha256sum`), never the tokens.",
        json_schema_extra={"rule": "each `sha256:` followed by 64 lower-case hex digits"})
    token_files: list[ConfigPath] = Field(
        default=[], description="Files holding accepted tokens (one a line: a token, or a `sha256:` digest), e.g. "
                                "systemd credentials; re-read when they change.",
        json_schema_extra={"rule": "each a readable, non-empty file (checked at start)"})
    max_concurrent_requests: int = Field(
        default=32, gt=0, le=1024,
        description="API requests handled at once (Unix socket and TCP together) while no send is in "
                    "progress; more wait their turn. Applies on reload.")
    max_concurrent_requests_while_sending: int = Field(
        default=2, gt=0, le=1024,
        description="The same limit while any mailbox has a send in progress: the API and the sends share "
                    "one event loop, and the sends go first. Applies on reload.")
    limits: ApiLimits = Field(default=ApiLimits(), description="Request body sizes and times (`[api.limits]`).")

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: list[str]) -> list[str]:
        for token in value:
            kind, _, digest = token.partition(":")
            if kind != "sha256" or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError("each token must be 'sha256:' followed by 64 lower-case hex digits")
        return value

    @model_validator(mode="after")
    def _needs_token(self) -> "ApiConfig":
        if self.listen and not (self.tokens or self.token_files):
            raise ValueError("a TCP listener needs tokens or token_files (Bearer auth is mandatory)")
        return self


def _host_port(value: str | None) -> str | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be 'host:port', e.g. '127.0.0.1:8080'")
    return value


class TrackingConfig(_Strict):
    """The public tracking listener (opens, clicks, unsubscribe pages); off unless listen is set."""

    listen: str | None = Field(
        default=None, description="`host:port` of the public tracking listener; tracking is off when unset.",
        json_schema_extra={"rule": "`host:port`; needs `base_url`"})
    base_url: str | None = Field(  # what links in messages point to, e.g. "https://t.example.com"
        default=None, description="What links in messages point to, e.g. `https://t.example.com`.",
        json_schema_extra={"rule": "an http:// or https:// URL without query; needs `listen`"})
    # HMAC key; without it, $CREDENTIALS_DIRECTORY/tracking (systemd LoadCredential=) is used.
    secret_file: ConfigPath | None = Field(
        default=None, description="HMAC key signing tracking links; without it, `$CREDENTIALS_DIRECTORY/tracking` "
                                  "(systemd `LoadCredential=`) is used.",
        json_schema_extra={"rule": "a readable file of at least 16 bytes (checked at start when `listen` is set)"})
    # Clicks this soon after the send are link scanners, not people (recorded, flagged).
    scanner_seconds: float = Field(
        default=5.0, ge=0, description="Clicks this soon after the send are link scanners, not people (recorded, flagged).")
    # Flagged hits (prefetchers, scanners) satisfy if_opened / if_clicked only when this is on.
    count_flagged: bool = Field(
        default=False,
        description="Flagged hits (prefetchers, scanners) satisfy `if_opened` / `if_clicked` only when this is on.")
    # Repeats of one hit add no information: one row per (message, kind, link) in this window.
    dedupe_seconds: float = Field(
        default=3600.0, ge=0, description="One stored hit per message, kind and link within this many seconds; "
                                          "repeats are answered but not stored (the funnel counts people, not fetches).")
    # However its tokens are replayed, one message never writes more rows than this.
    max_hits_per_message: int = Field(
        default=100, gt=0, description="At most this many hits are stored for one message; later ones are answered "
                                       "but not stored.")
    # Behind a reverse proxy: take the client address from the last X-Forwarded-For entry.
    proxy_headers: bool = Field(
        default=False,
        description="Behind a reverse proxy: take the client address from the last `X-Forwarded-For` entry.")

    _check_listen = field_validator("listen")(classmethod(lambda cls, v: _host_port(v)))

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/-]*)?", value):
            raise ValueError("must be an http:// or https:// URL without query, e.g. 'https://t.example.com'")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _together(self) -> "TrackingConfig":
        if self.listen and not self.base_url:
            raise ValueError("a tracking listener needs base_url (what links in messages point to)")
        if self.base_url and not self.listen:
            raise ValueError("base_url needs listen (the tracking listener serves those links)")
        return self


class MetricsConfig(_Strict):
    """Prometheus metrics. `/metrics` is always served on the control socket too."""

    listen: str | None = Field(  # "host:port" serving /metrics; /metrics is on the control socket too
        default=None, description="`host:port` of a TCP listener serving only `/metrics`; off when unset.",
        json_schema_extra={"rule": "`host:port`"})

    _check_listen = field_validator("listen")(classmethod(lambda cls, v: _host_port(v)))


class AnalyticsConfig(_Strict):
    """The funnel (delivered) and the mailbox health verdict (`dripctl mailboxes show`, `/api/mailboxes/{id}/stats`)."""

    # Accepted and no bounce within this long counts as delivered (a positive DSN counts at once).
    bounce_window_hours: float = Field(
        default=24.0, gt=0,
        description="Accepted and no bounce within this long counts as delivered (a positive DSN counts at once).")
    # Mailbox health: the recent window's rates against the trailing baseline before it.
    health_window_days: float = Field(
        default=7.0, gt=0, description="Mailbox health: the recent window whose rates are judged...")
    health_baseline_days: float = Field(
        default=28.0, gt=0, description="...against the trailing baseline of this many days before it.")
    health_min_sends: int = Field(  # fewer sends than this say too little
        default=20, gt=0, description="Fewer sends than this in the window say too little for a verdict.")
    health_collapse_ratio: float = Field(  # recent below baseline x this
        default=0.5, gt=0, lt=1, description="Warn when a recent rate falls below the baseline's times this.")
    health_bounce_rate: float = Field(  # bounce rate that warns by itself
        default=0.02, gt=0, lt=1, description="A bounce rate that warns by itself.")


class Config(_Strict):
    daemon: DaemonConfig = DaemonConfig()
    mailboxes: list[MailboxConfig] = Field(min_length=1, description="At least one mailbox.")
    api: ApiConfig = ApiConfig()
    tracking: TrackingConfig = TrackingConfig()
    metrics: MetricsConfig = MetricsConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    doctor: DoctorConfig = DoctorConfig()
    cluster: ClusterConfig = ClusterConfig()  # read only when the store is PostgreSQL (several nodes)
    webhooks: Annotated[list[WebhookConfig], AfterValidator(unique_names)] = Field(
        default=[], description="Outbound webhook endpoints (`[[webhooks]]`, see docs/webhooks.md).")
    store: StoreConfig = Field(default=StoreConfig(), description="The database: SQLite by default, or PostgreSQL.")

    @model_validator(mode="after")
    def _unique_ids(self) -> "Config":
        seen: set[str] = set()
        for mailbox in self.mailboxes:
            if mailbox.id in seen:
                raise ValueError(f"duplicate mailbox id {mailbox.id!r}")
            seen.add(mailbox.id)
        return self

    def mailbox(self, mailbox_id: str) -> MailboxConfig | None:
        # A plain loop: the send path asks several times per send, and next() over a generator
        # cost 0.8 us a call against 0.1 us with one mailbox (no cache to go stale on model_copy).
        for mailbox in self.mailboxes:
            if mailbox.id == mailbox_id:
                return mailbox
        return None


def parse_config(
    data: Mapping[str, Any],
    plugin_sections: Mapping[str, type[BaseModel]],
    transports: Collection[str],
) -> Config:
    """Validate a decoded TOML document; plugin tables are checked by their own models.
    ConfigError names the key and the rule (``ConfigErrors`` when several keys are wrong)."""
    # Deferred: dripd.config_load builds on the models above.
    from dripd.config_load import parse

    return parse(data, plugin_sections, transports)


def load_config(
    path: Path,
    plugin_sections: Mapping[str, type[BaseModel]],
    transports: Collection[str],
) -> Config:
    """Read and validate a TOML file; ConfigError names the key path (or the TOML syntax error)."""
    from dripd.config_load import load

    return load(path, plugin_sections, transports)


class LiveConfig:
    """The configuration in force. A reload swaps it here, in one place; every service that
    must follow reloads reads ``current`` when it acts instead of keeping its own copy."""

    def __init__(self, config: Config) -> None:
        self.current = config

    def swap(self, new: Config) -> Config:
        """Put ``new`` in force and return the configuration it replaced."""
        old, self.current = self.current, new
        return old
