"""dripctl enroll / contacts / lists."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

from dripd.ctl.client import Client, CtlError
from dripd.ctl.import_progress import ServerProgress, describe, new_import_id
from dripd.ctl.output import Progress, as_json, block, table

CHUNK = 256 * 1024


def fields(pairs: list[str] | None, flag: str = "--field") -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CtlError(f"{flag}: expected KEY=VALUE, got {pair!r}", 2)
        out[key.strip()] = value
    return out


def _upload(path: Path, progress: Progress) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            progress.advance(len(chunk))
            yield chunk


def enroll(client: Client, args: argparse.Namespace) -> int:
    sequence_id = client.sequence_id(args.sequence)
    if args.csv:
        try:
            size = args.csv.stat().st_size
        except OSError as exc:
            raise CtlError(f"cannot read {args.csv}: {exc.strerror}") from None
        progress = Progress(size, f"uploading {args.csv.name}", enabled=None if not args.progress else True)
        import_id = new_import_id()
        with ServerProgress(client, import_id, progress.out, progress.enabled):
            result = client.request("POST", f"/api/sequences/{sequence_id}/enroll/csv",
                                    params={"skipInvalid": "true" if args.skip_invalid else "false",
                                            "importId": import_id},
                                    content=_upload(args.csv, progress), content_type="text/csv")
        progress.finish(f"{result['enrolled']} enrolled")
        if progress.enabled:
            print(describe({"state": "done", "rows": result["rows"], "invalid": result["invalidCount"],
                            "enrolled": result["enrolled"]}), file=progress.out, flush=True)
        if args.json:
            as_json(result)
            return 0
        print(f"{result['rows']} row(s): {result['enrolled']} enrolled, {result.get('skippedCount', len(result['skipped']))} skipped, "
              f"{result['invalidCount']} invalid")
        for bad in result["invalid"]:
            print(f"  line {bad['line']}: {bad['field']}: {bad['rule']}")
        for skipped in result["skipped"][:100]:
            print(f"  line {skipped['line']}: {skipped['email']}: {skipped['message']}")
        return 0
    body: dict[str, Any] = {"skipInvalid": args.skip_invalid}
    if args.list:
        body["listId"] = client.list_id(args.list)
    elif args.contact_id:
        body["contactIds"] = args.contact_id
    else:
        body["contactEmail"] = args.contact
    merge = fields(args.field)
    if merge:
        body["mergeFields"] = merge
    result = client.post(f"/api/sequences/{sequence_id}/enroll", body)
    if args.json:
        as_json(result)
        return 0
    print(f"{result['enrolled']} enrolled, {len(result['skipped'])} skipped")
    for skipped in result["skipped"]:
        print(f"  {skipped['email']}: {skipped['message']}")
    return 0


def _contact_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for flag, key in (("first_name", "firstName"), ("last_name", "lastName"), ("company", "company")):
        if getattr(args, flag) is not None:
            body[key] = getattr(args, flag)
    if args.field:
        body["fields"] = fields(args.field)
    return body


def _show_contact(contact: dict[str, Any]) -> None:
    block([("id", contact["id"]), ("email", contact["email"]), ("first name", contact["firstName"]),
           ("last name", contact["lastName"]), ("company", contact["company"]), ("fields", contact["fields"])])


def _verify(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"email": args.email, "probe": args.probe, "lift": args.lift}
    if args.mailbox:
        body["mailboxId"] = args.mailbox
    result = client.post("/api/contacts/verify", body)
    if args.json:
        as_json(result)
    else:
        marks = {True: "pass", False: "FAIL", None: "unknown"}
        table([(check["name"], marks[check["ok"]], check["detail"]) for check in result["checks"]],
              ("check", "result", "detail"))
        print(f"{result['email']}: {result['verdict']}" + ("; removed from the suppression list" if result["lifted"] else ""))
    return 1 if result["verdict"] == "invalid" else 0


def _bounced(client: Client, args: argparse.Namespace) -> int:
    data = client.get("/api/suppressions", reason="bounced")
    if args.json:
        as_json(data)
    else:
        table([(s["email"], s["at"], s["detail"] or "") for s in data["suppressions"]], ("email", "since", "detail"))
    return 0


def contacts(client: Client, args: argparse.Namespace) -> int:
    action = args.action
    if action == "verify":
        return _verify(client, args)
    if action == "bounced":
        return _bounced(client, args)
    if action == "list":
        data = client.get("/api/contacts", email=args.email, limit=args.limit)
        if args.json:
            as_json(data)
        else:
            table([(c["id"], c["email"], c["firstName"], c["lastName"], c["company"]) for c in data["contacts"]],
                  ("id", "email", "first name", "last name", "company"))
        return 0
    if action == "add":
        result = client.post("/api/contacts", {"email": args.email, **_contact_body(args)})
    elif action == "show":
        result = client.get(f"/api/contacts/{client.contact_id(args.contact)}")
    elif action == "update":
        body = _contact_body(args)
        if args.email:
            body["email"] = args.email
        result = client.patch(f"/api/contacts/{client.contact_id(args.contact)}", body)
    else:
        client.delete(f"/api/contacts/{client.contact_id(args.contact)}")
        if not args.json:
            print(f"deleted {args.contact}")
        return 0
    if args.json:
        as_json(result)
    else:
        _show_contact(result)
    return 0


def lists(client: Client, args: argparse.Namespace) -> int:
    action = args.action
    if action == "list":
        data = client.get("/api/lists")
        if args.json:
            as_json(data)
        else:
            table([(item["id"], item["name"], item["memberCount"]) for item in data["lists"]], ("id", "name", "members"))
        return 0
    if action == "create":
        result = client.post("/api/lists", {"name": args.name, "emails": args.emails})
    elif action == "show":
        result = client.get(f"/api/lists/{client.list_id(args.list)}")
    elif action == "add":
        result = client.post(f"/api/lists/{client.list_id(args.list)}/members", {"emails": args.emails})
    elif action == "remove":
        list_id = client.list_id(args.list)
        result = None
        for email in args.emails:
            result = client.delete(f"/api/lists/{list_id}/members/{client.contact_id(email)}")
        result = result or client.get(f"/api/lists/{list_id}")
    else:
        client.delete(f"/api/lists/{client.list_id(args.list)}")
        if not args.json:
            print(f"deleted list {args.list}")
        return 0
    if args.json:
        as_json(result)
    else:
        print(f"list {result['name']!r} (id {result['id']}): {result['memberCount']} member(s)")
        table([(c["id"], c["email"], c["firstName"], c["company"]) for c in result["members"]],
              ("id", "email", "first name", "company"))
    return 0
