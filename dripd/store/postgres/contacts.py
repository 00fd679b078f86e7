"""Catalog operations on contacts and lists; the PostgreSQL twin of ``dripd.store.sqlite.contacts``."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from dripd.errors import Conflict, NotFound
from dripd.model import Contact, EnrollmentStatus
from dripd.store.api import ContactInput
from dripd.store.rows import contact_from_row
from dripd.store.postgres.connection import operation
from dripd.store.postgres.sql import Conn, fetch_all, fetch_one
from dripd.store.postgres.journal import end_now
from dripd.store.postgres.replies import delete_replies_of


def upsert_contact(db: Conn, contact: ContactInput, now: float) -> int:
    """The id of the contact with this address, created if new (an existing one keeps its data)."""
    row = fetch_one(db, "SELECT id FROM contacts WHERE email = %s", (contact.email,))
    if row is not None:
        return int(row["id"])
    # ON CONFLICT: another node may create the same address between the read and this insert.
    created = db.execute(
        "INSERT INTO contacts (email, first_name, last_name, company, fields, created_at, updated_at)"
        " VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (email) DO NOTHING RETURNING id",
        (contact.email, contact.first_name, contact.last_name, contact.company,
         json.dumps(dict(contact.fields or {})), now, now),
    ).fetchone()
    if created is None:
        created = fetch_one(db, "SELECT id FROM contacts WHERE email = %s", (contact.email,))
        assert created is not None
    return int(created[0])


def load_contact(db: Conn, contact_id: int) -> Contact:
    row = fetch_one(db, "SELECT * FROM contacts WHERE id = %s", (contact_id,))
    if row is None:
        raise NotFound(f"no contact with id {contact_id}", details={"contactId": contact_id})
    return contact_from_row(row)


def _list_exists(db: Conn, list_id: int) -> None:
    if fetch_one(db, "SELECT 1 FROM lists WHERE id = %s", (list_id,)) is None:
        raise NotFound(f"no list with id {list_id}", details={"listId": list_id})


class ContactOps:
    """Mixin of contact and list operations (``PgConnection`` runs them)."""

    @operation
    def create_contact(self, db: Conn, contact: ContactInput, now: float) -> Contact:
        if fetch_one(db, "SELECT 1 FROM contacts WHERE email = %s", (contact.email,)):
            raise Conflict(f"a contact with email {contact.email} exists", details={"email": contact.email})
        return load_contact(db, upsert_contact(db, contact, now))

    @operation
    def get_contact(self, db: Conn, contact_id: int) -> Contact:
        return load_contact(db, contact_id)

    @operation
    def find_contact(self, db: Conn, email: str) -> Contact | None:
        row = fetch_one(db, "SELECT * FROM contacts WHERE email = %s", (email,))
        return contact_from_row(row) if row else None

    @operation
    def search_contacts(self, db: Conn, email_part: str, limit: int, offset: int) -> list[Contact]:
        pattern = "%" + email_part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # ILIKE: SQLite's LIKE ignores ASCII case, and both backends must find the same contacts.
        rows = fetch_all(db, "SELECT * FROM contacts WHERE email ILIKE %s ESCAPE '\\' ORDER BY id LIMIT %s OFFSET %s",
                         (pattern, limit, offset))
        return [contact_from_row(r) for r in rows]

    @operation
    def update_contact(self, db: Conn, contact_id: int, changes: Mapping[str, Any], now: float) -> Contact:
        current = load_contact(db, contact_id)
        fields = dict(current.fields)
        fields.update(changes.get("fields") or {})
        if changes.get("email") and changes["email"] != current.email:
            if fetch_one(db, "SELECT 1 FROM contacts WHERE email = %s", (changes["email"],)):
                raise Conflict(f"a contact with email {changes['email']} exists", details={"email": changes["email"]})
        db.execute(
            "UPDATE contacts SET email = %s, first_name = %s, last_name = %s, company = %s, fields = %s, updated_at = %s"
            " WHERE id = %s",
            (changes.get("email") or current.email,
             changes.get("first_name", current.first_name), changes.get("last_name", current.last_name),
             changes.get("company", current.company), json.dumps(fields), now, contact_id),
        )
        return load_contact(db, contact_id)

    @operation
    def delete_contact(self, db: Conn, contact_id: int, now: float) -> None:
        """Cancels the contact's active enrollments; its history stays (the row is kept as an
        anonymised stub if referenced)."""
        load_contact(db, contact_id)
        for r in fetch_all(db, "SELECT id FROM enrollments WHERE contact_id = %s AND status = 'active'", (contact_id,)):
            end_now(db, r["id"], EnrollmentStatus.CANCELLED, "contact deleted", now)
        db.execute("DELETE FROM list_members WHERE contact_id = %s", (contact_id,))
        delete_replies_of(db, contact_id)  # what the contact wrote goes with the contact
        used = fetch_one(db, "SELECT 1 FROM enrollments WHERE contact_id = %s LIMIT 1", (contact_id,))
        if used:
            db.execute(
                "UPDATE contacts SET email = 'deleted-' || id || '@invalid', first_name = '', last_name = '',"
                " company = '', fields = '{}', updated_at = %s WHERE id = %s", (now, contact_id))
        else:
            db.execute("DELETE FROM contacts WHERE id = %s", (contact_id,))

    @operation
    def ensure_contacts(self, db: Conn, contacts: list[ContactInput], now: float) -> list[int]:
        """Ids of these addresses, creating the contacts that do not exist yet."""
        return [upsert_contact(db, c, now) for c in contacts]

    # -- lists -----------------------------------------------------------------------------------

    @operation
    def create_list(self, db: Conn, name: str, now: float) -> int:
        if fetch_one(db, "SELECT 1 FROM lists WHERE name = %s", (name,)):
            raise Conflict(f"a list named {name!r} exists", details={"name": name})
        row = db.execute("INSERT INTO lists (name, created_at) VALUES (%s, %s) RETURNING id", (name, now)).fetchone()
        assert row is not None
        return int(row[0])

    @operation
    def get_list(self, db: Conn, list_id: int) -> tuple[str, list[Contact]]:
        row = fetch_one(db, "SELECT name FROM lists WHERE id = %s", (list_id,))
        if row is None:
            raise NotFound(f"no list with id {list_id}", details={"listId": list_id})
        members = fetch_all(
            db, "SELECT c.* FROM contacts c JOIN list_members m ON m.contact_id = c.id WHERE m.list_id = %s ORDER BY c.id",
            (list_id,))
        return row["name"], [contact_from_row(r) for r in members]

    @operation
    def find_list(self, db: Conn, name: str) -> int | None:
        row = fetch_one(db, "SELECT id FROM lists WHERE name = %s", (name,))
        return int(row["id"]) if row else None

    @operation
    def list_lists(self, db: Conn) -> list[tuple[int, str, int]]:
        rows = fetch_all(db, "SELECT l.id, l.name, COUNT(m.contact_id) AS n FROM lists l"
                             " LEFT JOIN list_members m ON m.list_id = l.id GROUP BY l.id, l.name ORDER BY l.id")
        return [(r["id"], r["name"], r["n"]) for r in rows]

    @operation
    def list_ids(self, db: Conn, list_id: int) -> list[int]:
        _list_exists(db, list_id)
        rows = fetch_all(db, "SELECT contact_id FROM list_members WHERE list_id = %s ORDER BY contact_id", (list_id,))
        return [r["contact_id"] for r in rows]

    @operation
    def change_list(self, db: Conn, list_id: int, add: Iterable[int], remove: Iterable[int]) -> None:
        _list_exists(db, list_id)
        for contact_id in add:
            load_contact(db, contact_id)
            db.execute("INSERT INTO list_members (list_id, contact_id) VALUES (%s, %s)"
                       " ON CONFLICT (list_id, contact_id) DO NOTHING", (list_id, contact_id))
        for contact_id in remove:
            db.execute("DELETE FROM list_members WHERE list_id = %s AND contact_id = %s", (list_id, contact_id))

    @operation
    def delete_list(self, db: Conn, list_id: int) -> None:
        """Drops the list and its memberships; the contacts stay."""
        _list_exists(db, list_id)
        db.execute("DELETE FROM list_members WHERE list_id = %s", (list_id,))
        db.execute("DELETE FROM lists WHERE id = %s", (list_id,))
