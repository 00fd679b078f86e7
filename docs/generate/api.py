"""docs/api.md from the control API's OpenAPI document and its error classes."""

from __future__ import annotations

from typing import Any, Mapping

from docs.generate.common import GENERATED, md_table, number, own_doc


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the control API, from an app built without a running daemon."""
    from dripd.api.app import create_app

    return create_app(None).openapi()  # type: ignore[arg-type]  # handlers alone use the daemon


def _schema_type(schema: Mapping[str, Any], components: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if "anyOf" in schema:
        return " | ".join(_schema_type(s, components) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}), components)}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return f"object of {_schema_type(schema['additionalProperties'], components)}"
    return str(kind)


def _schema_rules(schema: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for option in schema.get("anyOf", [schema]):
        for key, sign in (("exclusiveMinimum", ">"), ("minimum", "≥"), ("exclusiveMaximum", "<"), ("maximum", "≤")):
            value = option.get(key)
            if value is not None and abs(value) < 2**53:
                parts.append(f"{sign} {number(value)}")
        if option.get("minLength") is not None:
            parts.append(f"at least {option['minLength']} character{'s' if option['minLength'] != 1 else ''}")
        if option.get("maxLength") is not None:
            parts.append(f"at most {option['maxLength']} characters")
        if option.get("pattern"):
            parts.append(f"matches `{option['pattern']}`")
    return "; ".join(parts)


def _json_default(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value is None:
        return "`null`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _body_lines(schema: Mapping[str, Any], components: Mapping[str, Any]) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return [f"Body: [`{name}`](#{name.lower()})."]
    return [f"Body: {_schema_type(schema, components)}."]


def _model_lines(name: str, schema: Mapping[str, Any], components: Mapping[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [" ".join(schema["description"].replace("``", "`").split()), ""]
    required = set(schema.get("required", []))
    rows = []
    for prop, sub in schema.get("properties", {}).items():
        default = _json_default(sub["default"]) if "default" in sub else ("**required**" if prop in required else "—")
        rows.append((f"`{prop}`", _schema_type(sub, components).replace(" | null", "").replace("null | ", ""),
                     default, _schema_rules(sub) or "—", (sub.get("description") or "").replace("``", "`")))
    if not any(row[-1] for row in rows):
        lines += md_table(("field", "type", "default", "rule"), [row[:-1] for row in rows])
    else:
        lines += md_table(("field", "type", "default", "rule", "description"), [(*r[:-1], r[-1] or "—") for r in rows])
    if schema.get("additionalProperties") is False:
        lines += ["", "Unknown fields are refused (`validation_error`)."]
    return lines


def error_codes() -> list[tuple[str, str, str]]:
    """(status, code, meaning) of every error class the API can answer, by status then code; the
    meaning is the class's docstring."""
    from dripd.api.errors import error_classes, status_of

    rows = [(str(status_of(cls)), f"`{cls.code}`", " ".join(own_doc(cls).replace("``", "`").split()))
            for cls in error_classes()]
    return sorted(rows, key=lambda row: (int(row[0]), row[1]))


