"""The email step's form beyond subject and body: the plain-text part, the thread flag, and the
A/B variants (rows of name, weight, subject, body, text) with the auto-winner rule, to and from
the API's step fields.

The console holds no rule of its own: a bad name or weight goes to the API as typed and the
API's answer names it (``steps[0].variants[1].name: ...``). What is decided here is only the
form's shape: which rows count as a variant, and how many empty rows are offered.
"""

from __future__ import annotations

from typing import Any, Mapping

from dripd.variants import MAX_VARIANTS

VARIANT_FIELDS = ("name", "weight", "subject", "body", "text")


def _field(index: int, name: str) -> str:
    return f"variant-{index}-{name}"


def _rows_with_room(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The filled rows and empty ones after them: one more than are filled (a new variant is a
    row away without JavaScript), at least two (a test needs two), at most the API's limit."""
    wanted = min(MAX_VARIANTS, max(2, len(rows) + 1))
    blank = {name: "" for name in VARIANT_FIELDS}
    return rows[:MAX_VARIANTS] + [{**blank, "index": i, "saved": False} for i in range(len(rows), wanted)]


def _filled(row: Mapping[str, Any]) -> bool:
    return any(str(row.get(name) or "").strip() for name in VARIANT_FIELDS)


def posted_rows(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The variant rows of a posted form, in order, without the empty ones."""
    rows = []
    for index in range(MAX_VARIANTS):
        row: dict[str, Any] = {name: str(form.get(_field(index, name)) or "") for name in VARIANT_FIELDS}
        row["remove"] = form.get(_field(index, "remove")) == "on"
        if _filled(row):
            rows.append(row)
    return rows


def form_values(form: Mapping[str, Any]) -> dict[str, Any]:
    """What the step form shows after a post (a refused one keeps what was typed), or for a new
    step when ``form`` is empty."""
    rows = [{**row, "index": i, "saved": True} for i, row in enumerate(posted_rows(form))]
    values: dict[str, Any] = {key: value for key, value in form.items() if isinstance(value, str)}
    values["variant_rows"] = _rows_with_room(rows)
    values["has_variants"] = bool(rows)
    return values


def stored_values(step: Mapping[str, Any]) -> dict[str, Any]:
    """The form of a step as the API answers it."""
    values: dict[str, Any] = {key: value for key, value in step.items() if key not in ("variants", "autoWinner")}
    values["text"] = step.get("text") or ""
    values["newThread"] = "on" if step.get("thread") is False else ""
    rows = [{"name": str(v.get("name", "")), "weight": str(v.get("weight", "")),
             "subject": v.get("subject") or "", "body": v.get("body") or "", "text": v.get("text") or "",
             "index": i, "saved": True, "remove": False} for i, v in enumerate(step.get("variants") or [])]
    values["variant_rows"] = _rows_with_room(rows)
    values["has_variants"] = bool(rows)
    rule = step.get("autoWinner") or {}
    values["autoWinnerAfter"] = str(rule.get("after", ""))
    values["autoWinnerMetric"] = str(rule.get("metric", "replied"))
    return values


def email_extras(form: Mapping[str, Any]) -> dict[str, Any]:
    """The email step's fields beyond subject and body, as the API takes them. The step is sent
    whole (with ``type``, the API replaces it), so a variant or rule left out is removed."""
    out: dict[str, Any] = {}
    text = str(form.get("text") or "")
    if text.strip():
        out["text"] = text
    if form.get("newThread") == "on":
        out["thread"] = False
    variants = []
    for row in posted_rows(form):
        if row["remove"]:
            continue
        variant: dict[str, Any] = {}
        for name in ("name", "subject", "body", "text"):
            if row[name].strip():
                variant[name] = row[name].strip() if name == "name" else row[name]
        weight = row["weight"].strip()
        if weight:
            variant["weight"] = int(weight) if weight.isdigit() else weight  # the API names a bad weight
        variants.append(variant)
    if variants:
        out["variants"] = variants
    after = str(form.get("autoWinnerAfter") or "").strip()
    if after:
        metric = str(form.get("autoWinnerMetric") or "replied")
        out["autoWinner"] = {"after": int(after) if after.isdigit() else after, "metric": metric}
    return out
