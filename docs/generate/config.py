"""docs/configuration.md from the pydantic models in ``dripd.config`` and the plugins'
per-mailbox tables."""

from __future__ import annotations

import datetime as dt
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from docs.generate.common import GENERATED, md_table, number, own_doc


def config_tables() -> list[tuple[str, type[BaseModel]]]:
    """Every TOML table and its model, in document order: the core's, then the plugins' per-mailbox tables."""
    from dripd.config import Config
    from dripd.plugins import Plugins

    tables: list[tuple[str, type[BaseModel]]] = []
    for name, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            tables.append((f"[{name}]", annotation))
            # Nested tables of a table (e.g. [api.limits]) follow it.
            tables += [(f"[{name}.{sub}]", inner.annotation) for sub, inner in annotation.model_fields.items()
                       if isinstance(inner.annotation, type) and issubclass(inner.annotation, BaseModel)]
        elif typing.get_origin(annotation) is list:
            (item,) = typing.get_args(annotation)
            tables.append((f"[[{name}]]", item))
            if name == "mailboxes":
                plugins = Plugins()
                sections = plugins.config_sections()
                # Transports first (the one a mailbox needs), then detectors; alphabetical within each.
                for section in sorted(sections, key=lambda n: (n not in plugins.transports, n)):
                    tables.append((f"[mailboxes.{section}]", sections[section]))
    return tables


_TYPE_NAMES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                               Path: "path", dt.date: "date", type(None): "none"}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:  # a validated alias such as ConfigPath names its base type
        return _type_name(args[0])
    if annotation in _TYPE_NAMES:
        return _TYPE_NAMES[annotation]
    if origin is Literal:
        return "string" if all(isinstance(a, str) for a in args) else " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (", optional" if type(None) in args else "")
    if origin is list:
        return f"array of {_type_name(args[0])}"
    if origin is tuple:
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return getattr(annotation, "__name__", str(annotation))


def _toml_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, BaseModel):
        return "(table)"
    return repr(value)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        # pydantic types a factory as maybe taking the validated data; the config's take nothing.
        return "`" + _toml_value(field.default_factory()) + "`"  # type: ignore[call-arg]
    if field.default is PydanticUndefined:
        return "**required**"
    text = _toml_value(field.default)
    return text if text == "unset" else f"`{text}`"


_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def _rules(field: FieldInfo) -> str:
    parts: list[str] = []
    for item in field.metadata:
        for attr, sign in _BOUNDS:
            if getattr(item, attr, None) is not None:
                parts.append(f"{sign} {number(getattr(item, attr))}")
        if getattr(item, "min_length", None) is not None:
            parts.append(f"at least {item.min_length} {'item' if field.annotation is not str else 'character'}"
                         f"{'s' if item.min_length != 1 else ''}")
        if getattr(item, "max_length", None) is not None:
            parts.append(f"at most {item.max_length} long")
        if getattr(item, "pattern", None) is not None:
            parts.append(f"matches `{item.pattern}`")
    literal = field.annotation
    if typing.get_origin(literal) in (typing.Union, types.UnionType):
        literal = next((a for a in typing.get_args(literal) if typing.get_origin(a) is Literal), literal)
    if typing.get_origin(literal) is Literal:
        parts.append("one of " + ", ".join(f"`{a}`" for a in typing.get_args(literal)))
    extra = field.json_schema_extra
    if isinstance(extra, Mapping) and extra.get("rule"):
        parts.append(str(extra["rule"]))
    return "; ".join(parts) or "—"


def config_keys() -> dict[str, list[str]]:
    """Every table and its keys (what the reference must mention)."""
    return {table: list(model.model_fields) for table, model in config_tables()}


def render_config() -> str:
    lines = [
        "# Configuration reference",
        "",
        GENERATED.format(kind="config"),
        "",
        "dripd reads one TOML file (`dripd -c FILE`; check one without starting the daemon with",
        "`dripd --check-config -c FILE`, exit status 0 or 78). Unknown keys and unknown tables are",
        "errors, and every error names the key path and the rule it breaks, e.g.",
        "`mailboxes[0].hourly_cap: must be a positive integer`. Relative paths are resolved against",
        "the directory dripd is started from. `etc/dripd.toml` is an annotated example of every table.",
        "",
        "Under systemd, `SIGHUP` (`systemctl reload dripd`) re-reads the file.",
        "",
        "Tables:",
        "",
    ]
    tables = config_tables()
    for table, _ in tables:
        anchor = "".join(c for c in table.lower().replace(".", "").replace(" ", "-") if c.isalnum() or c in "-_")
        lines.append(f"- [`{table}`](#{anchor})")
    for table, model in tables:
        lines += ["", f"## {table}", ""]
        doc = own_doc(model)
        if doc:
            lines += [" ".join(paragraph.split()) + "\n" for paragraph in doc.split("\n\n")]
        rows = [(f"`{name}`", _type_name(field.annotation), _default(field), _rules(field), field.description or "")
                for name, field in model.model_fields.items()]
        lines += md_table(("key", "type", "default", "rule", "description"), rows)
    return "\n".join(lines) + "\n"
