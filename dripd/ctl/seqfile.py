"""Sequences as code: a TOML file holds a sequence's settings and steps with the API's names.

``apply`` plans the changes that make the daemon's sequence match the file (create it, patch
settings, edit, append or remove steps by index), prints them, then makes them; ``export``
writes the file back.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from dripd.ctl.client import Client, CtlError

# Keys of a sequence response that are not settings a file can set.
_NOT_SETTINGS = {"id", "status", "statusReason", "createdAt", "updatedAt", "contacts", "steps", "stepCount"}


def load(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CtlError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CtlError(f"{path}: invalid TOML: {exc}") from None
    for key in ("name", "mailboxId"):
        if not isinstance(data.get(key), str):
            raise CtlError(f"{path}: {key} is required (a string)")
    if not isinstance(data.get("steps", []), list):
        raise CtlError(f"{path}: steps must be an array of tables ([[steps]])")
    return data


def _step(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k not in ("index", "id")}


def to_toml(sequence: dict[str, Any]) -> str:
    data = {k: v for k, v in sequence.items() if k not in _NOT_SETTINGS and v is not None}
    data["steps"] = [_step(s) for s in sequence.get("steps", [])]
    header = f"# dripd sequence {sequence['name']!r}: apply with `dripctl apply -f FILE`\n"
    return header + tomli_w.dumps(data, multiline_strings=True)


@dataclass
class Plan:
    sequence_id: int | None
    create: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    edits: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    removals: list[int] = field(default_factory=list)  # highest index first
    appends: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.settings or self.edits or self.removals or self.appends)


_WAIT_UNITS = (("waitDays", "day"), ("waitHours", "hour"), ("waitMinutes", "minute"), ("delayMs", "ms"))


def first_subject(steps: list[dict[str, Any]]) -> str | None:
    """The subject a threaded follow-up replies to: the first email step's."""
    return next((s.get("subject") or None for s in steps if s.get("type") in ("email", "send_email")), None)


def describe(step: dict[str, Any], first: str | None = None) -> str:
    """One line per step; ``first`` is the sequence's first email subject, which a threaded
    follow-up with an empty subject is sent under as "Re: <first>"."""
    if step.get("type") in ("email", "send_email"):
        subject = step.get("subject", "")
        variants = step.get("variants") or []
        with_variants = f" with {len(variants)} variants" if variants else ""
        if not subject and step.get("thread", True) is not False:
            return f"email {'Re: ' + first if first else 'Re: <first subject>'!r} (threaded reply)" + with_variants
        return f"email {subject!r}" + with_variants
    if step.get("type") in ("wait", "delay"):
        key, unit = next(((k, u) for k, u in _WAIT_UNITS if k in step), ("?", "?"))
        value = step.get(key)
        amount = f"{value:g}" if isinstance(value, (int, float)) else str(value)
        plural = "" if unit == "ms" or value == 1 else "s"
        return f"wait {amount} {unit}{plural}"
    return f"{step.get('type')} {step.get('condition', '')}".strip()


def plan(client: Client, desired: dict[str, Any]) -> Plan:
    name = desired["name"]
    found = client.get("/api/sequences", name=name)["sequences"]
    steps = [dict(s) for s in desired.get("steps", [])]
    if not found:
        p = Plan(None, create=desired)
        p.lines.append(f"+ create sequence {name!r} on mailbox {desired['mailboxId']!r} with {len(steps)} step(s)")
        p.lines += [f"+   step {i}: {describe(s, first_subject(steps))}" for i, s in enumerate(steps)]
        return p
    if len(found) > 1:
        raise CtlError(f"several sequences are named {name!r}; rename them before applying")
    current = client.get(f"/api/sequences/{found[0]['id']}")
    p = Plan(current["id"])
    for key, value in desired.items():
        if key == "steps":
            continue
        if current.get(key) != value:
            p.settings[key] = value
            p.lines.append(f"~ {key}: {current.get(key)!r} -> {value!r}")
    have = [_step(s) for s in current["steps"]]
    for index, (old, new) in enumerate(zip(have, steps)):
        if _normal(old) != _normal(new):
            p.edits.append((index, new))
            p.lines.append(f"~ step {index}: {describe(old, first_subject(have))} -> {describe(new, first_subject(steps))}")
    for index in range(len(have) - 1, len(steps) - 1, -1):
        p.removals.append(index)
        p.lines.append(f"- step {index}: {describe(have[index], first_subject(have))}")
    for index, new in enumerate(steps[len(have):], start=len(have)):
        p.appends.append(new)
        p.lines.append(f"+ step {index}: {describe(new, first_subject(steps))}")
    return p


def _normal(step: dict[str, Any]) -> dict[str, Any]:
    """Compare what the API would store: html is body, send_email/delay are email/wait."""
    out = dict(step)
    if "html" in out:
        out["body"] = out.pop("html")
    out["type"] = {"send_email": "email", "delay": "wait"}.get(out.get("type", ""), out.get("type"))
    if out.get("thread") is True:
        del out["thread"]
    if "variants" in out:  # the API fills in the names (A, B, ...) and weights (1) a file may leave out
        out["variants"] = [{"name": chr(ord("A") + i), "weight": 1, **v} for i, v in enumerate(out["variants"] or [])]
        if not out["variants"]:
            del out["variants"]
    if isinstance(out.get("autoWinner"), dict):
        out["autoWinner"] = {"metric": "replied", **out["autoWinner"]}
    seconds = sum(float(out.pop(k)) * unit for k, unit in _UNITS.items() if k in out)
    if out["type"] == "wait":
        out["seconds"] = seconds
    return out


_UNITS = {"waitDays": 86400.0, "waitHours": 3600.0, "waitMinutes": 60.0, "delayMs": 0.001}


def execute(client: Client, p: Plan) -> int:
    if p.create is not None:
        return int(client.post("/api/sequences", p.create)["id"])
    assert p.sequence_id is not None
    base = f"/api/sequences/{p.sequence_id}"
    if p.settings:
        client.patch(base, p.settings)
    for index, step in p.edits:
        client.patch(f"{base}/steps/{index}", step)  # with its type: a whole step, replaced
    for index in p.removals:
        client.delete(f"{base}/steps/{index}")
    for step in p.appends:
        client.post(f"{base}/steps", step)
    return p.sequence_id
