"""The one exception family of dripd.

Every error the core raises on purpose is a ``DripdError`` with a stable ``code``; the API
maps ``http_status`` and ``code`` to its JSON error body, dripctl prints ``message``.
"""

from __future__ import annotations

from typing import Any


class DripdError(Exception):
    """Base of every deliberate dripd error."""

    code: str = "error"
    http_status: int = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ConfigError(DripdError):
    """The configuration file is invalid; ``key`` names the offending key path."""

    code = "config_error"
    http_status = 422

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"{key}: {rule}" if key else rule, details={"key": key, "rule": rule})
        self.key = key
        self.rule = rule


class ValidationError(DripdError):
    """A request or domain value breaks a rule; ``field`` names where."""

    code = "validation_error"
    http_status = 422

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}", details={"field": field, "rule": rule})
        self.field = field
        self.rule = rule


class NotFound(DripdError):
    code = "not_found"
    http_status = 404


class Conflict(DripdError):
    code = "conflict"
    http_status = 409


class AlreadyEnrolled(Conflict):
    code = "already_enrolled"


class ReadOnly(Conflict):
    code = "read_only"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class Suppressed(Conflict):
    """The address is on the suppression list (bounced, unsubscribed, complained)."""

    code = "suppressed"


class StoreError(DripdError):
    """The database refused work (read-only, full, locked); what it had is kept."""

    code = "store_unavailable"
    http_status = 503


class TransportError(DripdError):
    """A transport plugin failed in a way it could not classify."""

    code = "transport_error"
    http_status = 502


class PluginError(DripdError):
    """A plugin cannot be used: it failed to load or register, or implements a hook dripd does
    not have (a misspelling). ``plugin`` and ``hook`` name it where known."""

    code = "plugin_error"

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None) -> None:
        super().__init__(message, details={"plugin": plugin, "hook": hook})
        self.plugin = plugin
        self.hook = hook
