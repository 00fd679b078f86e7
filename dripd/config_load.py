"""Reading and validating the TOML file: every broken key is reported in one run, each as
``key.path: rule`` in words a user can act on (not pydantic's own phrasing).

The models live in ``dripd.config``; plugin tables are validated here by the plugins' own models,
in strict mode like the core's, so ``hourly_cap = "10"`` or ``port = "587"`` is refused everywhere.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping

import pydantic
from pydantic import BaseModel

from dripd.config import Config
from dripd.errors import ConfigError


class ConfigErrors(ConfigError):
    """Several keys break rules: ``problems`` holds each one (this error's key is the first's)."""

    def __init__(self, problems: list[ConfigError]) -> None:
        super().__init__(problems[0].key, problems[0].rule)
        self.problems = problems
        self.message = "; ".join(problem.message for problem in problems)


def problems_of(exc: ConfigError) -> list[ConfigError]:
    """Every problem an error carries (one for a plain ConfigError)."""
    return list(exc.problems) if isinstance(exc, ConfigErrors) else [exc]


def raise_all(problems: list[ConfigError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems)


def _key_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("function"):
            out += f".{part}" if out else str(part)
    return out


# Strict-mode type errors, said in TOML's words (the type to write, and that quotes matter).
_TYPE_RULES = {
    "int_type": "must be an integer (no quotes, not true/false)",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number (no quotes)",
    "bool_type": "must be true or false (no quotes)",
    "string_type": "must be a string (in quotes)",
    "date_type": "must be a TOML date such as 2026-11-01 (no quotes, no time)",
    "list_type": "must be an array",
    "tuple_type": "must be an array of two integers",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "extra_forbidden": "unknown key",
    "missing": "is required",
}


def rule_of(error: Mapping[str, Any]) -> str:
    """One pydantic error as a rule in words."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _TYPE_RULES:
        return _TYPE_RULES[kind]
    if kind == "greater_than" and ctx.get("gt") == 0:
        return "must be a positive number" if isinstance(error.get("input"), float) else "must be a positive integer"
    if kind == "greater_than_equal" and ctx.get("ge") == 0:
        return "must not be negative"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        what = "item(s)" if isinstance(error.get("input"), list) else "character(s)"
        return f"must have {word} {bound} {what}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern', '')}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    message = str(error["msg"]).replace("Input should be", "must be")
    return message[0].lower() + message[1:]


def _problems(exc: pydantic.ValidationError, prefix: str = "") -> list[ConfigError]:
    out: list[ConfigError] = []
    for error in exc.errors(include_url=False):
        key = _key_path(error["loc"])
        if prefix:
            key = f"{prefix}.{key}" if key else prefix
        out.append(ConfigError(key, rule_of(error)))
    return out


def _plugin_tables(config: Config, plugin_sections: Mapping[str, type[BaseModel]],
                   transports: Collection[str]) -> list[ConfigError]:
    out: list[ConfigError] = []
    for index, mailbox in enumerate(config.mailboxes):
        tables = dict(mailbox.model_extra or {})
        for name, value in tables.items():
            model = plugin_sections.get(name)
            where = f"mailboxes[{index}].{name}"
            if model is None:
                out.append(ConfigError(where, "unknown key"))
            elif not isinstance(value, dict):
                out.append(ConfigError(where, "must be a table"))
            else:
                try:
                    model.model_validate(value, strict=True)
                except pydantic.ValidationError as exc:
                    out.extend(_problems(exc, where))
        if mailbox.transport not in transports:
            known = ", ".join(sorted(transports)) or "none"
            out.append(ConfigError(f"mailboxes[{index}].transport", f"unknown transport (known: {known})"))
            continue
        model = plugin_sections.get(mailbox.transport)
        if model is not None and mailbox.transport not in tables:
            try:
                model.model_validate({}, strict=True)
            except pydantic.ValidationError as exc:
                out.extend(_problems(exc, f"mailboxes[{index}].{mailbox.transport}"))
    return out


def parse(data: Mapping[str, Any], plugin_sections: Mapping[str, type[BaseModel]],
          transports: Collection[str]) -> Config:
    try:
        config = Config.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = _problems(exc)
        # The plugin tables of the mailboxes that did parse are worth reporting in the same run.
        raise_all(problems + _tables_of_raw(data, plugin_sections, transports, {p.key for p in problems}))
        raise  # unreachable: raise_all raised
    raise_all(_plugin_tables(config, plugin_sections, transports))
    return config


def _tables_of_raw(data: Mapping[str, Any], plugin_sections: Mapping[str, type[BaseModel]],
                   transports: Collection[str], reported: set[str]) -> list[ConfigError]:
    """Plugin-table problems of a document whose core part failed, read from the raw tables:
    a bad cap in a mailbox does not hide a bad SMTP port in the same or another one."""
    from dripd.config import MailboxConfig

    out: list[ConfigError] = []
    mailboxes = data.get("mailboxes")
    if not isinstance(mailboxes, list):
        return out
    core_keys = set(MailboxConfig.model_fields)
    for index, raw in enumerate(mailboxes):
        if not isinstance(raw, dict):
            continue
        tables = {k: v for k, v in raw.items() if k not in core_keys}
        try:
            mailbox = MailboxConfig.model_construct(**{k: v for k, v in raw.items() if k in core_keys})
            mailbox.__pydantic_extra__ = tables
        except Exception:
            continue
        fake = Config.model_construct(mailboxes=[mailbox])
        transport = raw.get("transport", "maildir")
        for problem in _plugin_tables(fake, plugin_sections, transports if isinstance(transport, str) else ()):
            key = problem.key.replace("mailboxes[0]", f"mailboxes[{index}]", 1)
            if key not in reported:
                out.append(ConfigError(key, problem.rule))
    return out


def load(path: Path, plugin_sections: Mapping[str, type[BaseModel]], transports: Collection[str]) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError("", f"{path} is not valid UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path}: invalid TOML: {exc}") from None
    return parse(data, plugin_sections, transports)
