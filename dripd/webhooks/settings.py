"""``[[webhooks]]`` in the config file: one table per endpoint. The secret comes from a file or
an environment variable, never inline, so the config file can be shared and logged safely."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dripd.events import EventKind
from dripd.webhooks.records import EndpointSpec
from dripd.webhooks.signing import secret_problem

KIND_NAMES = tuple(kind.value for kind in EventKind)


class WebhookConfig(BaseModel):
    """One webhook endpoint (``[[webhooks]]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$",
                      description="Unique name of the endpoint (dripctl and the API address it by name or id).")
    url: str = Field(max_length=2000, description="Where events are POSTed (http:// or https://).")
    secret_file: Path | None = Field(default=None, description="File holding the signing secret, `whsec_<base64>`.")
    secret_env: str | None = Field(default=None, min_length=1,
                                   description="Environment variable holding the signing secret instead.")
    events: list[str] | None = Field(default=None, description="Event kinds to deliver; absent means every kind.")
    retry_hours: float = Field(default=24.0, gt=0, le=24 * 30,
                               description="How long a failing delivery is retried before it is marked failed.")
    retry_first_seconds: float = Field(default=5.0, gt=0, le=3600,
                                       description="The first retry's delay; each next one doubles (jittered, at most an hour).")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300, description="Per attempt: connect, send and answer.")
    concurrency: int = Field(default=4, gt=0, le=64, description="Deliveries in flight at once to this endpoint.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("events")
    @classmethod
    def _known_kinds(cls, value: list[str] | None) -> list[str] | None:
        return known_kinds(value)

    @field_validator("secret_file")
    @classmethod
    def _readable_secret(cls, value: Path | None) -> Path | None:
        if value is not None:
            _check(read_secret_file(value))
        return value

    @field_validator("secret_env")
    @classmethod
    def _set_secret(cls, value: str | None) -> str | None:
        if value is not None:
            secret = os.environ.get(value)
            if secret is None:
                raise ValueError(f"environment variable {value} is not set")
            _check(secret.strip())
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> "WebhookConfig":
        if (self.secret_file is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret_file and secret_env")
        return self

    def spec(self, environ: Mapping[str, str] | None = None) -> EndpointSpec:
        """The endpoint this table describes, with its secret read now."""
        env = os.environ if environ is None else environ
        secret = read_secret_file(self.secret_file) if self.secret_file is not None else env[str(self.secret_env)].strip()
        return EndpointSpec(self.name, self.url, secret, tuple(self.events) if self.events else None,
                            self.retry_hours, self.retry_first_seconds, self.timeout_seconds, self.concurrency)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint, or None (the API checks the same rule)."""
    rule = "must be an http:// or https:// URL with a host"
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # .port raises on a bad one
    except (ValueError, UnicodeError):
        return rule
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() or ord(c) < 32 for c in url):
        return rule
    return None


def read_secret_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None


def _check(secret: str) -> None:
    problem = secret_problem(secret)
    if problem is not None:
        raise ValueError(f"the secret {problem}")


def unique_names(endpoints: list[WebhookConfig]) -> list[WebhookConfig]:
    seen: set[str] = set()
    for endpoint in endpoints:
        if endpoint.name in seen:
            raise ValueError(f"duplicate webhook name {endpoint.name!r}")
        seen.add(endpoint.name)
    return endpoints


def known_kinds(value: list[str] | None) -> list[str] | None:
    """The rule on an endpoint's ``events`` (config and API alike): none means every kind; a
    list names at least one kind, each a kind of the event stream."""
    if value is None:
        return None
    if not value:
        raise ValueError("must name at least one event kind (leave it out for every kind)")
    unknown = [kind for kind in value if kind not in KIND_NAMES]
    if unknown:
        raise ValueError(f"unknown event kind {unknown[0]!r} (known: {', '.join(KIND_NAMES)})")
    return value