def render_api() -> str:
    document = openapi_document()
    components = document.get("components", {}).get("schemas", {})
    info = document.get("info", {})
    lines = [
        "# Control API reference",
        "",
        GENERATED.format(kind="api"),
        "",
        f"{info.get('title', 'dripd control API')}, version {info.get('version', '?')}.",
        "",
        " ".join(str(info.get("description", "")).split()),
        "",
        "The running daemon serves this OpenAPI document itself at `/api/openapi.json`, e.g.",
        "`curl --unix-socket var/dripd.sock http://localhost/api/openapi.json` (there is no",
        "interactive page: FastAPI's loads its assets from a public CDN, blank offline).",
        "Request and response bodies are JSON with camelCase names unless stated otherwise. In a",
        "request body, a field given as `null` counts as not given (a required one is then missing).",
        "A request body must be sent as `Content-Type: application/json` (`text/csv` for CSV",
        "enrollment): another type answers 415 `unsupported_media_type`, a body that is not valid",
        "JSON 400 `bad_request`, and a value that breaks a rule 422 `validation_error`.",
        "",
        "Steps are answered in this API's names whatever the request used: type `send_email` comes",
        "back as `email`, `delay` as `wait`, and `html` as `body`; a wait comes back in the unit it",
        "was given in (`waitDays: 0.0007` stays `waitDays: 0.0007`). A field that does not apply to",
        "the step's type (`waitDays` on an email step) is refused, not dropped. A sequence's waits",
        "add up to at most 3,650 days; a subject is at most 998 characters, and an unclosed merge tag",
        "(`{{firstName`) is refused with its position.",
        "",
        "Contact data must be sendable where it enters (JSON or CSV): an address is ASCII with no",
        "backslash, quote, space or control character (the transports do not use SMTPUTF8), and a",
        "first or last name, which forms the To header, has no CR, LF or other control character.",
        "A CSV field longer than 131,072 characters makes its row invalid. Names of sequences and",
        "lists hold no control characters; a lone surrogate is refused in any text.",
        "",
        "Saving a sequence or its steps may answer `warnings`, a list of `{field, message}`, for",
        "what is allowed but probably a mistake: a second sequence with the same name, a",
        "conditional as the last step (it passes over nothing). They are also logged. A body",
        "without warnings has no `warnings` key.",
        "",
        "## Errors",
        "",
        "Every error, whatever the endpoint, has one shape:",
        "",
        "```json",
        '{"error": {"code": "validation_error", "message": "steps[0].type: is required",',
        '           "details": {"field": "steps[0].type", "rule": "is required"}}}',
        "```",
        "",
        "`code` is stable (match on it), `message` is for people, `details` depends on the code",
        "(`field` and `rule` for a validation error; more than one problem adds `errors`, a list of",
        "`{field, rule}`). The 422 responses listed below have this shape, not FastAPI's default.",
        "",
    ]
    lines += md_table(("status", "code", "meaning"), [(s, c, m or "—") for s, c, m in error_codes()])
    lines += ["", "## Endpoints", ""]
    endpoints: list[tuple[str, str, Mapping[str, Any]]] = []
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                endpoints.append((path, method.upper(), operation))
    lines += md_table(("method", "path", "summary"),
                    [(m, f"`{p}`", o.get("summary", "")) for p, m, o in endpoints])
    used: list[str] = []
    for path, method, operation in endpoints:
        lines += ["", f"### {method} {path}", ""]
        if operation.get("summary"):
            lines += [" ".join(operation["summary"].split()) + ".", ""]
        if operation.get("description"):
            lines += [" ".join(operation["description"].split()), ""]
        params = operation.get("parameters", [])
        if params:
            rows = []
            for p in params:
                schema = p.get("schema", {})
                kind = _schema_type(schema, components).replace(" | null", "")
                rule = _schema_rules(schema)
                default = _json_default(schema["default"]) if "default" in schema else ""
                text = p.get("description") or schema.get("description") or ""
                extra = "; ".join(x for x in (rule, f"default {default}" if default else "") if x)
                rows.append((f"`{p['name']}`", p.get("in", ""), kind, "yes" if p.get("required") else "no",
                             f"{text} ({extra})" if text and extra else text or extra or "—"))
            lines += md_table(("parameter", "in", "type", "required", "description"), rows) + [""]
        body = operation.get("requestBody")
        if body:
            for media, content in body.get("content", {}).items():
                schema = content.get("schema", {})
                if "$ref" in schema:
                    used.append(schema["$ref"].rsplit("/", 1)[1])
                lines += [f"Body (`{media}`): " + _body_lines(schema, components)[0][len("Body: "):], ""]
        responses = []
        for status, response in operation.get("responses", {}).items():
            if status == "422":
                responses.append("`422` validation error (the error shape above)")
                continue
            text = response.get("description", "")
            media = ", ".join(f"`{m}`" for m in response.get("content", {}))
            responses.append(f"`{status}` {text.lower()}" + (f" ({media})" if media else ""))
        if responses:
            lines += ["Responses: " + "; ".join(responses) + "."]
    models = [name for name in components if name in used]
    for name in sorted(components):
        schema = components[name]
        if name not in models and name not in ("HTTPValidationError", "ValidationError"):
            # Nested models (a sequence's steps) are documented too.
            if any(name in str(components[m]) for m in models):
                models.append(name)
    lines += ["", "## Request bodies", ""]
    for name in sorted(set(models)):
        lines += _model_lines(name, components[name], components) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"
