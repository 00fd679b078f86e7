"""``[store]`` in the config file: which database backs this node.

Absent (or without ``url``): the embedded SQLite database at ``[daemon] state_dir``, as always.
With ``url = "postgresql://user@host/db"``: PostgreSQL, shared by every node configured with
the same URL. The password never sits in the config file: it comes from ``password_file`` or,
when that is absent, from libpq's own sources (``PGPASSWORD`` in the daemon's environment, or
``~/.pgpass``). A URL carrying a password is refused at load, so the config file can be shared,
logged and shown safely; the password read from the file is kept only by the store's driver.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMES = ("postgresql", "postgres")


class StoreConfig(BaseModel):
    """The database of this node (``[store]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    url: str | None = Field(
        default=None, max_length=2000,
        description="A libpq URL, `postgresql://user@host:port/dbname` (several dripd nodes share it); "
                    "absent: SQLite at `[daemon] state_dir`.",
        json_schema_extra={"rule": "postgresql:// or postgres://, without a password (use password_file or PGPASSWORD)"})
    password_file: Path | None = Field(
        default=None,
        description="File holding the database password (one line). Absent: libpq's PGPASSWORD or ~/.pgpass.",
        json_schema_extra={"rule": "a readable file; only with url"})
    pool_size: int = Field(default=8, gt=0, le=100,
                           description="Database sessions this node opens at most (one per operation in flight).")

    @field_validator("url")
    @classmethod
    def _no_inline_password(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("password_file", mode="before")
    @classmethod
    def _as_path(cls, value: object) -> object:
        if isinstance(value, str) and value:
            return Path(value)
        return value

    @field_validator("password_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_password_file(value)
        return value

    @model_validator(mode="after")
    def _password_needs_url(self) -> "StoreConfig":
        if self.password_file is not None and self.url is None:
            raise ValueError("password_file is only for a PostgreSQL url (SQLite has no password)")
        return self

    @property
    def postgresql(self) -> bool:
        return self.url is not None

    def password(self) -> str | None:
        """The password to give the driver (read now, never kept here), or None for libpq's own."""
        return read_password_file(self.password_file) if self.password_file is not None else None


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a store URL (the rule in words, never the URL: it may hold a secret)."""
    try:
        parts = urlsplit(url)
        inline = parts.password is not None or "password" in parse_qs(parts.query)
    except ValueError:
        return "must be a postgresql:// URL"
    if parts.scheme not in SCHEMES:
        return "must be a postgresql:// URL"
    if inline:
        return "must not carry a password: put it in [store] password_file, or PGPASSWORD in the daemon's environment"
    return None


def read_password_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise ValueError(f"{path} is empty: the password is its first line")
    return lines[0]
