"""Catalog operations on contacts and lists."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from dripd.errors import Conflict, NotFound
from dripd.model import Contact, EnrollmentStatus
from dripd.store.api import ContactInput
from dripd.store.rows import contact_from_row
from dripd.store.sqlite.connection import Conn, control_operation, fetch_all, fetch_one
from dripd.store.sqlite.journal import end_now
from dripd.store.sqlite.replies import delete_replies_of


def upsert_contact(db: Conn, contact: ContactInput, now: float) -> int:
    """The id of the contact with this address, created if new (an existing one keeps its data)."""
    row = fetch_one(db, "SELECT id FROM contacts WHERE email = ?", (contact.email,))
    if row is not None:
        return int(row["id"])
    cursor = db.execute(
        "INSERT INTO contacts (email, first_name, last_name, company, fields, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?)",
        (contact.email, contact.first_name, contact.last_name, contact.company,
         json.dumps(dict(contact.fields or {})), now, now),
    )
    return cursor.lastrowid or 0


def load_contact(db: Conn, contact_id: int) -> Contact:
    row = fetch_one(db, "SELECT * FROM contacts WHERE id = ?", (contact_id,))
    if row is None:
        raise NotFound(f"no contact with id {contact_id}", details={"contactId": contact_id})
    return contact_from_row(row)


def _list_exists(db: Conn, list_id: int) -> None:
    if fetch_one(db, "SELECT 1 FROM lists WHERE id = ?", (list_id,)) is None:
        raise NotFound(f"no list with id {list_id}", details={"listId": list_id})


class ContactOps:
    """Mixin of contact and list operations; ``self._db`` comes from SqliteConnection."""

    @control_operation
    def create_contact(self, db: Conn, contact: ContactInput, now: float) -> Contact:
        if fetch_one(db, "SELECT 1 FROM contacts WHERE email = ?", (contact.email,)):
            raise Conflict(f"a contact with email {contact.email} exists", details={"email": contact.email})
        return load_contact(db, upsert_contact(db, contact, now))

    @control_operation
    def get_contact(self, db: Conn, contact_id: int) -> Contact:
        return load_contact(db, contact_id)

    @control_operation
    def find_contact(self, db: Conn, email: str) -> Contact | None:
        row = fetch_one(db, "SELECT * FROM contacts WHERE email = ?", (email,))
        return contact_from_row(row) if row else None

    @control_operation
    def search_contacts(self, db: Conn, email_part: str, limit: int, offset: int) -> list[Contact]:
        pattern = "%" + email_part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = fetch_all(db, "SELECT * FROM contacts WHERE email LIKE ? ESCAPE '\\' ORDER BY id LIMIT ? OFFSET ?",
                         (pattern, limit, offset))
        return [contact_from_row(r) for r in rows]

    @control_operation
    def update_contact(self, db: Conn, contact_id: int, changes: Mapping[str, Any], now: float) -> Contact:
        current = load_contact(db, contact_id)
        fields = dict(current.fields)
        fields.update(changes.get("fields") or {})
        if changes.get("email") and changes["email"] != current.email:
            if fetch_one(db, "SELECT 1 FROM contacts WHERE email = ?", (changes["email"],)):
                raise Conflict(f"a contact with email {changes['email']} exists", details={"email": changes["email"]})
        db.execute(
            "UPDATE contacts SET email = ?, first_name = ?, last_name = ?, company = ?, fields = ?, updated_at = ?"
            " WHERE id = ?",
            (changes.get("email") or current.email,
             changes.get("first_name", current.first_name), changes.get("last_name", current.last_name),
             changes.get("company", current.company), json.dumps(fields), now, contact_id),
        )
        return load_contact(db, contact_id)

    @control_operation
    def delete_contact(self, db: Conn, contact_id: int, now: float) -> None:
        """Cancels the contact's active enrollments; its history stays (the row is kept as an
        anonymised stub if referenced)."""
        load_contact(db, contact_id)
        for r in fetch_all(db, "SELECT id FROM enrollments WHERE contact_id = ? AND status = 'active'", (contact_id,)):
            end_now(db, r["id"], EnrollmentStatus.CANCELLED, "contact deleted", now)
        db.execute("DELETE FROM list_members WHERE contact_id = ?", (contact_id,))
        delete_replies_of(db, contact_id)  # what the contact wrote goes with the contact
        used = fetch_one(db, "SELECT 1 FROM enrollments WHERE contact_id = ? LIMIT 1", (contact_id,))
        if used:
            db.execute(
                "UPDATE contacts SET email = 'deleted-' || id || '@invalid', first_name = '', last_name = '',"
                " company = '', fields = '{}', updated_at = ? WHERE id = ?", (now, contact_id))
        else:
            db.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))

    @control_operation
    def ensure_contacts(self, db: Conn, contacts: list[ContactInput], now: float) -> list[int]:
        """Ids of these addresses, creating the contacts that do not exist yet."""
        return [upsert_contact(db, c, now) for c in contacts]

    # -- lists -----------------------------------------------------------------------------------

    @control_operation
    def create_list(self, db: Conn, name: str, now: float) -> int:
        if fetch_one(db, "SELECT 1 FROM lists WHERE name = ?", (name,)):
            raise Conflict(f"a list named {name!r} exists", details={"name": name})
        cursor = db.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (name, now))
        return cursor.lastrowid or 0

    @control_operation
    def get_list(self, db: Conn, list_id: int) -> tuple[str, list[Contact]]:
        row = fetch_one(db, "SELECT name FROM lists WHERE id = ?", (list_id,))
        if row is None:
            raise NotFound(f"no list with id {list_id}", details={"listId": list_id})
        members = fetch_all(
            db, "SELECT c.* FROM contacts c JOIN list_members m ON m.contact_id = c.id WHERE m.list_id = ? ORDER BY c.id",
            (list_id,))
        return row["name"], [contact_from_row(r) for r in members]

    @control_operation
    def find_list(self, db: Conn, name: str) -> int | None:
        row = fetch_one(db, "SELECT id FROM lists WHERE name = ?", (name,))
        return int(row["id"]) if row else None

    @control_operation
    def list_lists(self, db: Conn) -> list[tuple[int, str, int]]:
        rows = fetch_all(db, "SELECT l.id, l.name, COUNT(m.contact_id) AS n FROM lists l"
                             " LEFT JOIN list_members m ON m.list_id = l.id GROUP BY l.id, l.name ORDER BY l.id")
        return [(r["id"], r["name"], r["n"]) for r in rows]

    @control_operation
    def list_ids(self, db: Conn, list_id: int) -> list[int]:
        _list_exists(db, list_id)
        rows = fetch_all(db, "SELECT contact_id FROM list_members WHERE list_id = ? ORDER BY contact_id", (list_id,))
        return [r["contact_id"] for r in rows]

    @control_operation
    def change_list(self, db: Conn, list_id: int, add: Iterable[int], remove: Iterable[int]) -> None:
        _list_exists(db, list_id)
        for contact_id in add:
            load_contact(db, contact_id)
            db.execute("INSERT INTO list_members (list_id, contact_id) VALUES (?, ?)"
                       " ON CONFLICT (list_id, contact_id) DO NOTHING", (list_id, contact_id))
        for contact_id in remove:
            db.execute("DELETE FROM list_members WHERE list_id = ? AND contact_id = ?", (list_id, contact_id))

    @control_operation
    def delete_list(self, db: Conn, list_id: int) -> None:
        """Drops the list and its memberships; the contacts stay."""
        _list_exists(db, list_id)
        db.execute("DELETE FROM list_members WHERE list_id = ?", (list_id,))
        db.execute("DELETE FROM lists WHERE id = ?", (list_id,))
