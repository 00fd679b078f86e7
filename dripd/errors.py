"""The one exception family of dripd.

Every error the core raises on purpose is a ``DripdError`` with a stable ``code``; dripctl
prints ``message``. The core knows nothing of HTTP: the API maps each class to a status in one
table (``dripd.api.errors``). A docstring here is the code's meaning in docs/api.md, so it is
written for the API's users.
"""

from __future__ import annotations

from typing import Any


class DripdError(Exception):
    """A dripd failure of no finer kind; the message says what failed."""

    code: str = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ConfigError(DripdError):
    """The configuration breaks a rule; `key` names the key path."""

    code = "config_error"

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"{key}: {rule}" if key else rule, details={"key": key, "rule": rule})
        self.key = key
        self.rule = rule


class ValidationError(DripdError):
    """A request or domain value breaks a rule; `field` names where."""

    code = "validation_error"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}", details={"field": field, "rule": rule})
        self.field = field
        self.rule = rule


class NotFound(DripdError):
    """No such sequence, step, contact, list, mailbox or path."""

    code = "not_found"


class Conflict(DripdError):
    """The request conflicts with the current state."""

    code = "conflict"


class AlreadyEnrolled(Conflict):
    """The contact is already enrolled in this sequence."""

    code = "already_enrolled"


class Suppressed(Conflict):
    """The address is on the suppression list (unsubscribed, bounced, complained or suppressed by hand)."""

    code = "suppressed"


class ReadOnly(Conflict):
    """The resource cannot be changed in its current state (a completed sequence)."""

    code = "read_only"


class InvalidTransition(Conflict):
    """The sequence's status does not allow this (e.g. starting a completed one)."""

    code = "invalid_transition"


class Unsupported(DripdError):
    """This daemon lacks what the request needs (e.g. no installed plugin provides it)."""

    code = "unsupported"


class StoreError(DripdError):
    """The database refused work (read-only, full, locked); what it had is kept."""

    code = "store_unavailable"


class FencedOut(StoreError):
    """This node no longer holds the mailbox's lease (expired or taken over): the ledger refused
    the write, so the step is not sent from here; the lease's new holder sends it."""

    code = "lease_lost"


class TransportError(DripdError):
    """A transport plugin failed in a way it could not classify."""

    code = "transport_error"


class PluginError(DripdError):
    """A plugin cannot be used: it failed to load or register, or implements a hook dripd does
    not have (a misspelling). ``plugin`` and ``hook`` name it where known."""

    code = "plugin_error"

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None) -> None:
        super().__init__(message, details={"plugin": plugin, "hook": hook})
        self.plugin = plugin
        self.hook = hook
