"""Contacts and lists as resources (seed 003's "paste emails directly" and seed 000's lists)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Response

from dripd.api.deps import MAX_ID, ContactId, ServicesDep, ListId
from dripd.api.schemas import ContactBody, ContactPatch, ListBody, MembersBody, SuppressionBody, contact_json
from dripd.clock import iso
from dripd.model import contact_fields, normalize_email
from dripd.store import ContactInput

if TYPE_CHECKING:
    from dripd.root import Services

contacts = APIRouter(prefix="/api/contacts", tags=["contacts"])
lists = APIRouter(prefix="/api/lists", tags=["lists"])
suppressions = APIRouter(prefix="/api/suppressions", tags=["suppressions"])


@contacts.get("", summary="Search contacts by (part of) their email address")
async def search(services: ServicesDep, email: str = "", limit: int = Query(100, ge=1, le=10000),
                 offset: int = Query(0, ge=0, le=MAX_ID)) -> dict[str, Any]:
    found = await services.store.search_contacts(email.strip().lower(), limit, offset)
    return {"contacts": [contact_json(c) for c in found]}


@contacts.post("", status_code=201, summary="Create a contact")
async def create(body: ContactBody, services: ServicesDep) -> dict[str, Any]:
    email = normalize_email(body.email)
    contact = await services.control.create_contact(
        ContactInput(email, body.first_name, body.last_name, body.company, contact_fields(body.fields, body.timezone)))
    return contact_json(contact)


@contacts.get("/{contact_id}", summary="One contact")
async def get(contact_id: ContactId, services: ServicesDep) -> dict[str, Any]:
    return contact_json(await services.store.get_contact(contact_id))


@contacts.patch("/{contact_id}", summary="Update a contact (fields are merged)")
async def update(contact_id: ContactId, body: ContactPatch, services: ServicesDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "timezone" in changes or "fields" in changes:
        changes["fields"] = contact_fields(changes.get("fields", {}), changes.pop("timezone", None))
    if "email" in changes:
        changes["email"] = normalize_email(changes["email"])
    return contact_json(await services.control.update_contact(contact_id, changes))


@contacts.delete("/{contact_id}", status_code=204, summary="Delete a contact (cancels its active enrollments)")
async def delete(contact_id: ContactId, services: ServicesDep) -> Response:
    await services.control.delete_contact(contact_id)
    return Response(status_code=204)


async def _member_ids(services: "Services", contact_ids: list[int], emails: list[str]) -> list[int]:
    """Ids as given plus the ids of the addresses (contacts created for new ones)."""
    addresses = [normalize_email(e, field_name=f"emails[{i}]") for i, e in enumerate(emails)]
    created = await services.control.ensure_contacts([ContactInput(a) for a in addresses]) if addresses else []
    return list(contact_ids) + created


def _list_json(list_id: int, name: str, members: list[Any]) -> dict[str, Any]:
    return {"id": list_id, "name": name, "memberCount": len(members), "members": [contact_json(c) for c in members]}


@lists.get("", summary="All lists with their member counts")
async def all_lists(services: ServicesDep) -> dict[str, Any]:
    return {"lists": [{"id": i, "name": n, "memberCount": count} for i, n, count in await services.store.list_lists()]}


@lists.post("", status_code=201, summary="Create a list, optionally with members")
async def create_list(body: ListBody, services: ServicesDep) -> dict[str, Any]:
    members = await _member_ids(services, body.contact_ids, body.emails)
    list_id = await services.control.create_list(body.name.strip(), members)
    name, found = await services.store.get_list(list_id)
    return _list_json(list_id, name, found)


@lists.get("/{list_id}", summary="A list and its members")
async def get_list(list_id: ListId, services: ServicesDep) -> dict[str, Any]:
    name, members = await services.store.get_list(list_id)
    return _list_json(list_id, name, members)


@lists.post("/{list_id}/members", summary="Add members by contact id or email")
async def add_members(list_id: ListId, body: MembersBody, services: ServicesDep) -> dict[str, Any]:
    await services.store.get_list(list_id)  # 404 before creating contacts for it
    await services.control.change_list(list_id, await _member_ids(services, body.contact_ids, body.emails), [])
    name, members = await services.store.get_list(list_id)
    return _list_json(list_id, name, members)


@lists.delete("/{list_id}/members/{contact_id}", summary="Remove one member (the contact stays)")
async def remove_member(list_id: ListId, contact_id: ContactId, services: ServicesDep) -> dict[str, Any]:
    await services.control.change_list(list_id, [], [contact_id])
    name, members = await services.store.get_list(list_id)
    return _list_json(list_id, name, members)


@lists.delete("/{list_id}", status_code=204, summary="Delete a list (its contacts stay)")
async def delete_list(list_id: ListId, services: ServicesDep) -> Response:
    await services.control.delete_list(list_id)
    return Response(status_code=204)


@suppressions.get("", summary="The suppression list (addresses never mailed again)")
async def all_suppressions(services: ServicesDep, reason: str | None = None) -> dict[str, Any]:
    rows = await services.store.suppressions(reason)
    return {"suppressions": [{"email": r["email"], "reason": r["reason"], "at": iso(r["at"]), "detail": r["detail"]}
                             for r in rows]}


@suppressions.post("", status_code=201, summary="Suppress an address; its active enrollments end")
async def suppress(body: SuppressionBody, services: ServicesDep) -> dict[str, Any]:
    email = normalize_email(body.email)
    await services.control.suppress(email, body.reason, body.detail)
    return {"email": email, "reason": body.reason, "detail": body.detail}


@suppressions.delete("/{email}", status_code=204, summary="Allow an address again")
async def unsuppress(email: str, services: ServicesDep) -> Response:
    await services.control.unsuppress(normalize_email(email))
    return Response(status_code=204)
